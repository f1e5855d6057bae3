// Requests answered, per router: hostmesh_requests_total, hostmesh_request_duration_seconds and
// hostmesh_requests_in_flight, and the per-service stats the dashboard, metrics.json and Linkerd 1's
// rt:* names read. The services table is bounded (labels.ts). A request updates plain numbers on
// its service's and client's rows; the families read the rows at scrape time (scrape-rows.ts).

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ResponseClass } from '../router/events.js';
import { Linkerd1RouterStats } from './linkerd1-stats.js';
import { MAX_LABEL_CHARS, MAX_SERVICES, OVERFLOW } from './labels.js';
import { RecentCounts } from './recent-counts.js';
import { HistogramRow, publishCounter, publishHistogram } from './scrape-rows.js';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const SAMPLES = 1024;
/** A service's sample ring before its first request. */
const NO_SAMPLES = new Float64Array(0);
/** Bound clients named per service; the rest share the overflow row. */
export const MAX_CLIENTS_PER_SERVICE = 16;

/** hostmesh_request_duration_seconds's buckets. */
const DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface ClientStats {
  /** Requests answered by status class (CLASSES' order): hostmesh_requests_total's values. */
  readonly byClass: Float64Array;
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
  /** Relayed responses by classifier class (hostmesh_response_classes_total's values; router-metrics.ts counts them). */
  readonly classes: Record<ResponseClass, number> = { success: 0, failure: 0, retryable: 0 };
  /** Request durations in seconds: hostmesh_request_duration_seconds's series of this row. */
  readonly duration = new HistogramRow(DURATION_BUCKETS);
  /**
   * The last SAMPLES request durations, a ring once full. Grown on demand (8, 16, ... SAMPLES
   * slots): a service that answered a few requests holds a few samples, not 8 KB (issue 28: 502
   * rings were 4 MB at 1,000 services).
   */
  #samples = NO_SAMPLES;
  #n = 0;

  /** `label` is the row's key in the services table: its service label in every per-service family. */
  constructor(
    readonly label: string,
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
    const i = this.#n % SAMPLES;
    // Only while filling: once the ring holds SAMPLES slots, i is always inside it.
    if (i >= this.#samples.length) this.#grow();
    this.#samples[i] = seconds;
    this.#n++;
  }

  #grow(): void {
    const more = new Float64Array(Math.min(SAMPLES, Math.max(8, this.#samples.length * 2)));
    more.set(this.#samples);
    this.#samples = more;
  }

  /** Latency quantiles (seconds) over the last SAMPLES requests. */
  quantiles(qs: readonly number[]): number[] {
    const n = Math.min(this.#n, SAMPLES);
    if (n === 0) return qs.map(() => 0);
    const sorted = this.#samples.slice(0, n).sort();
    return qs.map((q) => sorted[Math.min(n - 1, Math.floor(q * n))] as number);
  }
}

/** The request families, once per registry: each reads the routers' rows when scraped. */
export class RequestFamilies {
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly inFlight: Gauge;
  /** The routers whose rows the families publish (RequestMetrics adds itself). */
  readonly routers: RequestMetrics[] = [];

  constructor(registry: Registry) {
    const registers = [registry];
    const routers = this.routers;
    this.requests = new Counter({
      name: 'hostmesh_requests_total',
      help: 'Requests answered, by logical service, bound client and status class.',
      labelNames: ['router', 'service', 'client', 'status_class'],
      registers,
      collect() {
        publishCounter(this, (add) => {
          for (const r of routers)
            for (const [service, s] of r.services)
              for (const [client, c] of s.clients)
                for (let k = 0; k < CLASSES.length; k++) {
                  const n = c.byClass[k] as number;
                  if (n > 0) add({ router: r.label, service, client, status_class: CLASSES[k] as string }, n);
                }
        });
      },
    });
    this.duration = new Histogram({
      name: 'hostmesh_request_duration_seconds',
      help: 'Time from request to the end of the response.',
      labelNames: ['router', 'service'],
      buckets: [...DURATION_BUCKETS],
      registers,
      collect() {
        publishHistogram(this, (add) => {
          for (const r of routers) for (const [service, s] of r.services) add({ router: r.label, service }, s.duration);
        });
      },
    });
    this.inFlight = new Gauge({
      name: 'hostmesh_requests_in_flight',
      help: 'Requests being handled.',
      labelNames: ['router'],
      registers,
      collect() {
        this.reset();
        for (const r of routers) if (r.counted) this.set({ router: r.label }, r.inFlightNow);
      },
    });
  }
}

/** One router's requests: in flight, answered by service and client, and the services table. */
export class RequestMetrics {
  readonly services = new Map<string, ServiceStats>();
  /** Requests being handled (hostmesh_requests_in_flight, published once `counted`). */
  inFlightNow = 0;
  /** A request started or finished on this router: its in-flight line exists from then on. */
  counted = false;
  /** Linkerd 1's rt/<router>/server|service|client scopes (linkerd1-format.ts names them at scrape time). */
  readonly linkerd1: Linkerd1RouterStats;
  readonly #now: () => number;

  constructor(
    readonly label: string,
    families: RequestFamilies,
    now: () => number,
  ) {
    this.#now = now;
    this.linkerd1 = new Linkerd1RouterStats(now);
    families.routers.push(this);
  }

  started(): void {
    this.counted = true;
    this.inFlightNow++;
  }

  /**
   * A request finished: `service` the logical name, `client` the bound id (if it got that far),
   * `server` the listener as Linkerd 1 labelled it (`<ip>/<port>`).
   */
  done(service: string | undefined, client: string | undefined, status: number, seconds: number, server?: string): void {
    this.linkerd1.record(server, service, client, status, seconds * 1000);
    this.counted = true;
    this.inFlightNow--;
    let svc = this.services.get(service ?? '-');
    if (svc === undefined) svc = this.#service(service ?? '-');
    let c = svc.clients.get(client ?? '-');
    if (c === undefined) {
      c = this.#client(svc, client ?? '-');
    }
    const cls = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 4;
    c.byClass[cls] = (c.byClass[cls] as number) + 1;
    c.requests++;
    svc.requests++;
    if (status >= 500) {
      svc.failures++;
      c.failures++;
    } else svc.successes++;
    svc.duration.observe(seconds);
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
      s = new ServiceStats(key, this.#now);
      this.services.set(key, s);
    }
    return s;
  }

  #client(svc: ServiceStats, client: string): ClientStats {
    const clientLabel = svc.clients.size >= MAX_CLIENTS_PER_SERVICE || client.length > MAX_LABEL_CHARS ? OVERFLOW : client;
    let c = svc.clients.get(clientLabel);
    if (c === undefined) {
      c = { byClass: new Float64Array(CLASSES.length), requests: 0, failures: 0 };
      svc.clients.set(clientLabel, c);
    }
    return c;
  }
}
