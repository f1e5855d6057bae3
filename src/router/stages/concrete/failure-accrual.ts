// Failure accrual (Linkerd 1's client.failureAccrual, Finagle's FailureAccrualFactory): per bound
// client and endpoint, a policy marks an endpoint dead, the balancer skips it, a probe after backoff.

import { refreshLast } from '../../../core/bounded-map.js';
import { type Clock, systemClock } from '../../../core/clock.js';
import type { FailureAccrualSpec } from '../../settings/spec.js';
import { backoffDelays, type BackoffConfig } from '../forward/retries.js';

/** Linkerd 1's policies; `none` turns accrual off. */
export type AccrualPolicyConfig =
  | { readonly kind: 'io.l5d.consecutiveFailures'; readonly failures: number }
  | { readonly kind: 'io.l5d.successRate'; readonly successRate: number; readonly requests: number }
  | { readonly kind: 'io.l5d.successRateWindowed'; readonly successRate: number; readonly windowMs: number }
  | { readonly kind: 'none' };

export interface AccrualConfig {
  readonly policy: AccrualPolicyConfig;
  /** How long an endpoint stays dead before one probe request (each marking takes the next delay). */
  readonly backoff: BackoffConfig;
}

/** Linkerd 1's default: 5 consecutive failures, dead for a jittered 5 s to 300 s. */
export const DEFAULT_ACCRUAL: AccrualConfig = {
  policy: { kind: 'io.l5d.consecutiveFailures', failures: 5 },
  backoff: { kind: 'jittered', minMs: 5_000, maxMs: 300_000 },
};

/** A config's client.failureAccrual as the router's, Linkerd 1's defaults filled in. */
export function accrualConfig(c: FailureAccrualSpec | undefined): AccrualConfig {
  if (c === undefined) return DEFAULT_ACCRUAL;
  if (c.kind === 'none') return { policy: { kind: 'none' }, backoff: DEFAULT_ACCRUAL.backoff };
  const b = c.backoff;
  const backoff: BackoffConfig = b === undefined ? DEFAULT_ACCRUAL.backoff : b.kind === 'constant' ? { kind: 'constant', ms: b.ms ?? 0 } : b;
  switch (c.kind) {
    case 'io.l5d.consecutiveFailures':
      return { policy: { kind: c.kind, failures: c.failures ?? 5 }, backoff };
    case 'io.l5d.successRate':
      return { policy: { kind: c.kind, successRate: c.successRate, requests: c.requests }, backoff };
    case 'io.l5d.successRateWindowed':
      return { policy: { kind: c.kind, successRate: c.successRate, windowMs: c.window * 1000 }, backoff };
  }
}

/** Endpoint states kept per router; past it the least recently used (alive ones first) go. */
export const MAX_ACCRUAL_ENTRIES = 10_000;

/**
 * Requests a windowed success rate needs in its window before it may mark an endpoint dead
 * (hostmesh's choice: Linkerd 1 is silent; one failure out of one is not a rate).
 */
export const MIN_WINDOW_REQUESTS = 5;

export type AccrualState = 'alive' | 'dead' | 'probing';

/** One policy's memory of one endpoint: says whether the latest outcome makes it dead. */
interface Policy {
  /** Records an outcome; true: the endpoint should be marked dead. */
  record(ok: boolean, now: number): boolean;
  reset(): void;
}

// Policies are small classes (their methods shared on the prototype), not closures: an endpoint's
// entry costs one small object, not an object, two closures and their context (issue 28: 5,000
// endpoints tried while binding 1,000 services held 3 MB of accrual state).

/** `failures` failures in a row. */
class Consecutive implements Policy {
  #run = 0;
  constructor(readonly failures: number) {}
  record(ok: boolean): boolean {
    this.#run = ok ? 0 : this.#run + 1;
    return this.#run >= this.failures;
  }
  reset(): void {
    this.#run = 0;
  }
}

