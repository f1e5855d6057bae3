// What routers report (router/events.ts RouterEvents and the router's parts): overrides, bindings,
// sheds, deadlines, requeues, retries, classes, failure accrual, draining peers, authorization,
// delivery, per-name settings, endpoint pools, ingress and dtab reloads, as Prometheus families.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { PoolEvents } from '../router/stages/endpoint/endpoint-pool.js';
import type {
  AuthzEvents,
  AuthzVerdict,
  BindingEviction,
  DeliveryRefusal,
  IngressRefusal,
  RequeueReason,
  ResponseClass,
  RouterEvents,
  RouterPartEvents,
  ShedReason,
  TimeoutKind,
} from '../router/events.js';
import { AuthzCallers } from './authz-callers.js';
import { children } from './labels.js';
import type { ListenerMetrics } from './listener-metrics.js';
import { RECENT_RETRIES, type RequestMetrics } from './request-metrics.js';
import { publishCounter } from './scrape-rows.js';

const CLASSES: readonly ResponseClass[] = ['success', 'failure', 'retryable'];
const VERDICTS: readonly AuthzVerdict[] = ['allow', 'deny', 'audit'];

/** The router families, once per registry. */
export class RouterFamilies {
  readonly dtabOverrides: Counter;
  readonly bindingBudgetExceeded: Counter;
  readonly bindingEvictions: Counter;
  readonly sheds: Counter;
  readonly upstreamTimeouts: Counter;
  readonly requeues: Counter;
  readonly retries: Counter;
  readonly retryBudgetExhausted: Counter;
  readonly responseClasses: Counter;
  readonly accrualRemovals: Counter;
  readonly accrualDead: Gauge;
  readonly drainingPeerMarks: Counter;
  readonly drainingPeers: Gauge;
  readonly authzDecisions: Counter;
  readonly policyReloadFailures: Counter;
  /** Endpoints the incoming router's delivery check refused (router/stages/concrete/delivery.ts), by reason. */
  readonly deliveryRefused: Counter;
  readonly staticParamsEvictions: Counter;
  /** Endpoint pools open per router, and pools closed by reason (router/stages/endpoint/endpoint-pool.ts). */
  readonly endpointPools: Gauge;
  readonly endpointPoolsClosed: Counter;
  readonly dtabReloadFailures: Counter;
  /** io.l5d.ingress: Ingress versions not served (too many rules, too large, unsafe regex, over maxIngresses, no backend). */
  readonly ingressRefused: Counter;
  /** io.l5d.ingress: Ingresses and rules served, per router. */
  readonly ingressServed: Gauge;
  /** The routers whose rows the per-request families (retries, classes, authz) publish at scrape time. */
  readonly routers: RouterMetrics[] = [];

