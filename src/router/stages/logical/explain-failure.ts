// The delegation path of a request that did not route (NO_ROUTE, NO_ENDPOINTS, BINDING_FAILED),
// for its 502 body: one bounded explanation of the same dtab and path, made on the error path only.

import { Dtab } from '../../../dtab/dtab.js';
import { parsePath } from '../../../dtab/parse.js';
import { HostmeshError, type ErrorCode } from '../../../errors.js';
import { renderDelegateText } from '../../../namer/delegate-tree.js';
import type { NameInterpreter } from '../../../namer/interpreter.js';
import type { RequestContext } from '../../context.js';

const EXPLAINED: ReadonlySet<ErrorCode> = new Set(['NO_ROUTE', 'NO_ENDPOINTS', 'BINDING_FAILED']);

/**
 * Delegation nodes one error explanation may expand. Far below a router's bindingBudget (10,000):
 * a failed name is cheap to ask for again and again (a neg binding stays cached), so its
 * explanation must stay cheap too; a dtab that needs more is shown by `hostmesh delegate`.
 */
export const EXPLAIN_BUDGET = 200;

/** Characters of delegation path in one body; the rest is cut with a note. */
export const MAX_DELEGATION_TEXT = 4096;

/**
 * `err` with its delegation path as detail when it is a routing failure; anything else as it
 * came. The request's dtab is read back from the context the router filled (its own dtab and
 * the override, as bound), so the explanation is of what this request bound, not of a reload.
 */
export function withDelegationPath(err: unknown, ctx: RequestContext, interpreter: NameInterpreter): unknown {
  if (!(err instanceof HostmeshError) || !EXPLAINED.has(err.code) || err.detail !== undefined) return err;
  if (ctx.service === undefined || ctx.dtab === undefined) return err;
  let text: string;
  try {
    const dtab = ctx.overrides ? Dtab.read(ctx.dtab).concat(Dtab.read(ctx.overrides)) : Dtab.read(ctx.dtab);
    const tree = interpreter.explain(dtab, parsePath(ctx.service), { budget: EXPLAIN_BUDGET });
    text =
      tree.type === 'exception' && tree.dentry === null && /binding budget/.test(tree.message)
        ? `  (more than ${EXPLAIN_BUDGET} delegation steps: \`hostmesh delegate ${ctx.service}\` shows them all)`
        : renderDelegateText(tree, '  ');
  } catch {
    return err; // an identifier's name that is not a path, say: the answer goes out without it
  }
  if (text.length > MAX_DELEGATION_TEXT) {
    const cut = text.lastIndexOf('\n', MAX_DELEGATION_TEXT);
    const kept = text.slice(0, cut > 0 ? cut : MAX_DELEGATION_TEXT);
    text = `${kept}\n  ... (${text.length - kept.length} more characters: \`hostmesh delegate ${ctx.service}\` shows the whole tree)`;
  }
  // A new error: a binding's failure is one object shared by every request that bound the name.
  return new HostmeshError(err.code, err.message, { detail: `delegation path:\n${text}`, cause: err.cause ?? err });
}
