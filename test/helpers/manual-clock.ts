// A Clock that moves only when a test says so: `advance(ms)` fires, in time order, every call
// scheduled up to the new time (calls scheduled by those calls included), then settles microtasks.

import type { Cancel, Clock } from '../../src/core/clock.js';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #pending: Pending[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now = (): number => this.#now;

  schedule = (ms: number, fn: () => void): Cancel => {
    const entry: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#pending.push(entry);
    return () => {
      entry.cancelled = true;
    };
  };

  /** How many scheduled calls are still waiting (cancelled ones excluded). */
  get pending(): number {
    return this.#pending.filter((p) => !p.cancelled).length;
  }

  /** Moves time forward by ms, firing due calls in order; awaits microtasks between calls. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      this.#pending = this.#pending.filter((p) => !p.cancelled);
      this.#pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#pending[0];
      if (next === undefined || next.at > until) break;
      this.#pending.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
