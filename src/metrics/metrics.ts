// Router metrics: Prometheus (prom-client, its own registry) with the names of the design
// contract, plus the flat Linkerd 1 style view (/admin/metrics.json) and per-service latency
// samples for the dashboard. On the request path it is map lookups and increments: the labelled
// children are created once per (router, service, client) and kept.

import { type Clock, systemClock } from '../core/clock.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AuthzCallers } from './authz-callers.js';
import { registerBoundedMapMetrics } from './bounded-maps.js';
import { RecentCounts } from './recent-counts.js';
import { anyPurposePeers } from '../tls/peer-certificate.js';
import { Linkerd1RouterStats } from './linkerd1-stats.js';

/** Distinct services per router before further ones are counted under OVERFLOW. */
export const MAX_SERVICES = 500;
export const OVERFLOW = 'overflow';
/**
 * Longest service or client name kept as its own label: names come from requests (Host, override
 * dtabs), and a row keeps its labels for the process's life, so a 6 KB name would cost its length
 * in every series of the row. Longer ones share the overflow row.
 */
export const MAX_LABEL_CHARS = 256;
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const SAMPLES = 1024;

interface ClientStats {
  readonly byClass: Counter.Internal[];
  requests: number;
  failures: number;
}

/** Kinds RecentCounts keeps per service: requests answered and retries made. */
const RECENT_REQUESTS = 0;
const RECENT_RETRIES = 1;

/** One service's stats on one router (all clients): what the dashboard and metrics.json show. */
export class ServiceStats {
  requests = 0;
  successes = 0;
  failures = 0;
  readonly clients = new Map<string, ClientStats>();
  /** Since start: retries, requeues, retries or requeues refused by an empty budget, deadlines fired. */
  readonly resilience = { retries: 0, requeues: 0, budgetExhausted: 0, timeouts: 0 };
  /** Requests and retries over the last minute (the retry rate). */
  readonly recent: RecentCounts;
  readonly #samples = new Float64Array(SAMPLES);
  #n = 0;
  constructor(
    readonly histogram: Histogram.Internal<string>,
    now: () => number = Date.now,
  ) {
    this.recent = new RecentCounts(2, now);
  }

  /** Requests answered and retries made over the last minute, and retries per request (null: none answered). */
  lastMinute(): { requests: number; retries: number; retryRate: number | null } {
    const [requests = 0, retries = 0] = this.recent.sums();
    return { requests, retries, retryRate: requests > 0 ? retries / requests : null };
  }

  sample(seconds: number): void {
    this.#samples[this.#n++ % SAMPLES] = seconds;
  }

  /** Latency quantiles (seconds) over the last SAMPLES requests. */
  quantiles(qs: readonly number[]): number[] {
    const n = Math.min(this.#n, SAMPLES);
    if (n === 0) return qs.map(() => 0);
    const sorted = this.#samples.slice(0, n).sort();
    return qs.map((q) => sorted[Math.min(n - 1, Math.floor(q * n))] as number);
  }
}

export class RouterMetrics {
  readonly services = new Map<string, ServiceStats>();
  readonly inFlight: Gauge.Internal<string>;
  readonly #m: Metrics;
  readonly #connections: Record<'server' | 'client', Counter.Internal>;
  readonly #closed: Record<'server' | 'client', Counter.Internal>;
  readonly #bytesIn: Counter.Internal;
  readonly #bytesOut: Counter.Internal;
  readonly #overrides: Counter.Internal;
  connectionsOpen = { server: 0, client: 0 };
  inFlightNow = 0;
  /** Verified peer routers (client certificate identity) on this router's TLS servers. */
  readonly peers = new Map<string, { connections: number; total: number; lastSeen: number }>();
  /** Per final destination, its callers by identity with allowed/denied counts (the dashboard). */
  readonly authzCallers = new AuthzCallers();
  /** Linkerd 1's rt/<router>/server|service|client scopes (linkerd1-format.ts names them at scrape time). */
  readonly linkerd1: Linkerd1RouterStats;

  constructor(
    readonly label: string,
    m: Metrics,
  ) {
    this.#m = m;
    this.linkerd1 = new Linkerd1RouterStats(m.now);
    this.inFlight = m.inFlight.labels(label);
    this.#connections = { server: m.connections.labels(label, 'server'), client: m.connections.labels(label, 'client') };
    this.#closed = { server: m.connectionsClosed.labels(label, 'server'), client: m.connectionsClosed.labels(label, 'client') };
    this.#bytesIn = m.bytes.labels(label, 'in');
    this.#bytesOut = m.bytes.labels(label, 'out');
    this.#overrides = m.dtabOverrides.labels(label);
  }

