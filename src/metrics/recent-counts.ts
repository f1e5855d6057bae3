// Counts of a few kinds over the last minute, in twelve five-second buckets on an injected clock:
// what the dashboard's per-service retry rate reads. Memory is fixed however busy a service is.

/** The window the counts cover (the dashboard says "last minute"). */
export const RECENT_WINDOW_MS = 60_000;
const BUCKETS = 12;
const BUCKET_MS = RECENT_WINDOW_MS / BUCKETS;

export class RecentCounts {
  readonly #kinds: number;
  readonly #now: () => number;
  /** Which five-second interval each bucket holds (its number since the epoch). */
  readonly #interval = new Float64Array(BUCKETS).fill(-Infinity);
  /** Bucket-major: bucket b's count of kind k at b * kinds + k. */
  readonly #counts: Float64Array;

  constructor(kinds: number, now: () => number) {
    this.#kinds = kinds;
    this.#now = now;
    this.#counts = new Float64Array(BUCKETS * kinds);
  }

  add(kind: number): void {
    const interval = Math.floor(this.#now() / BUCKET_MS);
    const b = ((interval % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.#interval[b] !== interval) {
      // The bucket last held an interval a minute or more ago: it starts again.
      this.#interval[b] = interval;
      this.#counts.fill(0, b * this.#kinds, (b + 1) * this.#kinds);
    }
    this.#counts[b * this.#kinds + kind] = (this.#counts[b * this.#kinds + kind] as number) + 1;
  }

  /** Each kind's count over the intervals of the last minute (the current one included). */
  sums(): number[] {
    const interval = Math.floor(this.#now() / BUCKET_MS);
    const out = new Array<number>(this.#kinds).fill(0);
    for (let b = 0; b < BUCKETS; b++) {
      const age = interval - (this.#interval[b] as number);
      if (age < 0 || age >= BUCKETS) continue;
      for (let k = 0; k < this.#kinds; k++) out[k] = (out[k] as number) + (this.#counts[b * this.#kinds + k] as number);
    }
    return out;
  }
}
