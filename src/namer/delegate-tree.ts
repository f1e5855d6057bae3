// The delegation tree: every step binding took (path, the dentry that rewrote it, the outcome), in
// the JSON shape of Linkerd 1's delegator, which `hostmesh delegate`, /delegator.json and the
// dashboard show. Also derives the simplified bound tree the router balances over.

import type { NameTree, Weighted } from '../dtab/name-tree.js';
import { EMPTY, FAIL, NEG } from '../dtab/name-tree.js';
import type { Path } from '../dtab/path.js';
import { showNameTree, showTree } from '../dtab/show.js';
import { endpointKey, type Addr, type BoundName } from './addr.js';

export interface DentryJson {
  readonly prefix: string;
  readonly dst: string;
}

/** A destination tree's text, made only if someone reads it (binding for traffic never does). */
export class TreeText {
  constructor(readonly tree: NameTree<Path>) {}

  toString(): string {
    return showNameTree(this.tree);
  }
}

interface NodeBase {
  /** A Path or tree on the bind path (shown only when someone reads the tree), or already shown text. */
  readonly path: string | Path | TreeText;
  readonly dentry: DentryJson | null;
}

export type DelegateNode =
  | (NodeBase & { readonly type: 'delegate'; readonly delegate: DelegateNode })
  | (NodeBase & { readonly type: 'alt'; readonly alt: readonly DelegateNode[]; readonly dst?: true })
  | (NodeBase & { readonly type: 'union'; readonly union: readonly { weight: number; tree: DelegateNode }[]; readonly dst?: true })
  | (NodeBase & { readonly type: 'leaf'; readonly bound: BoundJson; readonly name: BoundName })
  | (NodeBase & { readonly type: 'neg' | 'fail' | 'empty' })
  | (NodeBase & { readonly type: 'exception'; readonly message: string; readonly reason?: ExceptionReason });

/**
 * Why a step could not finish, when it matters to the binding: a namer that has not answered yet
 * (`pending`: the binding waits for it, unless another branch decides) or a delegation loop
 * (`loop`: reported as DELEGATION_LOOP). Other exceptions are namer or built-in failures.
 */
export type ExceptionReason = 'pending' | 'loop';

export interface BoundJson {
  readonly addr: AddrJson;
  readonly id: string;
  readonly path: string;
}

export type AddrJson =
  | { type: 'bound'; addrs: { ip: string; port: number; meta: Record<string, string> }[]; meta: Record<string, never> }
  | { type: 'neg' }
  | { type: 'pending' }
  | { type: 'failed'; cause: string };

export function addrJson(addr: Addr): AddrJson {
  switch (addr.kind) {
    case 'bound':
      return {
        type: 'bound',
        addrs: addr.endpoints.map((e) => {
          const meta: Record<string, string> = {};
          for (const [k, v] of Object.entries(e.meta)) if (v !== undefined) meta[k] = v;
          return { ip: e.host, port: e.port, meta };
        }),
        meta: {},
      };
    case 'neg':
      return { type: 'neg' };
    case 'pending':
      return { type: 'pending' };
    case 'failed':
      return { type: 'failed', cause: addr.error.message };
  }
}

/**
 * The JSON form without internal fields (bound names carry live Vars), simplified as Linkerd 1's
 * delegator simplifies its tree: an alternation or union a dentry's destination made (`dst`) stands
 * at the path it rewrote, with that step's dentry (`/svc/x` delegating to `/a/x | /b/x` is one alt
 * at /svc/x), and an alternation inside an alternation at the same path is spliced into it.
 */
export function delegateJson(node: DelegateNode): unknown {
  switch (node.type) {
    case 'delegate': {
      const d = node.delegate;
      if ((d.type === 'alt' || d.type === 'union') && d.dst === true) return delegateJson({ ...d, path: node.path, dentry: node.dentry, dst: undefined });
      return { type: node.type, path: String(node.path), dentry: node.dentry, delegate: delegateJson(d) };
    }
    case 'alt':
      return { type: node.type, path: String(node.path), dentry: node.dentry, alt: spliced(node.alt).map(delegateJson) };
    case 'union':
      return {
        type: node.type,
        path: String(node.path),
        dentry: node.dentry,
        union: node.union.map((m) => ({ weight: m.weight, tree: delegateJson(m.tree) })),
      };
    case 'leaf':
      return { type: node.type, path: String(node.path), dentry: node.dentry, bound: node.bound };
    case 'exception':
      return { type: node.type, path: String(node.path), dentry: node.dentry, message: node.message };
    default:
      return { type: node.type, path: String(node.path), dentry: node.dentry };
  }
}

/** What binding a delegation tree gives: a bound tree, a failure, or a wait for a namer. */
export type BindOutcome =
  | { readonly kind: 'ok'; readonly tree: NameTree<BoundName> }
  | { readonly kind: 'failed'; readonly message: string; readonly loop: boolean }
  | { readonly kind: 'pending' };

const NEG_OUTCOME: BindOutcome = { kind: 'ok', tree: NEG };

/** An alternation's children with the alternations its dentries' destinations made spliced in. */
function spliced(children: readonly DelegateNode[]): DelegateNode[] {
  return children.flatMap((c) => (c.type === 'alt' && c.dst === true ? spliced(c.alt) : [c]));
}

/**
 * The binding of a delegation tree with Finagle's Namer.bind semantics: an alternation is its first
 * child that does not bind to neg (a child that fails, fails to bind or waits decides it; the
 * children after it do not count); a union keeps the members that bound (dropping neg and fail
 * once two or more bound), ignores members still waiting or failing while any bound, and fails
 * (else waits) only when none did. Single children collapse.
 */
