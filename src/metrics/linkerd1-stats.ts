// Linkerd 1's per-router stats tree (rt/<router>/server|service|client/<id>/...), kept beside
// hostmesh's own metrics so dashboards and alerts written for Linkerd 1 keep working. The request
// path only counts (a few map lookups and increments); names, summaries and formats are worked
// out at scrape time (linkerd1-format.ts).

/** Scopes of one kind per router (services, clients, a client's services) before further ones share the `overflow` scope. */
export const MAX_SCOPES = 500;
/** Services kept per client (Linkerd 1's rt/<router>/client/<id>/service/<path>). */
export const MAX_CLIENT_SERVICES = 16;
export const OVERFLOW_SCOPE = 'overflow';
/** Linkerd 1 summarised its histograms over one-minute snapshots. */
export const SNAPSHOT_MS = 60_000;

/** Whole milliseconds below this are counted exactly; above, in 32 buckets per power of two (reported at most 1/33, 3.03 %, below the true value). */
const EXACT = 64;
const SUB = 32;
const BUCKETS = EXACT + SUB * 26; // up to 2^32 ms

function bucketOf(ms: number): number {
  const v = Math.max(0, Math.floor(ms));
  if (v < EXACT) return v;
  const exp = Math.floor(Math.log2(v)); // 6.. for v >= 64
  const sub = Math.floor((v / 2 ** exp - 1) * SUB);
  return Math.min(BUCKETS - 1, EXACT + (exp - 6) * SUB + sub);
}

/** A histogram's buckets before its first sample: nothing allocated until a scope is used. */
const NO_BUCKETS = new Uint32Array(0);

/**
 * `buckets` grown to hold `bucket`: the next power of two (at least 16, at most BUCKETS), counts
 * kept. A scope whose requests all took under 16 ms holds 64 bytes (inside V8's heap), not 3.5 KB
 * (issue 28: 1,500 scopes held 5 MB of mostly empty buckets); one that saw a 4 s request, 1 KB.
 */
function grow(buckets: Uint32Array, bucket: number): Uint32Array {
  let n = 16;
  while (n <= bucket) n *= 2;
  const out = new Uint32Array(Math.min(BUCKETS, n));
  out.set(buckets);
  return out;
}

/** The lowest whole millisecond a bucket holds (what its samples are reported as). */
function bucketValue(b: number): number {
  if (b < EXACT) return b;
  const exp = Math.floor((b - EXACT) / SUB) + 6;
  return Math.floor(2 ** exp * (1 + ((b - EXACT) % SUB) / SUB));
}

export interface Summary {
  readonly count: number;
  readonly sum: number;
  readonly avg: number;
  readonly min: number;
  readonly max: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly p9990: number;
  readonly p9999: number;
}

/**
 * Request latency as Linkerd 1 reported it: a bucketed histogram (recording is one increment,
 * summarising is one pass over the buckets, nothing sorted) summarised over the last complete
 * one-minute snapshot, or over the current minute while none has completed.
 */
export class LatencyHistogram {
  /** Counts by bucket, grown on demand (grow()): a bucket past the end counts 0. */
  #current: Uint32Array = NO_BUCKETS;
  #currentSum = 0;
  #currentCount = 0;
  #snapshot: Uint32Array | undefined = undefined;
  #snapshotSum = 0;
  #snapshotCount = 0;
  #until = 0;

  record(ms: number, now: number): void {
    this.recordBucket(bucketOf(ms), Math.max(0, Math.floor(ms)), now);
  }

  /** record() with the sample's bucket (bucketOf) and whole milliseconds worked out by the caller, once for every scope of a request. */
  recordBucket(bucket: number, wholeMs: number, now: number): void {
    this.#roll(now);
    let current = this.#current;
    if (bucket >= current.length) {
      current = grow(current, bucket);
      this.#current = current;
    }
    (current[bucket] as number)++;
    this.#currentSum += wholeMs;
    this.#currentCount++;
  }

  #roll(now: number): void {
    if (now < this.#until) return;
    const first = this.#until === 0;
    const adjacent = !first && now < this.#until + SNAPSHOT_MS;
    if (adjacent) {
      // The minute that just ended becomes the snapshot; its arrays are reused, not reallocated
      // (the spare keeps its length, and grows if this minute's samples need more).
      const spare = this.#snapshot ?? NO_BUCKETS;
      this.#snapshot = this.#current;
      this.#snapshotSum = this.#currentSum;
      this.#snapshotCount = this.#currentCount;
      this.#current = spare.fill(0);
    } else if (!first) {
      // More than a minute without a sample: the last complete minute was idle.
      this.#snapshotCount = 0;
      this.#snapshotSum = 0;
      this.#current.fill(0);
    }
    this.#currentSum = 0;
    this.#currentCount = 0;
    this.#until = now - (now % SNAPSHOT_MS) + SNAPSHOT_MS;
  }

