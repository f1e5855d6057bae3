// The authorization stage: decides allow/deny for a request's final destination (the bound name
// after all dtab rewriting) and refuses l5d-dtab overrides the caller's namespace may not send.

import { type Clock, systemClock } from '../../../core/clock.js';
import type { AuthzEvents, AuthzVerdict } from '../../events.js';
import { destinationFromName } from '../../../authz/destination.js';
import type { AuthzCaller, AuthzDestination, Policy } from '../../../authz/policy.js';
import type { Endpoint } from '../../../namer/addr.js';
import { WORKLOAD_NAMESPACE, WORKLOAD_POD, WORKLOAD_SERVICE_ACCOUNT } from '../concrete/delivery.js';
import { HostmeshError } from '../../../errors.js';
import type { Logger } from '../../../log.js';
import type { RequestContext } from '../../context.js';
import type { RequestHead } from '../identify/identify.js';

export type { AuthzVerdict };

export interface AuthorizeOptions {
  /** The policy in force; read once per request (a reload applies to the next request). */
  readonly policy: () => Policy;
  /** Where the k8s namer is mounted under /# (its `prefix`), to read namespace/service/port. */
  readonly k8sPrefix?: string;
  readonly logger: Logger;
  /** Where decisions and refused overrides are reported (metrics, the dashboard's callers); default: nowhere. */
  readonly events?: AuthzEvents;
  /** The clock of the audit log's rate limit (tests drive it; default systemClock). */
  readonly clock?: Clock;
}

/** Would-deny lines logged per minute at most; the rest are counted and summed up in the next line. */
export const AUDIT_LOG_PER_MINUTE = 20;

/** What a decision reads of a request: one call per request from the router, after the endpoint is chosen. */
export type Authorize = (req: RequestHead, ctx: RequestContext, bound: string, peerId: string | undefined, endpoint?: Endpoint) => void;

/**
 * The destination the policy decides on: the bound name's namespace, service and port, and, when
 * the incoming router's delivery check found it (router/stages/concrete/delivery.ts), the workload that answers:
 * its namespace (always the name's: the check delivers to no other) and service account.
 */
export function destinationOf(bound: string, k8sPrefix: string | undefined, endpoint: Endpoint | undefined): AuthzDestination {
  const ns = endpoint?.meta[WORKLOAD_NAMESPACE];
  if (endpoint === undefined || ns === undefined) return destinationFromName(bound, k8sPrefix);
  // The delivery check makes one endpoint per pod (delivery.ts), so its destination is made once too.
  const kept = workloadDestinations.get(endpoint);
  if (kept !== undefined && kept.bound === bound && kept.k8sPrefix === k8sPrefix) return kept.dest;
  const sa = endpoint.meta[WORKLOAD_SERVICE_ACCOUNT];
  const pod = endpoint.meta[WORKLOAD_POD];
  const dest: AuthzDestination = {
    ...destinationFromName(bound, k8sPrefix),
    namespace: ns,
    ...(sa !== undefined ? { serviceAccount: sa } : {}),
    ...(pod !== undefined ? { pod } : {}),
  };
  workloadDestinations.set(endpoint, { bound, k8sPrefix, dest });
  return dest;
}

/** The destination last made for an endpoint that carries a workload, with the name it was made for. */
const workloadDestinations = new WeakMap<Endpoint, { readonly bound: string; readonly k8sPrefix: string | undefined; readonly dest: AuthzDestination }>();

/**
 * The caller as the policy sees it. On the incoming (mTLS) side the listener's caller, else the
 * verified peer identity; on the outgoing side the listener's caller, else unauthenticated (a
 * plaintext local client proves nothing by itself).
 */
function callerOf(incoming: boolean, ctx: RequestContext, peerId: string | undefined): AuthzCaller {
  const c = ctx.caller;
  if (c !== undefined) {
    return {
      authenticated: c.authenticated,
      ...(c.identity !== undefined ? { identity: c.identity } : {}),
      ...(c.namespace !== undefined ? { namespace: c.namespace } : {}),
      ...(c.serviceAccount !== undefined ? { serviceAccount: c.serviceAccount } : {}),
    };
  }
  if (incoming && peerId !== undefined) return { authenticated: true, identity: peerId };
  return { authenticated: false };
}

function callerLabel(c: AuthzCaller): string {
  return c.authenticated ? (c.identity ?? 'authenticated') : 'unauthenticated';
}

export function authorizer(o: AuthorizeOptions): Authorize {
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  let windowStart = -Infinity;
  let logged = 0;
  let suppressed = 0;
  const audit = (reason: string, caller: string, destination: string): void => {
    const t = now();
    if (t - windowStart >= 60_000) {
      if (suppressed > 0) o.logger.warn({ suppressed }, 'authz audit: more would-deny requests in the last minute were not logged');
      windowStart = t;
      logged = 0;
      suppressed = 0;
    }
    if (logged >= AUDIT_LOG_PER_MINUTE) {
      suppressed++;
      return;
    }
    logged++;
    o.logger.warn({ caller, destination, reason }, 'authz audit: would deny (allowed: the namespace is in audit mode)');
  };

  return (req, ctx, bound, peerId, endpoint) => {
    const policy = o.policy();
    // The mTLS side is where the verified identity is: the final destination is decided there.
    // Every mesh call, same-node ones included, goes outgoing -> incoming over mTLS, so deciding at
    // the incoming router covers them all; the outgoing side only guards l5d-dtab overrides.
    const incoming = ctx.direction === 'inbound';
    const caller = callerOf(incoming, ctx, peerId);
    const service = ctx.service ?? '-';
    if (!incoming) {
      if (ctx.overrides !== undefined && ctx.overrides !== '' && !policy.dtabOverrideAllowed(caller)) {
        o.events?.overrideRefused(service, bound, callerLabel(caller));
        throw new HostmeshError(
          'DTAB_OVERRIDE_REFUSED',
          `l5d-dtab overrides are not allowed for ${callerLabel(caller)} (allowDtabOverride: false for its namespace)`,
        );
      }
      return;
    }
    const d = policy.decide({ caller, dest: destinationOf(bound, o.k8sPrefix, endpoint), method: req.method ?? 'GET', path: req.url ?? '/' });
    const verdict: AuthzVerdict = d.decision === 'deny' ? 'deny' : d.audit ? 'audit' : 'allow';
    o.events?.authzDecision(service, bound, callerLabel(caller), verdict);
    if (verdict === 'audit') audit(d.reason, callerLabel(caller), bound);
    if (verdict === 'deny') throw new HostmeshError('AUTHZ_DENIED', `authorization denied: ${d.reason}`);
  };
}
