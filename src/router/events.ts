// What a router reports as it routes (issue 25): one typed interface the stages call and the
// metrics module implements (metrics/router-metrics.ts), with a no-op default for tests and tools.

import type { ShedReason } from './admission.js';
import type { AuthzVerdict } from './authorize.js';
import type { DeliveryRefusal } from './delivery.js';
import type { Refusal as IngressRefusal } from './ingress.js';
import type { ResponseClass } from './classifier.js';
import type { RequeueReason } from './requeue.js';
import type { TimeoutKind } from './stages/forward.js';

/** Why a cached binding was dropped: unused for idleTtl, or the least recently used past a cap. */
export type BindingEviction = 'idle' | 'capacity';

/**
 * The events of one router. `service` is the logical name when known (the dashboard shows these
 * per service); calls are on the request path, so an implementation keeps them cheap.
 */
export interface RouterEvents {
  /** A request carried a dtab override (l5d-dtab, l5d-ctx-dtab). */
  override(): void;
  /** Binding a request's name went over the bindingBudget, through an override or the router's dtab. */
  budgetExceeded(source: 'override' | 'dtab'): void;
  /** A cached binding was dropped. */
  bindingEvicted(reason: BindingEviction): void;
  /** A request was shed by an endpoint's admission control. */
  shed(reason: ShedReason): void;
  /** A deadline fired on the request path (none is named when the deadline had passed on arrival). */
  timeout(kind: TimeoutKind, service?: string): void;
  /** A request was sent again to another endpoint because no app had received it. */
  requeue(reason: RequeueReason, service?: string): void;
  /** A retryable response was retried. */
  retry(service: string): void;
  /** A retry or requeue was wanted while its budget was empty: the last answer was relayed. */
  budgetExhausted(kind: 'retry' | 'requeue', service?: string): void;
  /** A response relayed, by the response classifier's class. */
  classified(service: string, cls: ResponseClass): void;
  /** Failure accrual marked an endpoint of bound client `client` dead. */
  accrualRemoval(client: string): void;
  /** Endpoints failure accrual holds dead (or on probation) now, over all of the router's accrual states. */
  accrualDead(dead: number): void;
  /** A peer router was marked draining (once per mark). */
  drainingPeerMarked(): void;
  /** Peer routers marked draining now. */
  drainingPeers(size: number): void;
}

/** Reports nothing: the default when a router is built without metrics. */
export const noRouterEvents: RouterEvents = {
  override() {},
  budgetExceeded() {},
  bindingEvicted() {},
  shed() {},
  timeout() {},
  requeue() {},
  retry() {},
  budgetExhausted() {},
  classified() {},
  accrualRemoval() {},
  accrualDead() {},
  drainingPeerMarked() {},
  drainingPeers() {},
};

/** Router events where only some are of interest (tests): the rest report nothing. */
export function routerEvents(some: Partial<RouterEvents>): RouterEvents {
  return { ...noRouterEvents, ...some };
}

/**
 * What the router's parts built beside it report (the composition root hands them the same
 * metrics object): per-name settings and pools dropped past their caps, endpoints the delivery
 * check refused, io.l5d.ingress tables. Each part takes the methods it calls.
 */
export interface RouterPartEvents {
  /** io.l5d.static settings of a logical name (service) or bound id (client), or a per-prefix client's pools, dropped past their cap. */
  paramsEvicted(scope: 'service' | 'client' | 'pools'): void;
  /** An endpoint the incoming router would not deliver to (delivery.ts). */
  deliveryRefused(reason: DeliveryRefusal): void;
  /** An Ingress version an io.l5d.ingress identifier does not serve (ingress.ts). */
  ingressRefused(reason: IngressRefusal): void;
  /** The Ingresses and path rules an io.l5d.ingress identifier serves now. */
  ingressServed(ingresses: number, rules: number): void;
}

/** What the authorization stage reports (authorize.ts): decisions on final destinations, and overrides refused. */
export interface AuthzEvents {
  /** A decision on the final destination (a would-deny in audit mode: audit). */
  authzDecision(service: string, destination: string, caller: string, verdict: AuthzVerdict): void;
  /** An l5d-dtab override refused by allowDtabOverride: false (counted as a deny). */
  overrideRefused(service: string, destination: string, caller: string): void;
}
