// /authz/explain.json?from=&to=&method=&path=: the dashboard's explain box, the same decision
// `hostmesh authz explain` prints, made by the policy the router has in force right now.

import type { ServerResponse } from 'node:http';
import { parseExplainCaller, parseExplainDestination } from '../authz/explain-args.js';
import type { Policy } from '../authz/policy.js';

// Query values come from whoever reaches the admin port: bounded before anything reads them.
const MAX_FIELD = 1024;
const MAX_PATH = 8192;

function reply(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export function explainJson(res: ServerResponse, policy: Policy, configured: boolean, url: URL, k8sPrefix: string): void {
  const q = url.searchParams;
  const from = q.get('from') ?? '';
  const to = q.get('to') ?? '';
  const method = (q.get('method') || 'GET').toUpperCase();
  const path = q.get('path') || '/';
  if (from.length > MAX_FIELD || to.length > MAX_FIELD || path.length > MAX_PATH || !/^[A-Z]{1,20}$/.test(method)) {
    reply(res, 400, { error: `from and to take at most ${MAX_FIELD} characters, path ${MAX_PATH}; method is 1-20 letters` });
    return;
  }
  const caller = parseExplainCaller(from, policy.trustDomain);
  if (caller === undefined) {
    reply(res, 400, { error: 'from: expected unauthenticated, an identity, or <namespace>/<serviceaccount>' });
    return;
  }
  const dest = parseExplainDestination(to, k8sPrefix);
  if (dest === undefined) {
    reply(res, 400, { error: `to: expected <namespace>/<service>[:port] or a bound name such as /#${k8sPrefix}/<ns>/<port>/<svc>` });
    return;
  }
  const d = policy.decide({ caller, dest, method, path });
  reply(res, 200, {
    policy: configured ? 'configured' : 'none (every call is allowed)',
    decision: d.decision,
    audit: d.audit,
    rule: d.rule ?? null,
    default: d.default ?? null,
    reason: d.reason,
    dtabOverrideAllowed: policy.dtabOverrideAllowed(caller),
    request: { caller, dest, method, path },
  });
}
