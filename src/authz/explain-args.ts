// What `hostmesh authz explain --from/--to` and the dashboard's /authz/explain.json accept as the
// caller and the destination of one call, parsed once so the two answer the same question alike.

import { DNS_LABEL, DNS_SUBDOMAIN } from '../k8s/names.js';
import { workloadIdentity } from '../identity/names.js';
import { destinationFromName } from './destination.js';
import type { AuthzCaller, AuthzDestination } from './policy.js';

const SHORT_CALLER = new RegExp(`^(${DNS_LABEL})/(${DNS_SUBDOMAIN})$`);
// A port is a number or an IANA service name (at most 15 characters), as a Service port name is.
const SHORT_DESTINATION = new RegExp(`^(${DNS_LABEL})/(${DNS_LABEL})(?::([a-z0-9-]{1,15}))?$`);

/** `unauthenticated`, an identity (workload or `spiffe://<mesh>/node/<node>`), or `<namespace>/<serviceaccount>`. */
export function parseExplainCaller(from: string, trustDomain: string): AuthzCaller | undefined {
  if (from === 'unauthenticated') return { authenticated: false };
  const short = SHORT_CALLER.exec(from);
  if (short !== null) {
    const namespace = short[1] as string;
    const serviceAccount = short[2] as string;
    return { authenticated: true, identity: workloadIdentity(serviceAccount, namespace, trustDomain), namespace, serviceAccount };
  }
  if (/^[\x21-\x7e]+$/.test(from) && (from.startsWith('spiffe://') || !from.includes('/'))) return { authenticated: true, identity: from };
  return undefined;
}

/** `<namespace>/<service>[:port]`, or a bound name (an io.l5d.k8s name under `k8sPrefix` gives its parts). */
export function parseExplainDestination(to: string, k8sPrefix: string): AuthzDestination | undefined {
  if (to.startsWith('/')) return destinationFromName(to, k8sPrefix);
  const m = SHORT_DESTINATION.exec(to);
  if (m === null) return undefined;
  const namespace = m[1] as string;
  const service = m[2] as string;
  const port = m[3];
  if (port === undefined) return { namespace, service };
  return { namespace, service, port: /^[0-9]+$/.test(port) ? Number(port) : port, name: `/#${k8sPrefix}/${namespace}/${port}/${service}` };
}