/** Success rate over the last `requests` outcomes (a ring of them), once that many were seen. */
class SuccessRate implements Policy {
  readonly #ring: Uint8Array;
  #seen = 0;
  #next = 0;
  #successes = 0;
  constructor(
    readonly rate: number,
    readonly requests: number,
  ) {
    this.#ring = new Uint8Array(requests);
  }
  record(ok: boolean): boolean {
    const requests = this.requests;
    if (this.#seen === requests) this.#successes -= this.#ring[this.#next] as number;
    else this.#seen++;
    this.#ring[this.#next] = ok ? 1 : 0;
    this.#successes += ok ? 1 : 0;
    this.#next = (this.#next + 1) % requests;
    return this.#seen === requests && this.#successes / this.#seen < this.rate;
  }
  reset(): void {
    this.#ring.fill(0);
    this.#seen = 0;
    this.#next = 0;
    this.#successes = 0;
  }
}

/** Success rate of the outcomes in the last `windowMs` (one-second buckets), on the injected clock. */
class SuccessRateWindowed implements Policy {
  readonly #bucketMs: number;
  readonly #n: number;
  readonly #ok: Float64Array;
  readonly #all: Float64Array;
  readonly #stamp: Float64Array;
  constructor(
    readonly rate: number,
    windowMs: number,
  ) {
    this.#bucketMs = Math.min(1000, windowMs);
    this.#n = Math.max(1, Math.ceil(windowMs / this.#bucketMs));
    this.#ok = new Float64Array(this.#n);
    this.#all = new Float64Array(this.#n);
    this.#stamp = new Float64Array(this.#n).fill(-1);
  }
  record(success: boolean, now: number): boolean {
    const n = this.#n;
    const ok = this.#ok;
    const all = this.#all;
    const stamp = this.#stamp;
    const slot = Math.floor(now / this.#bucketMs);
    const i = slot % n;
    if (stamp[i] !== slot) {
      stamp[i] = slot;
      ok[i] = 0;
      all[i] = 0;
    }
    all[i] = (all[i] as number) + 1;
    if (success) ok[i] = (ok[i] as number) + 1;
    let s = 0;
    let t = 0;
    for (let j = 0; j < n; j++) {
      if ((stamp[j] as number) > slot - n) {
        s += ok[j] as number;
        t += all[j] as number;
      }
    }
    return t >= MIN_WINDOW_REQUESTS && s / t < this.rate;
  }
  reset(): void {
    this.#stamp.fill(-1);
  }
}

function makePolicy(c: AccrualPolicyConfig): Policy | undefined {
  switch (c.kind) {
    case 'io.l5d.consecutiveFailures':
      return new Consecutive(c.failures);
    case 'io.l5d.successRate':
      return new SuccessRate(c.successRate, c.requests);
    case 'io.l5d.successRateWindowed':
      return new SuccessRateWindowed(c.successRate, c.windowMs);
    case 'none':
      return undefined;
  }
}

interface Entry {
  readonly policy: Policy;
  state: AccrualState;
  /** While dead: when a probe may go. */
  until: number;
  probeOut: boolean;
  /**
   * The backoff stream of this endpoint, made when it is first marked dead (most entries never
   * are); restarts when a probe succeeds.
   */
  delays: (() => number) | undefined;
  /** When an outcome was last recorded (the injected clock): idle alive entries are dropped. */
  usedAt: number;
}

export interface AccrualOptions {
  readonly clock?: Clock;
  readonly random?: () => number;
  /** An endpoint was marked dead (metrics: removals). */
  /** An endpoint marked dead; `key` is its accrualKey (client id, space, endpoint). */
  readonly onRemoved?: (key: string) => void;
  /** The number of dead endpoints changed (metrics: gauge). */
  readonly onDeadCount?: (dead: number) => void;
}

export class FailureAccrual {
  readonly #config: AccrualConfig;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #o: AccrualOptions;
  /** Least recently used first, to LRU_REFRESH_MS (core/bounded-map.ts, refreshLast). */
  readonly #entries = new Map<string, Entry>();
  #dead = 0;

  constructor(config: AccrualConfig, options: AccrualOptions = {}) {
    this.#config = config;
    this.#o = options;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
    this.#random = options.random ?? Math.random;
  }

  get enabled(): boolean {
    return this.#config.policy.kind !== 'none';
  }

  /** Endpoints marked dead (or out on probation) now. */
  get deadCount(): number {
    return this.#dead;
  }

  /** Entries kept (bounded by MAX_ACCRUAL_ENTRIES). */
  get size(): number {
    return this.#entries.size;
  }

  /** The state of `key`; a dead endpoint whose backoff has passed becomes `probing`. */
  state(key: string): AccrualState {
    const e = this.#entries.get(key);
    if (e === undefined) return 'alive';
    if (e.state === 'dead' && this.#now() >= e.until) {
      e.state = 'probing';
      e.probeOut = false;
    }
    return e.state;
  }

