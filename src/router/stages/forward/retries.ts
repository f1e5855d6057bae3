// Retry budgets and backoff (Linkerd 1's `service.retries` and `client.requeueBudget`, Finagle's
// RetryBudget): how many failed requests may be sent again, and how long to wait before each.

import { BoundedMap } from '../../../core/bounded-map.js';

/** Linkerd 1's retry budget block; the same shape bounds requeues. */
export interface BudgetConfig {
  /** How long a request deposited into the budget counts (seconds). */
  readonly ttlSecs: number;
  /** Retries allowed per second whatever the traffic (a reserve for quiet clients). */
  readonly minRetriesPerSec: number;
  /** Retries allowed per request deposited (0.2: one retry per five requests). */
  readonly percentCanRetry: number;
}

/** Linkerd 1's (and Finagle's) defaults. */
export const DEFAULT_BUDGET: BudgetConfig = { ttlSecs: 10, minRetriesPerSec: 10, percentCanRetry: 0.2 };

/**
 * One budget. Requests deposit, retries withdraw; both count for ttlSecs. A retry is allowed while
 * `minRetriesPerSec * ttlSecs + percentCanRetry * deposits - withdrawals >= 1` over that window,
 * as Finagle's token bucket does. The window is kept as one slot per second (a ring of ttlSecs
 * slots), so memory is fixed however busy the service is. Time comes from `now` (ms): tests drive it.
 */
export class RetryBudget {
  readonly #config: BudgetConfig;
  readonly #now: () => number;
  // Plain arrays of doubles (inside V8's heap): three 80-byte Float64Arrays are each an
  // ArrayBuffer, a backing store and a malloc chunk outside the heap (~1.2 KB a budget; 2,000
  // budgets at 1,000 services; issue 28, docs/memory.md).
  readonly #second: number[];
  readonly #deposits: number[];
  readonly #withdrawals: number[];

  constructor(config: BudgetConfig = DEFAULT_BUDGET, now: () => number = Date.now) {
    this.#config = config;
    this.#now = now;
    const n = Math.max(1, Math.ceil(config.ttlSecs));
    this.#second = new Array<number>(n).fill(-Infinity);
    this.#deposits = new Array<number>(n).fill(0.5).fill(0); // doubles from the start (no small-integer to double transition)
    this.#withdrawals = new Array<number>(n).fill(0.5).fill(0);
  }

  /** A request (not a retry) was sent. */
  deposit(): void {
    const i = this.#slot();
    this.#deposits[i] = (this.#deposits[i] as number) + 1;
  }

  /** Takes one retry from the budget if there is one. */
  tryWithdraw(): boolean {
    if (this.balance() < 1) return false;
    const i = this.#slot();
    this.#withdrawals[i] = (this.#withdrawals[i] as number) + 1;
    return true;
  }

  /** Retries available now. */
  balance(): number {
    const now = Math.floor(this.#now() / 1000);
    let deposits = 0;
    let withdrawals = 0;
    for (let i = 0; i < this.#second.length; i++) {
      if (now - (this.#second[i] as number) < this.#second.length) {
        deposits += this.#deposits[i] as number;
        withdrawals += this.#withdrawals[i] as number;
      }
    }
    const c = this.#config;
    return c.minRetriesPerSec * c.ttlSecs + c.percentCanRetry * deposits - withdrawals;
  }

  /** The slot of the current second, emptied if it last held an older second. */
  #slot(): number {
    const now = Math.floor(this.#now() / 1000);
    const i = ((now % this.#second.length) + this.#second.length) % this.#second.length;
    if (this.#second[i] !== now) {
      this.#second[i] = now;
      this.#deposits[i] = 0;
      this.#withdrawals[i] = 0;
    }
    return i;
  }
}

/**
 * Budgets by key (a service for retries, a bound client for requeues, as Linkerd 1 kept them),
 * least recently used first. Keys come from request data, so the map is capped: past `max`, the
 * oldest budget is dropped (its successor starts with the reserve only).
 */
export class Budgets {
  readonly #map: BoundedMap<string, RetryBudget>;
  readonly #config: BudgetConfig;
  readonly #now: () => number;

  /** `name`: the map's name in hostmesh_bounded_map_* (retry_budgets, requeue_budgets). */
  constructor(config: BudgetConfig, max: number, now: () => number = Date.now, name = 'retry_budgets') {
    this.#config = config;
    this.#map = new BoundedMap({ name, max });
    this.#now = now;
  }

  get(key: string): RetryBudget {
    let b = this.#map.get(key); // a hit becomes the most recently used
    if (b !== undefined) return b;
    b = new RetryBudget(this.#config, this.#now);
    this.#map.set(key, b);
    return b;
  }

  get size(): number {
    return this.#map.size;
  }
}

/** Linkerd 1's retry backoff: `constant` (ms, default 0) or `jittered` (minMs, maxMs). */
export type BackoffConfig = { readonly kind: 'constant'; readonly ms: number } | { readonly kind: 'jittered'; readonly minMs: number; readonly maxMs: number };

export const DEFAULT_BACKOFF: BackoffConfig = { kind: 'constant', ms: 0 };

/**
 * The delays before one request's successive retries. Jittered is "decorrelated jitter" (what
 * Linkerd 1 documents, after the AWS architecture blog): each delay is drawn between minMs and
 * three times the previous one, capped at maxMs.
 */
export function backoffDelays(config: BackoffConfig, random: () => number = Math.random): () => number {
  if (config.kind === 'constant') return () => config.ms;
  let previous = config.minMs;
  return () => {
    const high = Math.min(config.maxMs, previous * 3);
    previous = Math.min(config.maxMs, config.minMs + random() * Math.max(0, high - config.minMs));
    return Math.round(previous);
  };
}

/** What a router needs to retry: the service's budget policy, backoff and per-request bounds. */
export interface RetryPolicy {
  readonly budget: BudgetConfig;
  readonly backoff: BackoffConfig;
  /** Retries one request may take, whatever the budget holds (hostmesh addition). */
  readonly maxRetriesPerRequest: number;
  /** Largest request body kept for resending (Linkerd 1's retryBufferSize.requestBytes). */
  readonly requestBufferBytes: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { budget: DEFAULT_BUDGET, backoff: DEFAULT_BACKOFF, maxRetriesPerRequest: 10, requestBufferBytes: 64 * 1024 };

/** Budgets kept per router (services for retries, clients for requeues) before the oldest goes. */
export const MAX_BUDGETS = 1000;