  constructor(registry: Registry) {
    const registers = [registry];
    const routers = this.routers;
    this.ingressRefused = new Counter({
      name: 'hostmesh_ingress_refused_total',
      help: 'Ingress resource versions an io.l5d.ingress identifier does not serve, by reason (too_many_rules, too_large, bad_regex, no_backend, over_max_ingresses).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.ingressServed = new Gauge({
      name: 'hostmesh_ingress_served',
      help: 'Ingress resources (what=ingresses) and their path rules (what=rules) an io.l5d.ingress identifier serves.',
      labelNames: ['router', 'what'],
      registers,
    });
    this.dtabReloadFailures = new Counter({
      name: 'hostmesh_dtab_reload_failures_total',
      help: 'dtabFile versions rejected (the previous dtab stays).',
      labelNames: ['router'],
      registers,
    });
    this.authzDecisions = new Counter({
      name: 'hostmesh_authz_total',
      help: 'Authorization decisions on final destinations (allow; deny: 403 AUTHZ_DENIED or DTAB_OVERRIDE_REFUSED; audit: a would-deny allowed by audit mode), by logical service.',
      labelNames: ['router', 'service', 'decision'],
      registers,
      collect() {
        publishCounter(this, (add) => {
          for (const r of routers)
            for (const [service, counts] of r.authzCounts)
              for (let i = 0; i < VERDICTS.length; i++) {
                const n = counts[i] as number;
                if (n > 0) add({ router: r.label, service, decision: VERDICTS[i] as string }, n);
              }
        });
      },
    });
    this.policyReloadFailures = new Counter({
      name: 'hostmesh_policy_reload_failures_total',
      help: 'Authorization policy file versions rejected (the previous policy stays).',
      registers,
    });
    this.dtabOverrides = new Counter({
      name: 'hostmesh_dtab_overrides_total',
      help: 'Requests carrying an l5d-dtab or l5d-ctx-dtab override.',
      labelNames: ['router'],
      registers,
    });
    this.bindingBudgetExceeded = new Counter({
      name: 'hostmesh_binding_budget_exceeded_total',
      help: "Requests refused because binding their name exceeded the router's bindingBudget, by what made it too costly (override: 400; dtab: 502).",
      labelNames: ['router', 'source'],
      registers,
    });
    this.deliveryRefused = new Counter({
      name: 'hostmesh_delivery_refused_total',
      help: 'Endpoints of a Kubernetes name the incoming router would not deliver to: not a known pod, a pod of another node or namespace, a hostNetwork pod (router/stages/concrete/delivery.ts).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.bindingEvictions = new Counter({
      name: 'hostmesh_binding_cache_evictions_total',
      help: 'Cached bindings dropped: unused for bindingCache.idleTtlSecs (idle), or the least recently used past bindingCache.paths/overrides (capacity).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.staticParamsEvictions = new Counter({
      name: 'hostmesh_static_params_evictions_total',
      help: "io.l5d.static per-name settings dropped past their cap: merged settings of a logical name (service) or bound id (client) past bindingCache.paths/clients, or a per-prefix client's pools past bindingCache.clients (pools).",
      labelNames: ['router', 'scope'],
      registers,
    });
    this.endpointPools = new Gauge({
      name: 'hostmesh_endpoint_pools',
      help: 'Endpoint pools (keep-alive connection pools, one per endpoint) open per router, at most client.maxEndpointPools per client settings.',
      labelNames: ['router'],
      registers,
    });
    this.endpointPoolsClosed = new Counter({
      name: 'hostmesh_endpoint_pools_closed_total',
      help: 'Endpoint pools closed with their connections: nothing in flight for the pool idle time (idle), the least recently used idle one past client.maxEndpointPools (capacity), or on new client certificates or shutdown (retired).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.sheds = new Counter({
      name: 'hostmesh_requests_shed_total',
      help: 'Requests answered 503 by admission control: queue full, the source over its share of the queue, or the wait bound passed.',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.requeues = new Counter({
      name: 'hostmesh_requeues_total',
      help: 'Requests sent again to another endpoint because no app had received them (client.requeueBudget): a peer router had no local endpoint (no_local_endpoint) or could not deliver (not_delivered), the connection was refused (connect_failed), or closed under an idempotent request (connection_closed).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.retries = new Counter({
      name: 'hostmesh_retries_total',
      help: 'Responses the classifier called retryable that were retried (service.retries), by logical service.',
      labelNames: ['router', 'service'],
      registers,
      collect() {
        // A row's retries counter and its resilience.retries move together (RouterMetrics.retry).
        publishCounter(this, (add) => {
          for (const r of routers) for (const [service, s] of r.services) if (s.resilience.retries > 0) add({ router: r.label, service }, s.resilience.retries);
        });
      },
    });
    this.retryBudgetExhausted = new Counter({
      name: 'hostmesh_retry_budget_exhausted_total',
      help: 'Retries (kind=retry) or requeues (kind=requeue) not made because their budget was empty: the last answer was relayed.',
      labelNames: ['router', 'kind'],
      registers,
    });
    this.responseClasses = new Counter({
      name: 'hostmesh_response_classes_total',
      help: 'Relayed responses by response classifier class (success, failure, retryable: a retryable failure not retried).',
      labelNames: ['router', 'service', 'class'],
      registers,
      collect() {
        publishCounter(this, (add) => {
          for (const r of routers)
            for (const [service, s] of r.services)
              for (const cls of CLASSES) if (s.classes[cls] > 0) add({ router: r.label, service, class: cls }, s.classes[cls]);
        });
      },
    });
    this.accrualRemovals = new Counter({
      name: 'hostmesh_failure_accrual_removals_total',
      help: 'Endpoints marked dead by failure accrual (client.failureAccrual): the balancer skips them until a probe after backoff succeeds.',
      labelNames: ['router'],
      registers,
    });
    this.accrualDead = new Gauge({
      name: 'hostmesh_failure_accrual_dead_endpoints',
      help: 'Endpoints (per bound client) failure accrual holds dead or on probation now.',
      labelNames: ['router'],
      registers,
    });
    this.drainingPeerMarks = new Counter({
      name: 'hostmesh_draining_peer_marks_total',
      help: 'Peer routers that announced a drain (l5d-hostmesh-draining over mTLS): the balancer skips them while another endpoint is alive.',
      labelNames: ['router'],
      registers,
    });
    this.drainingPeers = new Gauge({
      name: 'hostmesh_draining_peers',
      help: 'Peer routers marked draining now (drainingPeers.ttlMs after their last mark, or until they answer unmarked).',
      labelNames: ['router'],
      registers,
    });
    this.upstreamTimeouts = new Counter({
      name: 'hostmesh_upstream_timeouts_total',
      help: 'Deadlines that fired: upstream headers, connect, response body idle, request body idle, total (service.totalTimeoutMs), deadline (l5d-ctx-deadline), attempt (client.requestAttemptTimeoutMs), deadline_passed (already past on arrival, not forwarded).',
      labelNames: ['router', 'kind'],
      registers,
    });
  }
}

/**
 * One router's events as metrics. Children whose labels are fixed for the router (or add a value
 * from a closed set) are resolved once; per-service counts (retries, classes) are plain numbers on
 * the service's row, which the services table bounds (request-metrics.ts), and authorization
 * decisions plain numbers per service label: their families publish them at scrape time.
 */
export class RouterMetrics implements RouterEvents, RouterPartEvents, AuthzEvents {
  /** Per final destination, its callers by identity with allowed/denied counts (the dashboard). */
  readonly authzCallers = new AuthzCallers();
  /** The router's endpoint pools and their connections (router/stages/endpoint/endpoint-pool.ts PoolEvents). */
  readonly pools: PoolEvents;
  /** Authorization decisions by service label: counts in VERDICTS' order (hostmesh_authz_total's values). */
  readonly authzCounts = new Map<string, Float64Array>();
  readonly #f: RouterFamilies;
  readonly #requests: RequestMetrics;
  readonly #overrides: Counter.Internal;
  readonly #budget: (source: string) => Counter.Internal;
  readonly #evictions: (reason: string) => Counter.Internal;
  readonly #sheds: (reason: string) => Counter.Internal;
  readonly #timeouts: (kind: string) => Counter.Internal;
  readonly #requeues: (reason: string) => Counter.Internal;
  readonly #exhausted: (kind: string) => Counter.Internal;
  readonly #removals: Counter.Internal;
  readonly #dead: Gauge.Internal<string>;
  readonly #marks: Counter.Internal;
  readonly #draining: Gauge.Internal<string>;

  constructor(
    readonly label: string,
    families: RouterFamilies,
    requests: RequestMetrics,
    listener: ListenerMetrics,
  ) {
    this.#f = families;
    this.#requests = requests;
    families.routers.push(this);
    const f = families;
    this.#overrides = f.dtabOverrides.labels(label);
    this.#budget = children((v) => f.bindingBudgetExceeded.labels(label, v));
    this.#evictions = children((v) => f.bindingEvictions.labels(label, v));
    this.#sheds = children((v) => f.sheds.labels(label, v));
    this.#timeouts = children((v) => f.upstreamTimeouts.labels(label, v));
    this.#requeues = children((v) => f.requeues.labels(label, v));
    this.#exhausted = children((v) => f.retryBudgetExhausted.labels(label, v));
    this.#removals = f.accrualRemovals.labels(label);
    this.#dead = f.accrualDead.labels(label);
    this.#marks = f.drainingPeerMarks.labels(label);
    this.#draining = f.drainingPeers.labels(label);
    const open = f.endpointPools.labels(label);
    const closed = children((v) => f.endpointPoolsClosed.labels(label, v));
    this.pools = {
      connect: () => listener.connectionOpened('client'),
      disconnect: () => listener.connectionClosed('client', 0, 0),
      poolOpened: () => open.inc(),
      poolClosed: (reason) => {
        open.dec();
        closed(reason).inc();
      },
      refused: () => this.shed('endpoint_pools_full'),
    };
  }

  /** The services table the per-service families read (request-metrics.ts). */
  get services(): RequestMetrics['services'] {
    return this.#requests.services;
  }

  override(): void {
    this.#overrides.inc();
  }

  budgetExceeded(source: 'override' | 'dtab'): void {
    this.#budget(source).inc();
  }

  bindingEvicted(reason: BindingEviction): void {
    this.#evictions(reason).inc();
  }

  /** `reason` is from a closed set (router/stages/endpoint/admission.ts), or endpoint_pools_full. */
  shed(reason: ShedReason | 'endpoint_pools_full'): void {
    this.#sheds(reason).inc();
  }

  timeout(kind: TimeoutKind, service?: string): void {
    this.#timeouts(kind).inc();
    if (service !== undefined) this.#requests.stats(service).resilience.timeouts++;
  }

  requeue(reason: RequeueReason, service?: string): void {
    this.#requeues(reason).inc();
    if (service !== undefined) this.#requests.stats(service).resilience.requeues++;
  }

  /** The service label shares the services table's bound (MAX_SERVICES, then overflow). */
  retry(service: string): void {
    const svc = this.#requests.stats(service);
    svc.resilience.retries++;
    svc.recent.add(RECENT_RETRIES);
  }

  budgetExhausted(kind: 'retry' | 'requeue', service?: string): void {
    this.#exhausted(kind).inc();
    if (service !== undefined) this.#requests.stats(service).resilience.budgetExhausted++;
  }

  /** The service label shares the services table's bound. */
  classified(service: string, cls: ResponseClass): void {
    this.#requests.stats(service).classes[cls]++;
  }

  accrualRemoval(client?: string): void {
    if (client !== undefined) this.#requests.linkerd1.client(client).removals++;
    this.#removals.inc();
  }

  accrualDead(dead: number): void {
    this.#dead.set(dead);
  }

  drainingPeerMarked(): void {
    this.#marks.inc();
  }

  drainingPeers(size: number): void {
    this.#draining.set(size);
  }

  /** An authorization decision (router/stages/authorize/authorize.ts); the service label shares MAX_SERVICES. */
  authz(service: string, destination: string, caller: string, verdict: AuthzVerdict): void {
    const label = this.#requests.serviceLabel(service);
    let counts = this.authzCounts.get(label);
    if (counts === undefined) {
      counts = new Float64Array(VERDICTS.length);
      this.authzCounts.set(label, counts);
    }
    const i = verdict === 'allow' ? 0 : verdict === 'deny' ? 1 : 2;
    counts[i] = (counts[i] as number) + 1;
    this.authzCallers.record(service, destination, caller, verdict);
  }

  authzDecision(service: string, destination: string, caller: string, verdict: AuthzVerdict): void {
    this.authz(service, destination, caller, verdict);
  }

  /** Through the same bounded labels as decisions: the service name comes from the request. */
  overrideRefused(service: string, destination: string, caller: string): void {
    this.authz(service, destination, caller, 'deny');
  }

  /** An endpoint the incoming router's delivery check refused (router/stages/concrete/delivery.ts). */
  deliveryRefused(reason: DeliveryRefusal): void {
    this.#f.deliveryRefused.labels(this.label, reason).inc();
  }

  /** io.l5d.static settings of a name (service, client) or a per-prefix client's pools dropped past their cap. */
  paramsEvicted(scope: 'service' | 'client' | 'pools'): void {
    this.#f.staticParamsEvictions.labels(this.label, scope).inc();
  }

  /** A dtabFile (or namerd) version rejected: the previous dtab stays. */
  dtabRejected(): void {
    this.#f.dtabReloadFailures.labels(this.label).inc();
  }

  /** An Ingress version an io.l5d.ingress identifier does not serve. */
  ingressRefused(reason: IngressRefusal): void {
    this.#f.ingressRefused.labels(this.label, reason).inc();
  }

  /** The Ingresses and rules an io.l5d.ingress identifier serves now. */
  ingressServed(ingresses: number, rules: number): void {
    this.#f.ingressServed.labels(this.label, 'ingresses').set(ingresses);
    this.#f.ingressServed.labels(this.label, 'rules').set(rules);
  }
}
