// Per-service latency state grown on demand (issue 28): Linkerd 1's latency histograms and the
// dashboard's sample rings start empty and grow to what their requests need. What a user reads
// (Linkerd 1's summaries, the dashboard's quantiles) must be what the dense arrays gave: each is
// checked against a dense reference (the arrays allocated in full, as before) on random requests
// and clocks; and 1,000 services that saw a few quick requests hold kilobytes, not megabytes.

import fc from 'fast-check';
import t from 'tap';
import { LatencyHistogram, SNAPSHOT_MS, type Summary } from '../../src/metrics/linkerd1-stats.js';
import { ServiceStats } from '../../src/metrics/request-metrics.js';

// The dense reference: the histogram as it was, all 896 buckets allocated up front.
const EXACT = 64;
const SUB = 32;
const BUCKETS = EXACT + SUB * 26;
function bucketOf(ms: number): number {
  const v = Math.max(0, Math.floor(ms));
  if (v < EXACT) return v;
  const exp = Math.floor(Math.log2(v));
  const sub = Math.floor((v / 2 ** exp - 1) * SUB);
  return Math.min(BUCKETS - 1, EXACT + (exp - 6) * SUB + sub);
}
function bucketValue(b: number): number {
  if (b < EXACT) return b;
  const exp = Math.floor((b - EXACT) / SUB) + 6;
  return Math.floor(2 ** exp * (1 + ((b - EXACT) % SUB) / SUB));
}
class DenseHistogram {
  current: Uint32Array = new Uint32Array(BUCKETS);
  currentSum = 0;
  currentCount = 0;
  snapshot: Uint32Array | undefined;
  snapshotSum = 0;
  snapshotCount = 0;
  until = 0;
  record(ms: number, now: number): void {
    this.roll(now);
    (this.current[bucketOf(ms)] as number)++;
    this.currentSum += Math.max(0, Math.floor(ms));
    this.currentCount++;
  }
  roll(now: number): void {
    if (now < this.until) return;
    const first = this.until === 0;
    if (!first && now < this.until + SNAPSHOT_MS) {
      const spare = this.snapshot ?? new Uint32Array(BUCKETS);
      this.snapshot = this.current;
      this.snapshotSum = this.currentSum;
      this.snapshotCount = this.currentCount;
      this.current = spare.fill(0);
    } else if (!first) {
      this.snapshotCount = 0;
      this.snapshotSum = 0;
      this.current.fill(0);
    }
    this.currentSum = 0;
    this.currentCount = 0;
    this.until = now - (now % SNAPSHOT_MS) + SNAPSHOT_MS;
  }
  summary(now: number): Summary | undefined {
    this.roll(now);
    const useSnapshot = this.snapshot !== undefined && this.snapshotCount > 0;
    const buckets = useSnapshot ? (this.snapshot as Uint32Array) : this.current;
    const count = useSnapshot ? this.snapshotCount : this.currentCount;
    const sum = useSnapshot ? this.snapshotSum : this.currentSum;
    if (count === 0) return undefined;
    const ranks = [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999].map((q) => Math.max(1, Math.ceil(q * count)));
    const out: number[] = [];
    let min = -1;
    let max = 0;
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
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

t.test("Linkerd 1's latency summaries: the same as the dense histogram's, whatever the latencies and the clock", async (t) => {
  // Latencies from 0 to past the last bucket (2^32 ms), mostly small, some large, so arrays grow
  // in one step or several, and across minute snapshots (whose spare array is reused smaller).
  const latency = fc.oneof(
    fc.integer({ min: 0, max: 20 }),
    fc.integer({ min: 0, max: 5000 }),
    fc.double({ min: -5, max: 2 ** 33, noNaN: true }),
    fc.constantFrom(15, 16, 63, 64, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32),
  );
  const step = fc.oneof(
    fc.record({ kind: fc.constant('record' as const), ms: latency, advance: fc.integer({ min: 0, max: SNAPSHOT_MS / 4 }) }),
    fc.record({ kind: fc.constant('summary' as const), advance: fc.constantFrom(0, 1, SNAPSHOT_MS, 3 * SNAPSHOT_MS) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10 ** 12 }), fc.array(step, { maxLength: 200 }), (start, steps) => {
      const grown = new LatencyHistogram();
      const dense = new DenseHistogram();
      let now = start;
      for (const s of steps) {
        now += s.advance;
        if (s.kind === 'record') {
          grown.record(s.ms, now);
          dense.record(s.ms, now);
        } else if (JSON.stringify(grown.summary(now)) !== JSON.stringify(dense.summary(now))) return false;
      }
      return JSON.stringify(grown.summary(now + 1)) === JSON.stringify(dense.summary(now + 1));
    }),
    { numRuns: 300 },
  );
  t.pass('300 random histories agree');
});

t.test("the dashboard's latency quantiles: the same as a dense 1,024-sample ring's, before and after it wraps", async (t) => {
  const qs = [0, 0.5, 0.9, 0.99, 0.999, 1];
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { maxLength: 2600 }), fc.integer({ min: 0, max: 7 }), (samples, every) => {
      const stats = new ServiceStats('svc');
      const ring = new Float64Array(1024);
      let n = 0;
      for (const [i, s] of samples.entries()) {
        stats.sample(s);
        ring[n++ % 1024] = s;
        if (every > 0 && i % (every * 97) === 0) {
          const k = Math.min(n, 1024);
          const sorted = ring.slice(0, k).sort();
          const want = k === 0 ? qs.map(() => 0) : qs.map((q) => sorted[Math.min(k - 1, Math.floor(q * k))]);
          if (JSON.stringify(stats.quantiles(qs)) !== JSON.stringify(want)) return false;
        }
      }
      const k = Math.min(n, 1024);
      const sorted = ring.slice(0, k).sort();
      const want = k === 0 ? qs.map(() => 0) : qs.map((q) => sorted[Math.min(k - 1, Math.floor(q * k))]);
      return JSON.stringify(stats.quantiles(qs)) === JSON.stringify(want);
    }),
    {
      numRuns: 60,
      examples: [
        [[], 0],
        [Array.from({ length: 1024 }, (_, i) => i / 10), 1],
        [Array.from({ length: 2049 }, (_, i) => (i * 7) % 13), 3],
      ],
    },
  );
  t.pass('60 random histories agree');
});

t.test('1,000 services that saw a few quick requests hold kilobytes of latency state, not megabytes', async (t) => {
  // Typed arrays over 64 bytes live outside V8's heap (process.memoryUsage().arrayBuffers); the
  // dense arrays were 3.5 KB per histogram and 8 KB per sample ring, allocated with the objects.
  const before = process.memoryUsage().arrayBuffers;
  const keep: Array<[LatencyHistogram, ServiceStats]> = [];
  for (let i = 0; i < 1000; i++) {
    const h = new LatencyHistogram();
    const s = new ServiceStats(`svc-${i}`);
    for (let r = 0; r < 3; r++) {
      h.record(r + 2, 1_000 + r);
      s.sample((r + 2) / 1000);
    }
    keep.push([h, s]);
  }
  const grew = process.memoryUsage().arrayBuffers - before;
  // What is left is each ServiceStats' other small rows (the duration histogram's 14 counts, the
  // last-minute counts): ~0.4 KB a service.
  t.ok(grew < 1_000_000, `array buffers grew ${(grew / 1e6).toFixed(2)} MB for 1,000 services (the dense arrays: 7 MB and more)`);
  t.equal(keep[999]?.[0].summary(1_003)?.p50, 3, 'the small arrays still answer');
  t.same(keep[999]?.[1].quantiles([0.5]), [0.003]);
});
