// The process's metrics: one prom-client registry (with Node's process metrics) and the families
// of each layer, split by concern: requests (request-metrics.ts), routers (router-metrics.ts,
// RouterEvents), listeners (listener-metrics.ts), identity and TLS (identity-metrics.ts), namers
// (namer-metrics.ts), h2 (h2-metrics.ts). Here: the per-router set, exposition, metrics.json and
// the dashboard's per-service rows.

import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { type Clock, systemClock } from '../core/clock.js';
import { registerBoundedMapMetrics } from './bounded-maps.js';
import { IdentityMetrics } from './identity-metrics.js';
import { ListenerFamilies, ListenerMetrics } from './listener-metrics.js';
import { NamerMetrics, type NamerReport, type StateReport } from './namer-metrics.js';
import { RequestFamilies, RequestMetrics, type ServiceStats } from './request-metrics.js';
import { RouterFamilies, RouterMetrics } from './router-metrics.js';
import type { CallerEvents } from '../identity/events.js';

export { MAX_LABEL_CHARS, MAX_SERVICES, OVERFLOW } from './labels.js';
export type { NamerReport, StateReport } from './namer-metrics.js';
export { RouterMetrics } from './router-metrics.js';
export { ListenerMetrics } from './listener-metrics.js';
export { RequestMetrics, ServiceStats } from './request-metrics.js';

/** One router's metrics, by the layer that reports them. */
export class RouterMetricSet {
  /** Requests answered and the services table (read by the dashboard, metrics.json, Linkerd 1's names). */
  readonly requests: RequestMetrics;
  /** The router's events (router/events.ts RouterEvents), its pools', authorization, delivery, ingress. */
  readonly router: RouterMetrics;
  /** Its listeners' events (server/events.ts ListenerEvents). */
  readonly listener: ListenerMetrics;
  /** Its workload claim checks (identity/events.ts CallerEvents). */
  readonly callers: CallerEvents;

  constructor(
    readonly label: string,
    m: Metrics,
  ) {
    this.requests = new RequestMetrics(label, m.requestFamilies, m.now);
    this.listener = new ListenerMetrics(label, m.listenerFamilies, this.requests);
    this.router = new RouterMetrics(label, m.routerFamilies, this.requests, this.listener);
    this.callers = m.identity.callers(label);
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly routers = new Map<string, RouterMetricSet>();
  readonly requestFamilies: RequestFamilies;
  readonly routerFamilies: RouterFamilies;
  readonly listenerFamilies: ListenerFamilies;
  /** Identity and TLS (identity/events.ts SourceEvents, tls/events.ts TlsEvents). */
  readonly identity: IdentityMetrics;
  readonly namers: NamerMetrics;
  /** Admin requests refused by the Host/Origin/state-change checks (reason: a fixed set). */
  readonly adminRefusals: Counter;
  /** The clock of the per-service last-minute counts (tests drive it). */
  readonly now: () => number;

  constructor(options: { clock?: Clock } = {}) {
    const clock = options.clock ?? systemClock;
    this.now = () => clock.now();
    // Node's process metrics (RSS, heap, event loop lag, GC, open handles), read at scrape time.
    // The event loop lag histogram samples every 100 ms, not prom-client's 10 ms: its timer woke an
    // idle router 100 times a second, ~5 ms of CPU per second (docs/memory.md, session 7).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    registerBoundedMapMetrics(this.registry);
    this.requestFamilies = new RequestFamilies(this.registry);
    this.listenerFamilies = new ListenerFamilies(this.registry);
    this.identity = new IdentityMetrics(this.registry);
    this.routerFamilies = new RouterFamilies(this.registry);
    this.adminRefusals = new Counter({
      name: 'hostmesh_admin_refusals_total',
      help: 'Admin requests refused: host (Host not allowed), origin (cross-origin), simple (a state change without the hostmesh-admin header), forwarded (sent through a router), remote (shutdown from off the host).',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.namers = new NamerMetrics(this.registry);
  }

  router(label: string): RouterMetricSet {
    let r = this.routers.get(label);
    if (r === undefined) {
      r = new RouterMetricSet(label, this);
      this.routers.set(label, r);
    }
    return r;
  }

  /** Where the state gauges read from (set once by the process). */
  reportState(report: StateReport): void {
    this.namers.reportState(report);
  }

  addNamer(n: NamerReport): void {
    this.namers.addNamer(n);
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
      out[`${base}/server/connections`] = r.listener.connectionsOpen.server;
      out[`${base}/client/connections`] = r.listener.connectionsOpen.client;
      out[`${base}/requests_in_flight`] = r.requests.inFlightNow;
      for (const [name, s] of r.requests.services) {
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
    for (const n of this.namers.namers) out[`namer/${n.kind}/updates`] = n.updates;
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
      for (const [service, s] of r.requests.services) {
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
