// Requests answered, per router: hostmesh_requests_total, hostmesh_request_duration_seconds and
// hostmesh_requests_in_flight, and the per-service stats the dashboard, metrics.json and Linkerd 1's
// rt:* names read. The services table is bounded (labels.ts); its rows keep their labelled children.

import { type Counter, Gauge, Histogram, Counter as PromCounter, type Registry } from 'prom-client';
import { Linkerd1RouterStats } from './linkerd1-stats.js';
import { MAX_LABEL_CHARS, MAX_SERVICES, OVERFLOW } from './labels.js';
import { RecentCounts } from './recent-counts.js';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const SAMPLES = 1024;
/** Bound clients named per service; the rest share the overflow row. */
export const MAX_CLIENTS_PER_SERVICE = 16;

interface ClientStats {
  readonly byClass: Counter.Internal[];
  requests: number;
  failures: number;
}

/** Kinds RecentCounts keeps per service: requests answered and retries made. */
const RECENT_REQUESTS = 0;
export const RECENT_RETRIES = 1;

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
  /** Children of this row's other per-service counters (retries, response classes), resolved once; a few per row. */
  readonly labelled = new Map<string, Counter.Internal>();
  readonly #samples = new Float64Array(SAMPLES);
  #n = 0;
  readonly #histogram: () => Histogram.Internal<string>;
  #h: Histogram.Internal<string> | undefined;

  constructor(histogram: () => Histogram.Internal<string>, now: () => number = Date.now) {
    this.#histogram = histogram;
    this.recent = new RecentCounts(2, now);
  }

  /** The row's duration histogram child, made when the first request of the row is answered. */
  get histogram(): Histogram.Internal<string> {
    this.#h ??= this.#histogram();
    return this.#h;
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

/** The request families, once per registry. */
export class RequestFamilies {
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly inFlight: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new PromCounter({
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
  }
}

/** One router's requests: in flight, answered by service and client, and the services table. */
export class RequestMetrics {
  readonly services = new Map<string, ServiceStats>();
  readonly inFlight: Gauge.Internal<string>;
  inFlightNow = 0;
  /** Linkerd 1's rt/<router>/server|service|client scopes (linkerd1-format.ts names them at scrape time). */
  readonly linkerd1: Linkerd1RouterStats;
  readonly #f: RequestFamilies;
  readonly #now: () => number;

  constructor(
    readonly label: string,
    families: RequestFamilies,
    now: () => number,
  ) {
    this.#f = families;
    this.#now = now;
    this.linkerd1 = new Linkerd1RouterStats(now);
    this.inFlight = families.inFlight.labels(label);
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

  /** The label a service name takes in per-service families: its own, or OVERFLOW past the caps. */
  serviceLabel(service: string): string {
    return this.services.has(service) || (this.services.size < MAX_SERVICES && service.length <= MAX_LABEL_CHARS) ? service : OVERFLOW;
  }

  /** A service's stats, made on first use (past MAX_SERVICES names, the overflow row's). */
  stats(name: string): ServiceStats {
    return this.services.get(name) ?? this.#service(name);
  }

  #service(name: string): ServiceStats {
    const key = this.services.size >= MAX_SERVICES || name.length > MAX_LABEL_CHARS ? OVERFLOW : name;
    let s = this.services.get(key);
    if (s === undefined) {
      s = new ServiceStats(() => this.#f.duration.labels(this.label, key), this.#now);
      this.services.set(key, s);
    }
    return s;
  }

  #client(svc: ServiceStats, service: string, client: string): ClientStats {
    const serviceLabel = this.services.get(service) === svc ? service : OVERFLOW;
    const clientLabel = svc.clients.size >= MAX_CLIENTS_PER_SERVICE || client.length > MAX_LABEL_CHARS ? OVERFLOW : client;
    let c = svc.clients.get(clientLabel);
    if (c === undefined) {
      c = { byClass: CLASSES.map((k) => this.#f.requests.labels(this.label, serviceLabel, clientLabel, k)), requests: 0, failures: 0 };
      svc.clients.set(clientLabel, c);
    }
    return c;
  }
}