  started(): void {
    this.inFlight.inc();
    this.inFlightNow++;
  }

  /**
   * A request finished: `service` the logical name, `client` the bound id (if it got that far),
   * `server` the listener as Linkerd 1 labelled it (`<ip>/<port>`).
   */
  done(service: string | undefined, client: string | undefined, status: number, seconds: number, server?: string): void {
    this.linkerd1.record(server, service, client, status, seconds * 1000);
    this.inFlight.dec();
    this.inFlightNow--;
    let svc = this.services.get(service ?? '-');
    if (svc === undefined) svc = this.#service(service ?? '-');
    let c = svc.clients.get(client ?? '-');
    if (c === undefined) {
      c = this.#client(svc, service ?? '-', client ?? '-');
    }
    const cls = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 4;
    (c.byClass[cls] as Counter.Internal).inc();
    c.requests++;
    svc.requests++;
    if (status >= 500) {
      svc.failures++;
      c.failures++;
    } else svc.successes++;
    svc.histogram.observe(seconds);
    svc.sample(seconds);
    svc.recent.add(RECENT_REQUESTS);
  }

  connectionOpened(side: 'server' | 'client'): void {
    this.#connections[side].inc();
    this.connectionsOpen[side]++;
  }

  connectionClosed(side: 'server' | 'client', bytesIn: number, bytesOut: number): void {
    this.#closed[side].inc();
    this.connectionsOpen[side]--;
    if (side === 'server') {
      this.#bytesIn.inc(bytesIn);
      this.#bytesOut.inc(bytesOut);
    }
  }

  peerConnected(identity: string): void {
    let p = this.peers.get(identity);
    if (p === undefined) {
      // Bounded like services: identities are per node, so this is the cluster's node count.
      if (this.peers.size >= MAX_SERVICES) return;
      p = { connections: 0, total: 0, lastSeen: 0 };
      this.peers.set(identity, p);
    }
    p.connections++;
    p.total++;
    p.lastSeen = this.#m.now();
  }

  peerDisconnected(identity: string): void {
    const p = this.peers.get(identity);
    if (p === undefined) return;
    p.connections = Math.max(0, p.connections - 1);
    p.lastSeen = this.#m.now();
  }

  tlsFailure(reason: string): void {
    this.#m.tlsFailures.labels(this.label, reason).inc();
  }

  /**
   * An accepted connection closed at once because a cap was reached (reason: a fixed set); for
   * handshake_limit, an older unfinished handshake closed to make room for a new one.
   */
  connectionRefused(reason: 'listener_limit' | 'source_limit' | 'handshake_limit' | 'not_local' | 'unknown_source' | 'too_many_waiting'): void {
    this.#m.connectionsRefused.labels(this.label, reason).inc();
  }

  /** A connection closed because the deadline of the state it was in passed. */
  connectionDeadline(state: ConnectionState): void {
    this.#m.connectionDeadlines.labels(this.label, state).inc();
  }

  dtabOverride(): void {
    this.#overrides.inc();
  }

  /** A request shed by admission control; `reason` is from a closed set (router/admission.ts). */
  shed(reason: string): void {
    this.#m.sheds.labels(this.label, reason).inc();
  }

  /** A deadline that fired on the request path; `kind` is from a closed set (router.ts TimeoutKind). */
  timeout(kind: string, service?: string): void {
    this.#m.upstreamTimeouts.labels(this.label, kind).inc();
    if (service !== undefined) this.#stats(service).resilience.timeouts++;
  }

  /** A workload claim checked at the incoming router, by result (identity/workload-identity.ts). */
  identityClaim(result: string): void {
    this.#m.identityClaims.labels(this.label, result).inc();
  }

  /** An authorization decision (router/authorize.ts); the service label shares MAX_SERVICES. */
  authz(service: string, destination: string, caller: string, verdict: 'allow' | 'deny' | 'audit'): void {
    const label = this.services.has(service) || (this.services.size < MAX_SERVICES && service.length <= MAX_LABEL_CHARS) ? service : OVERFLOW;
    this.#m.authzDecisions.labels(this.label, label, verdict).inc();
    this.authzCallers.record(service, destination, caller, verdict);
  }

