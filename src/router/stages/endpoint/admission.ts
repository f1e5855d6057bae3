// Admission control in front of one endpoint's connection pool: at most `maxInFlight` requests,
// shares per source and per service, and a bounded wait queue that sheds rather than waits forever.

import type { AbortEvents } from '../../../core/abort.js';
import { type Clock, systemClock } from '../../../core/clock.js';
import { HostmeshError } from '../../../errors.js';

export interface AdmissionLimits {
  /** Requests in flight on the endpoint (its pool's connections: HTTP/1.1 holds one per request). */
  readonly maxInFlight: number;
  /** Requests waiting for a slot; past it a request is shed at once. */
  readonly maxWaiters: number;
  /** How long a request may wait for a slot before it is shed. */
  readonly maxWaitMs: number;
  /** In flight per source (a pod's address). */
  readonly maxPerSource: number;
  /** Waiting per source, so one pod cannot fill the queue others need when the pool is full. */
  readonly maxWaitersPerSource: number;
  /** In flight per service (logical name). */
  readonly maxPerService: number;
}

/** Why a request was shed (a metric label: this set is closed). */
import type { ShedReason } from '../../events.js';

export type { ShedReason };

export class ShedError extends HostmeshError {
  readonly reason: ShedReason;
  constructor(reason: ShedReason, message: string) {
    super('SHED', message);
    this.reason = reason;
  }
}

interface Waiter {
  readonly source: string | undefined;
  readonly service: string;
  readonly admit: () => void;
  cancel: () => void;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #clock: Clock;
  #inFlight = 0;
  // Counts per key. A count back at zero is kept while the map holds at most IDLE_KEYS keys (the
  // next request of that key sets it again in place); past that it is deleted. So a map holds at
  // most IDLE_KEYS keys beyond those with requests present.
  readonly #bySource = new Map<string, number>();
  readonly #byService = new Map<string, number>();
  /** Waiting counts per source and per service: made when a request first waits (most endpoints' never does; issue 28). */
  #waiting: { readonly bySource: Map<string, number>; readonly byService: Map<string, number> } | undefined;
  readonly #waiters: Waiter[] = [];

