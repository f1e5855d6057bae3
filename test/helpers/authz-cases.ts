// Decision cases written as one line each, for table-driven policy tests:
//   '<caller> -> <destination> [METHOD] [path] => allow [rule] | deny | audit'
// caller: `unauth`, `<ns>/<sa>` (a workload identity), `node:<name>` or `id:<identity>`;
// destination: `<ns>/<svc>[:port]` or a bound name starting with /.

import { workloadIdentity } from '../../src/identity/names.js';
import type { AuthzDecision, AuthzRequest } from '../../src/authz/policy.js';

export interface Case {
  readonly line: string;
  readonly request: AuthzRequest;
  readonly expect: { decision: 'allow' | 'deny'; audit: boolean; rule?: string };
}

export function parseCase(line: string, trustDomain = 'cluster.local'): Case {
  const m = /^(\S+) -> (\S+)(?: ([A-Z]+))?(?: (\S+))? => (allow|deny|audit)(?: (\S+))?$/.exec(line.trim());
  if (m === null) throw new Error(`bad case: ${line}`);
  const [, from, to, method, path, outcome, rule] = m as unknown as [
    string,
    string,
    string,
    string | undefined,
    string | undefined,
    string,
    string | undefined,
  ];
  let caller: AuthzRequest['caller'];
  if (from === 'unauth') caller = { authenticated: false };
  else if (from.startsWith('node:')) caller = { authenticated: true, identity: `spiffe://mesh/node/${from.slice(5)}` };
  else if (from.startsWith('id:')) caller = { authenticated: true, identity: from.slice(3) };
  else {
    const [ns, sa] = from.split('/') as [string, string];
    caller = { authenticated: true, identity: workloadIdentity(sa, ns, trustDomain) };
  }
  let dest: AuthzRequest['dest'];
  if (to.startsWith('/')) dest = { name: to };
  else {
    const [nsSvc, port] = to.split(':') as [string, string | undefined];
    const [ns, svc] = nsSvc.split('/') as [string, string];
    dest = { namespace: ns, service: svc, ...(port !== undefined ? { port } : {}), name: `/#/io.l5d.k8s/${ns}/${port ?? 'http'}/${svc}` };
  }
  return {
    line,
    request: { caller, dest, method: method ?? 'GET', path: path ?? '/' },
    expect: { decision: outcome === 'deny' ? 'deny' : 'allow', audit: outcome === 'audit', ...(rule !== undefined ? { rule } : {}) },
  };
}

/** The parts of a decision a case states. */
export function outcome(d: AuthzDecision): Case['expect'] {
  return { decision: d.decision, audit: d.audit, ...(d.rule !== undefined ? { rule: d.rule } : {}) };
}
