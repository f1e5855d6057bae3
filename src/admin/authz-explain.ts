// /authz/explain.json?from=&to=&method=&path=: the dashboard's explain box, the same decision
// `hostmesh authz explain` prints, made by the policy the router has in force right now.

import type { ServerResponse } from 'node:http';
import { destinationFromName } from '../authz/destination.js';
import type { AuthzCaller, AuthzDestination, Policy } from '../authz/policy.js';
import { workloadIdentity } from '../identity/names.js';

// Query values come from whoever reaches the admin port: bounded before anything reads them.
const MAX_FIELD = 1024;
const MAX_PATH = 8192;

function reply(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** `unauthenticated`, an identity (workload or node), or `<namespace>/<serviceaccount>`. */
function callerFrom(from: string, trustDomain: string): AuthzCaller | undefined {
  if (from === 'unauthenticated') return { authenticated: false };
  const short = /^([a-z0-9-]{1,63})\/([a-z0-9.-]{1,253})$/.exec(from);
  if (short !== null) {
    const namespace = short[1] as string;
    const serviceAccount = short[2] as string;
    return { authenticated: true, identity: workloadIdentity(serviceAccount, namespace, trustDomain), namespace, serviceAccount };
  }
  if (/^[\x21-\x7e]+$/.test(from) && (from.startsWith('spiffe://') || !from.includes('/'))) return { authenticated: true, identity: from };
  return undefined;
}

/** `<namespace>/<service>[:port]`, or a bound name (an io.l5d.k8s name gives its parts). */
function destinationFrom(to: string, k8sPrefix: string): AuthzDestination | undefined {
  if (to.startsWith('/')) return destinationFromName(to, k8sPrefix);
  const m = /^([a-z0-9-]{1,63})\/([a-z0-9-]{1,63})(?::([a-z0-9-]{1,15}))?$/.exec(to);
  if (m === null) return undefined;
  const namespace = m[1] as string;
  const service = m[2] as string;
  const port = m[3];
  if (port === undefined) return { namespace, service };
  return { namespace, service, port: /^[0-9]+$/.test(port) ? Number(port) : port, name: `/#${k8sPrefix}/${namespace}/${port}/${service}` };
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
  const caller = callerFrom(from, policy.trustDomain);
  if (caller === undefined) {
    reply(res, 400, { error: 'from: expected unauthenticated, an identity, or <namespace>/<serviceaccount>' });
    return;
  }
  const dest = destinationFrom(to, k8sPrefix);
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