  /** `clock`: the wait bound runs on it (tests drive it with a manual clock). */
  constructor(limits: AdmissionLimits, clock: Clock = systemClock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Per-key counts held (in flight and waiting, by source and by service), zeros kept included: what the maps cost. */
  get keysHeld(): number {
    const w = this.#waiting;
    return this.#bySource.size + this.#byService.size + (w === undefined ? 0 : w.bySource.size + w.byService.size);
  }

  /**
   * Takes a slot for one request: undefined when admitted at once (the common case, no promise),
   * else a promise that resolves when admitted or rejects with a ShedError. A request with no
   * source (the incoming side, where every request comes from a peer router) has only the
   * per-service share. Each admission must be paired with one release() with the same keys.
   * `abort` (the client went away) takes a waiter out of the queue at once, so gone clients do
   * not hold queue places until the wait bound.
   */
  acquire(source: string | undefined, service: string, abort?: AbortEvents): Promise<void> | undefined {
    // Waiters left in the queue are all blocked by their own shares or by a full pool (release
    // admits every eligible one), so a newcomer that fits takes a slot without unfairness.
    if (this.#fits(source, service)) {
      this.#take(source, service);
      return undefined;
    }
    const l = this.#limits;
    if (this.#waiters.length >= l.maxWaiters) {
      return Promise.reject(
        new ShedError('queue_full', `endpoint busy: ${this.#inFlight} requests in flight and ${this.#waiters.length} waiting (queue bound)`),
      );
    }
    if (source !== undefined && (this.#waiting?.bySource.get(source) ?? 0) >= l.maxWaitersPerSource) {
      return Promise.reject(
        new ShedError('source_queue_full', `too many requests from ${source}: its share of the queue (${l.maxWaitersPerSource} waiting) is full`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#remove(waiter)) {
          cancelTimer();
          reject(new HostmeshError('UPSTREAM_ERROR', 'the client went away while waiting for a slot'));
        }
      };
      const waiter: Waiter = {
        source,
        service,
        admit: () => {
          abort?.off('abort', onAbort);
          resolve();
        },
        cancel: () => {
          abort?.off('abort', onAbort);
          cancelTimer();
        },
      };
      const cancelTimer = this.#clock.schedule(l.maxWaitMs, () => {
        abort?.off('abort', onAbort);
        if (this.#remove(waiter)) {
          reject(new ShedError('wait_timeout', `endpoint busy: no slot within ${l.maxWaitMs} ms (queue wait bound)`));
        }
      });
      abort?.once('abort', onAbort);
      this.#waiters.push(waiter);
      this.#waiting ??= { bySource: new Map(), byService: new Map() };
      if (source !== undefined) bump(this.#waiting.bySource, source, 1);
      bump(this.#waiting.byService, service, 1);
    });
  }

  /** Gives back a slot taken by acquire(), and admits the waiters that now fit, oldest first. */
  release(source: string | undefined, service: string): void {
    this.#inFlight--;
    if (source !== undefined) bump(this.#bySource, source, -1);
    bump(this.#byService, service, -1);
    if (this.#waiters.length > 0) this.#admitWaiting();
  }

  /**
   * Admits every waiter that fits, oldest first, while the pool has a slot. Shares only fill up
   * while this runs, so a source or service found at its share stays there: once every waiter left
   * is of such a source, or every one of such a service, none can fit and the scan stops (one
   * busy source behind a full share used to cost a pass over the whole queue per release).
   */
  #admitWaiting(): void {
    const l = this.#limits;
    let fullSources: Set<string> | undefined;
    let fullServices: Set<string> | undefined;
    /** Waiters of the sources (services) in fullSources (fullServices): those never change while this runs. */
    let ofFullSources = 0;
    let ofFullServices = 0;
    for (let i = 0; i < this.#waiters.length && this.#inFlight < l.maxInFlight; ) {
      const w = this.#waiters[i] as Waiter;
      if (!this.#fits(w.source, w.service)) {
        if (w.source !== undefined && (this.#bySource.get(w.source) ?? 0) >= l.maxPerSource) {
          fullSources ??= new Set();
          if (!fullSources.has(w.source)) {
            fullSources.add(w.source);
            ofFullSources += this.#waiting?.bySource.get(w.source) ?? 0;
          }
        } else {
          fullServices ??= new Set();
          if (!fullServices.has(w.service)) {
            fullServices.add(w.service);
            ofFullServices += this.#waiting?.byService.get(w.service) ?? 0;
          }
        }
        if (ofFullSources >= this.#waiters.length || ofFullServices >= this.#waiters.length) return;
        i++;
        continue;
      }
      if (i === 0) this.#waiters.shift();
      else this.#waiters.splice(i, 1);
      this.#dequeued(w);
      w.cancel();
      this.#take(w.source, w.service);
      w.admit();
    }
  }

  /** A waiter left the queue (admitted or gone): its per-key waiting counts. */
  #dequeued(w: Waiter): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return; // made with the first waiter: never undefined here
    if (w.source !== undefined) bump(waiting.bySource, w.source, -1);
    bump(waiting.byService, w.service, -1);
  }

  #fits(source: string | undefined, service: string): boolean {
    const l = this.#limits;
    if (this.#inFlight >= l.maxInFlight) return false;
    if (source !== undefined && (this.#bySource.get(source) ?? 0) >= l.maxPerSource) return false;
    return (this.#byService.get(service) ?? 0) < l.maxPerService;
  }

  #take(source: string | undefined, service: string): void {
    this.#inFlight++;
    if (source !== undefined) bump(this.#bySource, source, 1);
    bump(this.#byService, service, 1);
  }

  #remove(w: Waiter): boolean {
    const i = this.#waiters.indexOf(w);
    if (i < 0) return false;
    this.#waiters.splice(i, 1);
    this.#dequeued(w);
    return true;
  }
}

/**
 * Keys at zero a count map keeps. Deleting a key at zero and adding it back on the next request
 * made the map rebuild its table on every request of an otherwise idle endpoint (a Map's table
 * shrinks when it falls below a quarter full), in the old generation for a map that lives long
 * (issue 28, session 12).
 */
const IDLE_KEYS = 64;

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n <= 0 && m.size > IDLE_KEYS) m.delete(key);
  else m.set(key, Math.max(0, n));
}
