// The one attempt loop of stage 5 (forward): every protocol (HTTP/1 requests in forward.ts, HTTP/2
// streams in forward-h2.ts, Upgrades in forward-upgrade.ts) sends a planned request through it. It
// alone decides requeues (no app reached), retries (the classifier's retryable answers, at one hop:
// retryHop), the request's deadline and attempt timeout, the endpoint leases (admission, load,
// failure accrual), the budgets and the backoff; a protocol only sends one attempt and relays the
// final answer.

import type { AbortEvents } from '../../../core/abort.js';
import { sleepOn, type Clock } from '../../../core/clock.js';
import type { HostmeshError } from '../../../errors.js';
import type { Endpoint } from '../../../namer/addr.js';
import type { Classifier, H2Classifier, ResponseClass } from './classifier.js';
import type { RequestContext } from '../../context.js';
import { AttemptTimer } from '../../deadline.js';
import { DRAINING_HEADER, type DrainingPeers } from '../concrete/draining-peers.js';
import { endpointKey, type EndpointPools } from '../endpoint/endpoint-pool.js';
import type { RouterEvents, TimeoutKind } from '../../events.js';
import type { FailureAccrual } from '../concrete/failure-accrual.js';
import { headerValue } from '../../headers.js';
import { markReason, REQUEUE_HEADER, type RequeueReason } from './requeue.js';
import { backoffDelays, type Budgets, type RetryPolicy } from './retries.js';
import type { RoutePlan } from '../../route-plan.js';
import type { EndpointStage, Lease } from '../endpoint/endpoint.js';

/** Which deadline fired (a metric label: this set is closed; events.ts). */
export type { TimeoutKind };

/** What a logical service's requests are retried by (Linkerd 1 service config). */
export interface ServiceParams {
  readonly retries: RetryPolicy;
  readonly classify: Classifier;
  /** The classifier of an h2 router's answers (io.l5d.h2.* kinds), per name as `classify`. */
  readonly classifyH2: H2Classifier;
  /** Retry budgets of this policy, one per service name. */
  readonly retryBudgets: Budgets;
}

/** What a bound client's attempts are bounded by (Linkerd 1 client config). */
export interface ClientParams {
  readonly requestAttemptTimeoutMs: number | undefined;
  /** Requeue budgets of this policy, one per client id. */
  readonly requeueBudgets: Budgets;
  /** The pools a per-prefix client (io.l5d.static TLS or pool limits) connects through; unset: the endpoint stage's. */
  readonly pools?: EndpointPools | undefined;
  /** Its failure accrual state (a per-prefix failureAccrual); unset: the endpoint stage's. */
  readonly accrual?: FailureAccrual | undefined;
}

export interface ForwardOptions {
  readonly endpoints: EndpointStage;
  /** Attempt timeouts, deadlines and retry backoffs run on it (tests drive it). */
  readonly clock: Clock;
  /** Where a peer router's draining mark is kept (the concrete stage skips those peers). */
  readonly drainingPeers?: DrainingPeers | undefined;
  /** The settings of a service (by logical name) and of a client (by bound id). */
  readonly service: (service: string) => ServiceParams;
  readonly client: (client: string) => ClientParams;
  readonly random?: (() => number) | undefined;
  /** Waits between retries (tests make it instant); default sleepOn(clock). */
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Timeouts, requeues, retries, exhausted budgets and classes (router/events.ts). */
  readonly events: RouterEvents;
}

/**
 * Whether this router retries an app's answer (and an attempt that timed out, which the app may
 * have received): the outgoing router does, an inbound one never. Across the two hops of the
 * DaemonSet topology a request then reaches an app at most 1 + the outgoing router's
 * maxRetriesPerRequest times (before: up to 11 x 11). The outgoing router is where the service's
 * config lives, and its retry goes through its balancer again, so it can reach another node's
 * pod; the inbound router only knows its own node's. Requeues (no app reached) stay at both
 * hops. The rule is the listener's direction, not a header: nothing a pod sends changes it.
 */
export function retryHop(ctx: RequestContext): boolean {
  return ctx.direction !== 'inbound';
}

/** An attempt that ended with no answer. */
export interface Failed {
  readonly kind: 'failed';
  /** The error's code (undici's, a socket's, REFUSED_STREAM): what the requeue decision and the error read. */
  readonly code: string;
  readonly err: Error;
  /** Why it may be sent to another endpoint (nothing reached an app), if it may. */
  readonly requeue: RequeueReason | undefined;
}

/** How one attempt ended. */
export type Attempt<A> =
  | {
      readonly kind: 'answer';
      readonly answer: A;
      /** The answer's head (the requeue and draining marks of a peer router are read from it). */
      readonly head: Readonly<Record<string, string | string[] | undefined>>;
      /** Its class; undefined when it is classified at its end (a streamed gRPC answer, by its trailers). */
      readonly cls: ResponseClass | undefined;
    }
  | Failed
  /** The attempt's signal fired: the client left, or a deadline (the timer says which). */
  | { readonly kind: 'aborted' };