  /** The summary Linkerd 1 would report now; undefined when it holds no sample. */
  summary(now: number): Summary | undefined {
    this.#roll(now);
    const useSnapshot = this.#snapshot !== undefined && this.#snapshotCount > 0;
    const buckets = useSnapshot ? (this.#snapshot as Uint32Array) : this.#current;
    const count = useSnapshot ? this.#snapshotCount : this.#currentCount;
    const sum = useSnapshot ? this.#snapshotSum : this.#currentSum;
    if (count === 0) return undefined;
    const qs = [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999];
    const ranks = qs.map((q) => Math.max(1, Math.ceil(q * count)));
    const out: number[] = [];
    let min = -1;
    let max = 0;
    let seen = 0;
    for (let b = 0; b < buckets.length; b++) {
      const n = buckets[b] as number;
      if (n === 0) continue;
      if (min < 0) min = bucketValue(b);
      max = bucketValue(b);
      seen += n;
      while (out.length < ranks.length && seen >= (ranks[out.length] as number)) out.push(bucketValue(b));
    }
    const [p50 = 0, p90 = 0, p95 = 0, p99 = 0, p9990 = 0, p9999 = 0] = out;
    return { count, sum, avg: sum / count, min: Math.max(0, min), max, p50, p90, p95, p99, p9990, p9999 };
  }
}

/** One Linkerd 1 stats scope: requests, success, failures, status codes, request latency. */
export class ScopeStats {
  requests = 0;
  success = 0;
  failures = 0;
  /** Count by status code (100..599; anything else counted under 0): at most 501 keys. */
  readonly status = new Map<number, number>();
  readonly latency = new LatencyHistogram();

  record(status: number, ms: number, now: number): void {
    this.recordBucket(status, bucketOf(ms), Math.max(0, Math.floor(ms)), now);
  }

  /** record() with the latency's bucket and whole milliseconds already worked out (LatencyHistogram.recordBucket). */
  recordBucket(status: number, bucket: number, wholeMs: number, now: number): void {
    this.requests++;
    // Linkerd 1's default classifier for HTTP: 5XX (and no response) is a failure.
    if (status >= 500 || status < 100) this.failures++;
    else this.success++;
    const code = status >= 100 && status < 600 ? status : 0;
    this.status.set(code, (this.status.get(code) ?? 0) + 1);
    this.latency.recordBucket(bucket, wholeMs, now);
  }

  /** Counts by class (`2XX`), worked out from the codes at scrape time. */
  statusClasses(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [code, n] of this.status) {
      if (code === 0) continue;
      const cls = `${Math.floor(code / 100)}XX`;
      out.set(cls, (out.get(cls) ?? 0) + n);
    }
    return out;
  }
}

/** A bound client's scope, with its per-service scopes. */
export class ClientScope extends ScopeStats {
  readonly services = new Map<string, ScopeStats>();
  /** Endpoints failure accrual marked dead. */
  removals = 0;
}

/** Linkerd 1's scope name of a path or bound id: its text without the leading slash. */
export function scopeName(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name;
}

function bounded<V>(map: Map<string, V>, key: string, max: number, make: () => V): V {
  let v = map.get(key);
  if (v !== undefined) return v;
  const k = map.size >= max ? OVERFLOW_SCOPE : key;
  v = map.get(k);
  if (v === undefined) {
    v = make();
    map.set(k, v);
  }
  return v;
}

/** One router's Linkerd 1 scopes. */
export class Linkerd1RouterStats {
  readonly #now: () => number;
  /** A client's service scopes made so far (all clients): bounded by MAX_SCOPES too. */
  #clientServices = 0;
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The clock snapshots roll on (summaries are taken at this time). */
  now(): number {
    return this.#now();
  }

  /** By `<ip>/<port>` as Linkerd 1 labelled servers. */
  readonly servers = new Map<string, ScopeStats>();
  /** By logical name without the leading slash (`svc/world`). */
  readonly services = new Map<string, ScopeStats>();
  /** By bound id without the leading slash (`#/io.l5d.k8s/default/http/world`). */
  readonly clients = new Map<string, ClientScope>();

  /**
   * A request answered (status 499 when no response was sent). `service` and `client` are the
   * logical name and the bound id when the request got that far; `server` the listener's label.
   */
  record(server: string | undefined, service: string | undefined, client: string | undefined, status: number, ms: number): void {
    const now = this.#now();
    // The latency's bucket once for the request's (up to four) scopes.
    const bucket = bucketOf(ms);
    const whole = Math.max(0, Math.floor(ms));
    if (server !== undefined) bounded(this.servers, server, MAX_SCOPES, () => new ScopeStats()).recordBucket(status, bucket, whole, now);
    const svcName = service !== undefined ? scopeName(service) : undefined;
    if (svcName !== undefined) bounded(this.services, svcName, MAX_SCOPES, () => new ScopeStats()).recordBucket(status, bucket, whole, now);
    if (client !== undefined) {
      const c = this.client(client);
      c.recordBucket(status, bucket, whole, now);
      if (svcName !== undefined) {
        const max = this.#clientServices >= MAX_SCOPES ? c.services.size : MAX_CLIENT_SERVICES;
        const before = c.services.size;
        bounded(c.services, svcName, Math.min(max, MAX_CLIENT_SERVICES), () => new ScopeStats()).recordBucket(status, bucket, whole, now);
        this.#clientServices += c.services.size - before;
      }
    }
  }

  client(id: string): ClientScope {
    return bounded(this.clients, scopeName(id), MAX_SCOPES, () => new ClientScope());
  }
}