  /** A request sent again to another endpoint because no app had received it (router.ts RequeueReason). */
  requeue(reason: string, service?: string): void {
    this.#m.requeues.labels(this.label, reason).inc();
    if (service !== undefined) this.#stats(service).resilience.requeues++;
  }

  /** A retryable response retried; the service label shares MAX_SERVICES. */
  retry(service: string): void {
    this.#m.retries.labels(this.label, this.#serviceLabel(service)).inc();
    const svc = this.#stats(service);
    svc.resilience.retries++;
    svc.recent.add(RECENT_RETRIES);
  }

  /** A retry or requeue wanted while its budget was empty. */
  budgetExhausted(kind: 'retry' | 'requeue', service?: string): void {
    this.#m.retryBudgetExhausted.labels(this.label, kind).inc();
    if (service !== undefined) this.#stats(service).resilience.budgetExhausted++;
  }

  /** An endpoint marked dead by failure accrual (router/failure-accrual.ts), of bound client `client`. */
  accrualRemoval(client?: string): void {
    if (client !== undefined) this.linkerd1.client(client).removals++;
    this.#m.accrualRemovals.labels(this.label).inc();
  }

  /** Endpoints failure accrual holds dead (or on probation) now. */
  accrualDead(dead: number): void {
    this.#m.accrualDead.labels(this.label).set(dead);
  }

  /** A peer router announced its drain (router/draining-peers.ts), counted once per mark. */
  drainingPeerMarked(): void {
    this.#m.drainingPeerMarks.labels(this.label).inc();
  }

  /** Peer routers marked draining now (skipped by the balancer while another endpoint is alive). */
  drainingPeers(size: number): void {
    this.#m.drainingPeers.labels(this.label).set(size);
  }

  /** A relayed response by class (router/classifier.ts); the service label shares MAX_SERVICES. */
  classified(service: string, cls: string): void {
    this.#m.responseClasses.labels(this.label, this.#serviceLabel(service), cls).inc();
  }

  #serviceLabel(service: string): string {
    return this.services.has(service) || (this.services.size < MAX_SERVICES && service.length <= MAX_LABEL_CHARS) ? service : OVERFLOW;
  }

  /** A request refused with 431 for having more header fields than the server's maxHeaders. */
  tooManyHeaders(): void {
    this.#m.headerLimitRefusals.labels(this.label).inc();
  }

  /** A connection was no longer read: maxPipelinedRequests of its requests were queued (server/pipeline.ts). */
  pipelinePaused(): void {
    this.#m.pipelinePaused.labels(this.label).inc();
  }

  /** Queued pipelined requests of a connection that closed, dropped without being sent. */
  pipelineDropped(n: number): void {
    this.#m.pipelineDropped.labels(this.label).inc(n);
  }

  /** A service's stats, made on first use (past MAX_SERVICES names, the overflow row's). */
  #stats(name: string): ServiceStats {
    return this.services.get(name) ?? this.#service(name);
  }

  #service(name: string): ServiceStats {
    const key = this.services.size >= MAX_SERVICES || name.length > MAX_LABEL_CHARS ? OVERFLOW : name;
    let s = this.services.get(key);
    if (s === undefined) {
      s = new ServiceStats(this.#m.duration.labels(this.label, key), this.#m.now);
      this.services.set(key, s);
    }
    return s;
  }

  #client(svc: ServiceStats, service: string, client: string): ClientStats {
    const serviceLabel = this.services.get(service) === svc ? service : OVERFLOW;
    const clientLabel = svc.clients.size >= 16 || client.length > MAX_LABEL_CHARS ? OVERFLOW : client;
    let c = svc.clients.get(clientLabel);
    if (c === undefined) {
      c = { byClass: CLASSES.map((k) => this.#m.requests.labels(this.label, serviceLabel, clientLabel, k)), requests: 0, failures: 0 };
      svc.clients.set(clientLabel, c);
    }
    return c;
  }
}

/** Socket states that have a deadline (metric label values). */
export type ConnectionState = 'handshake' | 'headers' | 'idle' | 'tunnel_idle' | 'error_answer';

/** State kept for request data, read at scrape time: binding caches, lookups, namer names. */
export interface StateReport {
  routers(): Iterable<{ readonly label: string; readonly bindings: number }>;
  interpreter(): { readonly lookups: number; readonly bindings: number };
  namers(): Iterable<{
    readonly kind: string;
    readonly entries: number;
    readonly evictions: number;
    readonly namespaces?: number;
    readonly refused?: number;
    readonly addressesRefused?: number;
    readonly endpointsCapped?: number;
  }>;
  /** The pod directory: times an IP was claimed by two live pods. */
  pods?(): { readonly conflictsSeen: number; readonly conflictedIps: number } | undefined;
}