/** The part of forwarding that depends on the protocol: one attempt, and the final answer's relay. */
export interface Exchange<A, R> {
  /** The fair-share key: the pod's address on the outbound side; none inbound (every request is a peer router's). */
  readonly source: string | undefined;
  /** Whether an attempt waits for an admission slot (an Upgrade does not: a tunnel may stay open for hours). */
  readonly admitted: boolean;
  /** Whether an app's answer (and a timed-out attempt) may ever be retried (an Upgrade: never). */
  readonly retries: boolean;
  /** Whether final answers are counted by class (events.classified). */
  readonly reportsClass: boolean;
  /** Whether the request can be sent again (its body still kept). */
  replayable(): boolean;
  /** Whether the client went away. */
  gone(): boolean;
  /** What the exchange ends with when the client went away. */
  left(): R;
  /** Whether an attempt that timed out may be retried (the classifier's view of a 503 to this request). */
  timeoutRetryable(): boolean;
  /** Sends one attempt on the lease's endpoint; resolves at its answer's head (or why none came). */
  send(endpoint: Endpoint, lease: Lease, signal: AbortEvents, timer: AttemptTimer): Promise<Attempt<A>>;
  /** Drops an answer that is not relayed (requeued or retried) and detaches the request from it. */
  discard(answer: A): void | Promise<void>;
  /** The final answer: relayed under the attempt's lease (released when this resolves). */
  relay(answer: A, cls: ResponseClass | undefined, lease: Lease): Promise<R>;
  /** The error for an attempt with no answer when nothing more is tried. */
  failure(f: Failed, endpoint: Endpoint): HostmeshError;
  /** The exchange is over, however it ended (called last, once). */
  done?(): void;
}

/** The settings one forwarded request runs under (the caller reads them, the loop uses them). */
export interface Scope {
  readonly service: string;
  readonly client: string;
  readonly cli: ClientParams;
  readonly pools: EndpointPools;
  readonly svc: ServiceParams;
}

/** A Scope made by a constructor: never pretenured, as a literal's allocation site may be (route-plan.ts, Plan). */
class RequestScope implements Scope {
  constructor(
    readonly service: string,
    readonly client: string,
    readonly cli: ClientParams,
    readonly pools: EndpointPools,
    readonly svc: ServiceParams,
  ) {}
}

export function scopeOf(o: ForwardOptions, plan: RoutePlan): Scope {
  const service = plan.service.show();
  const client = plan.name.id.show();
  const cli = o.client(client);
  return new RequestScope(service, client, cli, cli.pools ?? o.endpoints.pools, o.service(service));
}

/** Counts a fired deadline by whose it was and makes its 503 TIMEOUT (deadline.ts). */
export function timedOut(o: ForwardOptions, timer: AttemptTimer, ctx: RequestContext): HostmeshError {
  o.events.timeout(timer.expired === 'attempt' ? 'attempt' : ctx.deadline?.source === 'header' ? 'deadline' : 'total', ctx.service ?? '-');
  return timer.error();
}

/**
 * One request, in as many attempts as it takes, each through its endpoint's lease and deadlines.
 * A request no app received (the connection was refused, or a peer router marked its answer with
 * REQUEUE_HEADER) is requeued on another endpoint within the client's requeue budget, at once
 * (Linkerd 1 requeues); an answer the classifier calls retryable is retried within the service's
 * retry budget after backoff, at the outgoing hop only. A request is sent again only while the
 * exchange can replay it. `abort` is the request's own signal (the client left).
 */