export function bindOutcome(node: DelegateNode): BindOutcome {
  return outcome(node);
}

/** The bound tree (a failure or a wait shown as fail), for explanations. */
export function boundTree(node: DelegateNode): NameTree<BoundName> {
  const o = outcome(node);
  return o.kind === 'ok' ? o.tree : FAIL;
}

/**
 * Outcomes already derived, per node with children. Nodes never change once built, and
 * evaluation shares a subtree wherever the same path is reached again (and asks each alternation
 * child whether it decided), so without it a union of two shared halves would be walked 2^depth
 * times.
 */
const derived = new WeakMap<DelegateNode, BindOutcome>();

function outcome(node: DelegateNode): BindOutcome {
  switch (node.type) {
    case 'leaf':
      return { kind: 'ok', tree: { kind: 'leaf', value: node.name } };
    case 'neg':
      return NEG_OUTCOME;
    case 'fail':
      return { kind: 'ok', tree: FAIL };
    case 'empty':
      return { kind: 'ok', tree: EMPTY };
    case 'exception':
      return node.reason === 'pending' ? { kind: 'pending' } : { kind: 'failed', message: node.message, loop: node.reason === 'loop' };
    case 'delegate':
    case 'alt':
    case 'union': {
      let o = derived.get(node);
      if (o === undefined) {
        o = node.type === 'delegate' ? outcome(node.delegate) : node.type === 'alt' ? deriveAlt(node.alt) : deriveUnion(node.union);
        derived.set(node, o);
      }
      return o;
    }
  }
}

/** True when an alternation stops at this child: it binds to something other than neg, or fails or waits. */
export function decidesAlternation(node: DelegateNode): boolean {
  const o = outcome(node);
  return o.kind !== 'ok' || o.tree.kind !== 'neg';
}

function deriveAlt(children: readonly DelegateNode[]): BindOutcome {
  for (const child of children) {
    const o = outcome(child);
    if (o.kind !== 'ok' || o.tree.kind !== 'neg') return o;
  }
  return NEG_OUTCOME;
}

function deriveUnion(members: readonly { weight: number; tree: DelegateNode }[]): BindOutcome {
  const oks: Weighted<BoundName>[] = [];
  let failed: BindOutcome | undefined;
  for (const m of members) {
    const o = outcome(m.tree);
    if (o.kind === 'ok') oks.push({ weight: m.weight, tree: o.tree });
    else if (o.kind === 'failed') failed ??= o;
  }
  if (oks.length === 0) return members.length === 0 ? NEG_OUTCOME : (failed ?? { kind: 'pending' });
  // One member that bound is the union, whatever it bound to (Finagle simplifies Union(x) to x).
  if (oks.length === 1) return { kind: 'ok', tree: (oks[0] as Weighted<BoundName>).tree };
  const kept = oks.filter((m) => m.tree.kind !== 'neg' && m.tree.kind !== 'fail');
  if (kept.length === 0) return NEG_OUTCOME;
  if (kept.length === 1) return { kind: 'ok', tree: (kept[0] as Weighted<BoundName>).tree };
  return { kind: 'ok', tree: { kind: 'union', members: kept } };
}

/** The bound tree in dtab syntax with bound ids as leaves (`~` neg, `!` fail, `$` empty), as dtab/show prints trees. */
export function showBound(tree: NameTree<BoundName>): string {
  return showTree(tree, (b) => b.id.show() + (b.residual.isEmpty ? '' : b.residual.show()));
}

/** A readable rendering: one line per step, indented, with the dentry that applied. */
export function renderDelegateText(node: DelegateNode, indent = ''): string {
  // Lines are collected, not concatenated per level: nesting a subtree's whole text into its
  // parent's string at every level made a 1,000-level tree take seconds.
  const lines: string[] = [];
  renderInto(node, indent, lines);
  return lines.join('\n');
}

function renderInto(node: DelegateNode, indent: string, lines: string[]): void {
  const via = node.dentry === null ? '' : `  (${node.dentry.prefix}=>${node.dentry.dst})`;
  lines.push(`${indent}${String(node.path)}${via}`);
  const next = indent + '  ';
  switch (node.type) {
    case 'delegate':
      renderInto(node.delegate, next, lines);
      return;
    case 'alt':
      lines.push(`${next}alternation (first that binds wins):`);
      for (const c of node.alt) renderInto(c, next + '  ', lines);
      return;
    case 'union':
      lines.push(`${next}union:`);
      for (const m of node.union) {
        lines.push(`${next}  weight ${m.weight}:`);
        renderInto(m.tree, next + '    ', lines);
      }
      return;
    case 'leaf': {
      const a = node.bound.addr;
      const addrs = a.type === 'bound' ? a.addrs.map((x) => endpointKey({ host: x.ip, port: x.port })).join(', ') || '(none)' : a.type;
      lines.push(`${next}bound: ${node.bound.id}${node.bound.path === '/' ? '' : ` residual ${node.bound.path}`} -> ${addrs}`);
      return;
    }
    case 'exception':
      lines.push(`${next}error: ${node.message}`);
      return;
    case 'neg':
      lines.push(`${next}neg (no route)`);
      return;
    case 'fail':
      lines.push(`${next}fail`);
      return;
    case 'empty':
      lines.push(`${next}empty`);
      return;
  }
}

export type { Path };
