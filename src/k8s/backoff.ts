// Jittered exponential backoff for reconnecting to the Kubernetes API: base * 2^attempt, capped,
// with "full jitter" so a fleet of routers does not reconnect in lockstep after an outage.

export interface BackoffOptions {
  readonly baseMs?: number;
  readonly capMs?: number;
  readonly random?: () => number;
}

export class Backoff {
  readonly #base: number;
  readonly #cap: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#base = options.baseMs ?? 250;
    this.#cap = options.capMs ?? 30_000;
    this.#random = options.random ?? Math.random;
  }

  /** The next delay: uniformly random in [ceiling/2, ceiling], ceiling = min(cap, base * 2^n). */
  next(): number {
    const ceiling = Math.min(this.#cap, this.#base * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