export async function forwardAttempts<A, R>(
  o: ForwardOptions,
  plan: RoutePlan,
  ctx: RequestContext,
  scope: Scope,
  abort: AbortEvents,
  x: Exchange<A, R>,
): Promise<R> {
  const { service, client, cli, pools, svc } = scope;
  const policy = svc.retries;
  const retryBudget = svc.retryBudgets.get(service);
  const requeueBudget = cli.requeueBudgets.get(client);
  // An app's answer is retried at one hop only, the outgoing router's (retryHop).
  const retriesHere = x.retries && retryHop(ctx);
  // Each attempt's own abort signal, fired at its timeout or the request's deadline (deadline.ts).
  const timer = new AttemptTimer({ clock: o.clock, deadline: ctx.deadline, attemptTimeoutMs: cli.requestAttemptTimeoutMs, abort });
  if (x.retries) retryBudget.deposit();
  requeueBudget.deposit();
  // The endpoints attempted, by key. Most requests are answered at their first attempt: the set
  // is made only when a second endpoint is looked for or tried (its first member is plan.endpoint).
  let tried: Set<string> | undefined;
  const first = plan.endpoint;
  let delays: (() => number) | undefined;
  let retries = 0;
  let endpoint = first;
  const canResend = (): boolean => !x.gone() && x.replayable();
  /** The endpoint to requeue on, when the request can be sent again, one is left and the budget allows. */
  const requeue = (reason: RequeueReason): Endpoint | undefined => {
    if (!canResend()) return undefined;
    tried ??= new Set([endpointKey(first)]);
    const next = plan.another(tried);
    if (next === undefined) return undefined;
    if (!requeueBudget.tryWithdraw()) {
      o.events.budgetExhausted('requeue', service);
      return undefined;
    }
    o.events.requeue(reason, service);
    return next;
  };
  /** Whether a retryable answer may be retried: attempts left, a request that can be resent, the budget. */
  const retry = (): boolean => {
    if (!retriesHere || retries >= policy.maxRetriesPerRequest || !canResend()) return false;
    if (!retryBudget.tryWithdraw()) {
      o.events.budgetExhausted('retry', service);
      return false;
    }
    retries++;
    o.events.retry(service);
    return true;
  };
  try {
    for (;;) {
      if (timer.remaining() <= 0) {
        timer.expired = 'deadline'; // spent in backoff or earlier attempts
        throw timedOut(o, timer, ctx);
      }
      const signal = timer.start();
      if (tried !== undefined || endpoint !== first) (tried ??= new Set([endpointKey(first)])).add(endpointKey(endpoint));
      // Failure accrual sees every attempt's outcome; a probe without one lets another go.
      const lease = o.endpoints.lease(endpoint, client, x.source, service, pools, cli.accrual);
      try {
        let a: Attempt<A> | { kind: 'thrown'; err: unknown };
        try {
          if (x.admitted) {
            const waiting = lease.admit(signal); // undefined: admitted at once
            if (waiting !== undefined) await waiting;
          }
          if (x.gone()) return x.left(); // the client left while waiting
          a = await x.send(endpoint, lease, signal, timer);
        } catch (err) {
          a = { kind: 'thrown', err };
        }
        timer.stop(); // the deadline bounds the wait for an answer's head; its body has its own deadlines
        if (a.kind !== 'answer') {
          if (timer.expired !== undefined) {
            if (timer.expired === 'attempt') lease.record(false); // the endpoint did not answer in time
            const err = timedOut(o, timer, ctx);
            // A timed-out attempt is retried as the classifier would retry a 503 to this request.
            if (timer.expired === 'attempt' && x.timeoutRetryable() && retry()) {
              endpoint = plan.another(new Set()) ?? endpoint;
              continue;
            }
            throw err;
          }
          if (a.kind === 'thrown') throw a.err; // shed, the endpoint pools full, a stalled request body
          if (a.kind === 'aborted') return x.left();
          if (a.code !== 'UND_ERR_ABORTED' && !x.gone()) lease.record(false);
          const next = a.requeue === undefined ? undefined : requeue(a.requeue);
          if (next !== undefined) {
            endpoint = next;
            continue;
          }
          throw x.failure(a, endpoint);
        }
        // Only a peer router's marks count (the endpoint is a router, reached over mTLS); a router
        // drops them from every answer it relays, so an app cannot forge them. A peer router about
        // to drain says so on its answers; any unmarked answer from it ends an earlier mark.
        if (plan.tls && o.drainingPeers !== undefined) {
          if (a.head[DRAINING_HEADER] !== undefined) o.drainingPeers.mark(lease.entry.key);
          else if (o.drainingPeers.size > 0) o.drainingPeers.clear(lease.entry.key);
        }
        const mark = plan.tls ? headerValue(a.head[REQUEUE_HEADER]) : undefined;
        if (mark !== undefined) {
          lease.record(false); // the node could not serve this client's requests
          const next = requeue(markReason(mark));
          if (next !== undefined) {
            await x.discard(a.answer);
            endpoint = next;
            continue;
          }
        }
        const cls = a.cls;
        if (cls !== undefined) {
          if (mark === undefined) lease.record(cls === 'success');
          if (cls === 'retryable' && retry()) {
            await x.discard(a.answer);
            lease.release();
            delays ??= backoffDelays(policy.backoff, o.random);
            const ms = delays();
            if (ms > 0) await (o.sleep ?? ((d: number) => sleepOn(o.clock, d)))(Math.min(ms, Math.max(0, timer.remaining())));
            if (x.gone()) return x.left();
            // A retry goes through the balancer again (Linkerd 1 retries above the balancer).
            endpoint = plan.another(new Set()) ?? endpoint;
            continue;
          }
          if (x.reportsClass) o.events.classified(service, cls);
        }
        return await x.relay(a.answer, cls, lease);
      } finally {
        lease.release();
      }
    }
  } finally {
    timer.stop();
    x.done?.();
  }
}