  /** Whether the balancer may choose `key`: alive, or probing with no probe out yet. */
  usable(key: string): boolean {
    const s = this.state(key);
    return s === 'alive' || (s === 'probing' && !(this.#entries.get(key) as Entry).probeOut);
  }

  /**
   * An attempt goes to `key`. Returns true when it is the probe (its outcome decides whether the
   * endpoint comes back); a probe abandoned without an outcome lets the next request probe.
   */
  begin(key: string): boolean {
    const e = this.#entries.get(key);
    if (e === undefined || this.state(key) !== 'probing' || e.probeOut) return false;
    e.probeOut = true;
    return true;
  }

  /** The attempt that `begin` called the probe ended without an outcome (shed, client gone). */
  abandon(key: string): void {
    const e = this.#entries.get(key);
    if (e !== undefined && e.state === 'probing') e.probeOut = false;
  }

  /**
   * Drops the entries of alive endpoints with no outcome recorded for `idleMs` (their counts start
   * again, as for a new endpoint); dead and probing ones are kept (bounded by MAX_ACCRUAL_ENTRIES).
   * Returns how many were dropped.
   */
  evictIdle(idleMs: number): number {
    const now = this.#now();
    let dropped = 0;
    for (const [key, e] of this.#entries) {
      // Least recently used first, to LRU_REFRESH_MS: the rest were used at most that much earlier,
      // and the next sweep takes them.
      if (now - e.usedAt < idleMs) break;
      if (e.state === 'alive' && !e.probeOut) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** An attempt's outcome: the classifier's class (success or not), or a connection failure. */
  record(key: string, ok: boolean): void {
    if (!this.enabled) return;
    let e = this.#entries.get(key);
    // A run of failures starts with a failure: successes before it need no memory. Rates do.
    if (e === undefined && ok && this.#config.policy.kind === 'io.l5d.consecutiveFailures') return;
    const now = this.#now();
    if (e === undefined) {
      e = {
        policy: makePolicy(this.#config.policy) as Policy,
        state: 'alive',
        until: 0,
        probeOut: false,
        delays: undefined,
        usedAt: 0,
      };
      this.#entries.set(key, e);
    } else {
      refreshLast(this.#entries, key, e, e.usedAt, now);
    }
    e.usedAt = now;
    this.#apply(key, e, ok, now);
    this.#trim(); // after the outcome, so the entry being recorded is counted as what it now is
  }

  #apply(key: string, e: Entry, ok: boolean, now: number): void {
    if (this.state(key) === 'probing') {
      if (ok) {
        // Back in rotation with a clean history and a fresh backoff stream (Finagle's revival).
        e.state = 'alive';
        e.policy.reset();
        e.delays = undefined; // a fresh stream at the next marking
        this.#setDead(this.#dead - 1);
      } else {
        this.#markDead(e, now, false, key);
      }
      return;
    }
    if (e.state === 'dead') return; // a request sent anyway (every endpoint dead): the backoff stands
    if (e.policy.record(ok, now)) this.#markDead(e, now, true, key);
  }

  /** Forgets every state (endpoints re-resolved, tests). */
  clear(): void {
    this.#entries.clear();
    this.#setDead(0);
  }

  #markDead(e: Entry, now: number, fresh: boolean, key: string): void {
    e.state = 'dead';
    e.delays ??= backoffDelays(this.#config.backoff, this.#random);
    e.until = now + e.delays();
    e.probeOut = false;
    if (fresh) {
      this.#setDead(this.#dead + 1);
      this.#o.onRemoved?.(key);
    }
  }

  #setDead(n: number): void {
    this.#dead = Math.max(0, n);
    this.#o.onDeadCount?.(this.#dead);
  }

  /** Past the cap: drop the least recently used alive entries, then dead ones if need be. */
  #trim(): void {
    if (this.#entries.size <= MAX_ACCRUAL_ENTRIES) return;
    for (const [key, e] of this.#entries) {
      if (this.#entries.size <= MAX_ACCRUAL_ENTRIES) return;
      if (e.state === 'alive') this.#entries.delete(key);
    }
    for (const [key, e] of this.#entries) {
      if (this.#entries.size <= MAX_ACCRUAL_ENTRIES) return;
      this.#entries.delete(key);
      if (e.state !== 'alive') this.#setDead(this.#dead - 1);
    }
  }
}

/** The bound client of an accrual key. */
export function accrualClient(key: string): string {
  const i = key.lastIndexOf(' ');
  return i < 0 ? key : key.slice(0, i);
}

/** The accrual key of an endpoint of a bound client: Linkerd 1 kept accrual per client's balancer. */
export function accrualKey(client: string, endpoint: string): string {
  return `${client} ${endpoint}`;
}