/** Something with state to report at scrape time (namers). */
export interface NamerReport {
  readonly kind: string;
  readonly updates: number;
  readonly stale: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  readonly routers = new Map<string, RouterMetrics>();
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly inFlight: Gauge;
  readonly connections: Counter;
  readonly connectionsClosed: Counter;
  readonly bytes: Counter;
  readonly tlsFailures: Counter;
  readonly dtabReloadFailures: Counter;
  /** io.l5d.ingress: Ingress versions not served (too many rules, too large, unsafe regex, over maxIngresses, no backend). */
  readonly ingressRefused: Counter;
  /** io.l5d.ingress: Ingresses and rules served, per router. */
  readonly ingressServed: Gauge;
  readonly authzDecisions: Counter;
  readonly policyReloadFailures: Counter;
  readonly tlsReloads: Counter;
  readonly dtabOverrides: Counter;
  readonly bindingBudgetExceeded: Counter;
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
  readonly headerLimitRefusals: Counter;
  readonly pipelinePaused: Counter;
  readonly pipelineDropped: Counter;
  /** Admin requests refused by the Host/Origin/state-change checks (reason: a fixed set). */
  readonly adminRefusals: Counter;
  readonly connectionsRefused: Counter;
  readonly identityClaims: Counter;
  readonly connectionDeadlines: Counter;
  readonly #namers: NamerReport[] = [];
  readonly bindingEvictions: Counter;
  /** Endpoints the incoming router's delivery check refused (router/delivery.ts), by reason. */
  readonly deliveryRefused: Counter;
  readonly staticParamsEvictions: Counter;
  /** Endpoint pools open per router, and pools closed by reason (router/endpoint-pool.ts). */
  readonly endpointPools: Gauge;
  readonly endpointPoolsClosed: Counter;
  #state: StateReport | undefined;
  /** The clock of the per-service last-minute counts (tests drive it). */
  readonly now: () => number;

  constructor(options: { clock?: Clock } = {}) {
    const clock = options.clock ?? systemClock;
    this.now = () => clock.now();
    // Node's process metrics (RSS, heap, event loop lag, GC, open handles), read at scrape time.
    collectDefaultMetrics({ register: this.registry });
    registerBoundedMapMetrics(this.registry);
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'hostmesh_requests_total',
      help: 'Requests answered, by logical service, bound client and status class.',
      labelNames: ['router', 'service', 'client', 'status_class'],
      registers,
    });
    this.duration = new Histogram({
      name: 'hostmesh_request_duration_seconds',
      help: 'Time from request to the end of the response.',
      labelNames: ['router', 'service'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.inFlight = new Gauge({ name: 'hostmesh_requests_in_flight', help: 'Requests being handled.', labelNames: ['router'], registers });
    this.connections = new Counter({
      name: 'hostmesh_connections_total',
      help: 'Connections opened (server: accepted; client: to endpoints).',
      labelNames: ['router', 'side'],
      registers,
    });
    this.connectionsClosed = new Counter({ name: 'hostmesh_connections_closed_total', help: 'Connections closed.', labelNames: ['router', 'side'], registers });
    this.bytes = new Counter({
      name: 'hostmesh_bytes_total',
      help: 'Bytes received from (in) and sent to (out) clients, counted when a connection closes.',
      labelNames: ['router', 'direction'],
      registers,
    });
    this.tlsFailures = new Counter({
      name: 'hostmesh_tls_handshake_failures_total',
      help: 'TLS handshakes refused, by reason.',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.tlsReloads = new Counter({
      name: 'hostmesh_tls_reloads_total',
      help: 'Rotated certificate file sets seen, applied (ok) or rejected (the previous certificates stay).',
      labelNames: ['result'],
      registers,
    });
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
    this.connectionsRefused = new Counter({
      name: 'hostmesh_connections_refused_total',
      help: 'Accepted connections closed at once because the listener (listener_limit) or the source (source_limit) was at its cap, or an unfinished TLS handshake of the source holding most closed over their cap (handshake_limit), or the outgoing port refused a source that is no pod of this node (not_local: a pod of another node; unknown_source: no pod at all; too_many_waiting: too many unknown sources waiting for the pod watch).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.identityClaims = new Counter({
      name: 'hostmesh_identity_claims_total',
      help: 'Workload claims (l5d-hostmesh-client-pod) checked at the incoming router, by result: ok, or why refused (malformed, unknown_pod, wrong_node, wrong_service_account, too_many_waiting: identity.maxClaimWaits claims already waited for the pod watch; unattested_peer is ignored, not refused).',
      labelNames: ['router', 'result'],
      registers,
    });
    this.connectionDeadlines = new Counter({
      name: 'hostmesh_connection_deadlines_total',
      help: 'Connections closed because the deadline of their state passed (handshake, headers, idle, tunnel_idle, error_answer).',
      labelNames: ['router', 'state'],
      registers,
    });
    this.headerLimitRefusals = new Counter({
      name: 'hostmesh_header_limit_refusals_total',
      help: 'Requests refused with 431: more header fields than the server keeps (maxHeaders).',
      labelNames: ['router'],
      registers,
    });
    this.pipelinePaused = new Counter({
      name: 'hostmesh_pipeline_paused_total',
      help: 'Times a connection was no longer read because maxPipelinedRequests of its pipelined requests were queued.',
      labelNames: ['router'],
      registers,
    });
    this.pipelineDropped = new Counter({
      name: 'hostmesh_pipeline_dropped_total',
      help: 'Queued pipelined requests dropped without being sent because their connection closed.',
      labelNames: ['router'],
      registers,
    });
    this.adminRefusals = new Counter({
      name: 'hostmesh_admin_refusals_total',
      help: 'Admin requests refused: host (Host not allowed), origin (cross-origin), simple (a state change without the hostmesh-admin header), forwarded (sent through a router), remote (shutdown from off the host).',
      labelNames: ['reason'],
      registers,
    });
    this.deliveryRefused = new Counter({
      name: 'hostmesh_delivery_refused_total',
      help: 'Endpoints of a Kubernetes name the incoming router would not deliver to: not a known pod, a pod of another node or namespace, a hostNetwork pod (router/delivery.ts).',
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
    const state = (): StateReport | undefined => this.#state;
    new Gauge({
      name: 'hostmesh_binding_cache_size',
      help: 'Bindings cached by each router (its own dtab and request overrides).',
      labelNames: ['router'],
      registers,
      collect() {
        for (const r of state()?.routers() ?? []) this.labels(r.label).set(r.bindings);
      },
    });
    new Gauge({
      name: 'hostmesh_interpreter_lookups',
      help: 'Namer lookups held by live bindings.',
      registers,
      collect() {
        this.set(state()?.interpreter().lookups ?? 0);
      },
    });
    new Gauge({
      name: 'hostmesh_interpreter_bindings',
      help: 'Live bindings (shared by identical dtab and path).',
      registers,
      collect() {
        this.set(state()?.interpreter().bindings ?? 0);
      },
    });
    new Gauge({
      name: 'hostmesh_namer_entries',
      help: 'Names each namer keeps (in use, or idle for less than its idleTtlSecs).',
      labelNames: ['namer'],
      registers,
      collect() {
        for (const n of state()?.namers() ?? []) this.labels(n.kind).set(n.entries);
      },
    });
    new Counter({
      name: 'hostmesh_namer_evictions_total',
      help: 'Names a namer dropped after no binding used them for its idleTtlSecs.',
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) this.labels(n.kind).inc(n.evictions);
      },
    });
    new Gauge({
      name: 'hostmesh_k8s_namespaces_watched',
      help: 'Namespaces a Kubernetes namer watches (2 API watches each; at most its maxNamespaces).',
      labelNames: ['namer'],
      registers,
      collect() {
        for (const n of state()?.namers() ?? []) if (n.namespaces !== undefined) this.labels(n.kind).set(n.namespaces);
      },
    });
    new Counter({
      name: 'hostmesh_k8s_namespaces_refused_total',
      help: "Names refused because their namespace would exceed the namer's maxNamespaces while every watched one is in use.",
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) if (n.refused !== undefined) this.labels(n.kind).inc(n.refused);
      },
    });
    new Counter({
      name: 'hostmesh_k8s_endpoint_addresses_refused_total',
      help: 'Endpoint addresses from the Kubernetes API never delivered to: not a canonical IP literal, loopback, link-local, unspecified, multicast or this node.',
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) if (n.addressesRefused !== undefined) this.labels(n.kind).inc(n.addressesRefused);
      },
    });
    new Counter({
      name: 'hostmesh_pod_ip_conflicts_total',
      help: 'Times two live pods reported the same IP: no identity is given for it until one lets go.',
      registers,
      collect() {
        this.reset();
        this.inc(state()?.pods?.()?.conflictsSeen ?? 0);
      },
    });
    new Counter({
      name: 'hostmesh_k8s_endpoints_capped_total',
      help: "Endpoint set rebuilds that left endpoints out for the namer's maxEndpointsPerService.",
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) if (n.endpointsCapped !== undefined) this.labels(n.kind).inc(n.endpointsCapped);
      },
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
    new Counter({
      name: 'hostmesh_peer_certificates_any_purpose_total',
      help: 'Verified peer connections whose certificate has no extended key usage, accepted for any purpose (RFC 5280), by the role the peer played (client: a peer router calling the incoming side; server: a peer router answering the outgoing side).',
      labelNames: ['side'],
      registers,
      collect() {
        this.reset();
        this.labels('client').inc(anyPurposePeers.client);
        this.labels('server').inc(anyPurposePeers.server);
      },
    });
    const namers = this.#namers;
    new Counter({
      name: 'hostmesh_namer_updates_total',
      help: 'Address set changes published by each namer.',
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of namers) this.labels(n.kind).inc(n.updates);
      },
    });
    new Gauge({
      name: 'hostmesh_namer_stale',
      help: '1 while a namer serves its last known state because its source (the Kubernetes API) is away.',
      labelNames: ['namer'],
      registers,
      collect() {
        for (const n of namers) this.labels(n.kind).set(n.stale ? 1 : 0);
      },
    });
  }

  router(label: string): RouterMetrics {
    let r = this.routers.get(label);
    if (r === undefined) {
      r = new RouterMetrics(label, this);
      this.routers.set(label, r);
    }
    return r;
  }

  /** Where the state gauges read from (set once by the process). */
  reportState(report: StateReport): void {
    this.#state = report;
  }

  addNamer(n: NamerReport): void {
    this.#namers.push(n);
  }

  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Linkerd 1 style flat names: rt/<router>/service/<svc>/requests, .../failures, ... */
  flat(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.routers.values()) {
      const base = `rt/${r.label}`;
      out[`${base}/server/connections`] = r.connectionsOpen.server;
      out[`${base}/client/connections`] = r.connectionsOpen.client;
      out[`${base}/requests_in_flight`] = r.inFlightNow;
      for (const [name, s] of r.services) {
        const sbase = `${base}/service${name.startsWith('/') ? name : `/${name}`}`;
        out[`${sbase}/requests`] = s.requests;
        out[`${sbase}/success`] = s.successes;
        out[`${sbase}/failures`] = s.failures;
        const [p50, p95, p99] = s.quantiles([0.5, 0.95, 0.99]);
        out[`${sbase}/request_latency_ms.p50`] = (p50 ?? 0) * 1000;
        out[`${sbase}/request_latency_ms.p95`] = (p95 ?? 0) * 1000;
        out[`${sbase}/request_latency_ms.p99`] = (p99 ?? 0) * 1000;
        for (const [client, c] of s.clients) {
          out[`${base}/client${client.startsWith('/') ? client : `/${client}`}/requests`] = c.requests;
          out[`${base}/client${client.startsWith('/') ? client : `/${client}`}/failures`] = c.failures;
        }
      }
    }
    for (const n of this.#namers) out[`namer/${n.kind}/updates`] = n.updates;
    return out;
  }

  /** Per-service summary for the dashboard. */
  services(): {
    router: string;
    service: string;
    requests: number;
    successes: number;
    failures: number;
    p50: number;
    p95: number;
    p99: number;
    resilience: ServiceStats['resilience'] & { lastMinute: { requests: number; retries: number }; retryRate: number | null };
  }[] {
    const rows = [];
    for (const r of this.routers.values()) {
      for (const [service, s] of r.services) {
        const [p50, p95, p99] = s.quantiles([0.5, 0.95, 0.99]).map((x) => x * 1000);
        const { requests, retries, retryRate } = s.lastMinute();
        rows.push({
          router: r.label,
          service,
          requests: s.requests,
          successes: s.successes,
          failures: s.failures,
          p50: p50 ?? 0,
          p95: p95 ?? 0,
          p99: p99 ?? 0,
          resilience: { ...s.resilience, lastMinute: { requests, retries }, retryRate },
        });
      }
    }
    return rows;
  }
}
