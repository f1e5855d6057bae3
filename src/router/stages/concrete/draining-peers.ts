// Peer routers that announced they are draining (issue 18, DaemonSet rollouts): the outgoing
// router stops choosing them while another endpoint is alive. Bounded, expiring, injected clock.

import { BoundedMap } from '../../../core/bounded-map.js';
import { type Clock, systemClock } from '../../../core/clock.js';
import { skipDead } from './balancer.js';
import type { RouterEvents } from '../../events.js';

/**
 * The router-owned answer header a draining incoming router sets on every answer to a peer during
 * its announce phase and its drain. Trusted only from a peer router over mTLS; dropped from every
 * answer a router relays, so an app can neither forge it nor see it.
 */
export const DRAINING_HEADER = 'l5d-hostmesh-draining';

export const DRAINING_PEER_DEFAULTS = {
  /**
   * How long a mark keeps a peer out of the balancer. Long enough to cover the announce, the drain
   * (shutdownGraceMs, 10 s shipped) and a restart; an unmarked answer from the peer ends it sooner.
   */
  ttlMs: 30_000,
  /** Marks kept at once (one per peer router address; a cluster has far fewer nodes). */
  max: 10_000,
} as const;

export interface DrainingPeersOptions {
  readonly ttlMs?: number;
  readonly max?: number;
  readonly clock?: Clock;
  /** drainingPeerMarked: a peer was marked (not counted again while its mark holds); drainingPeers: marked now, after each change. */
  readonly events?: Pick<RouterEvents, 'drainingPeerMarked' | 'drainingPeers'>;
}

export class DrainingPeers {
  /** Expiry time by endpoint key; insertion order is age order (re-marking moves a key last). */
  readonly #until: BoundedMap<string, number>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #o: DrainingPeersOptions;

  constructor(options: DrainingPeersOptions = {}) {
    this.#ttlMs = options.ttlMs ?? DRAINING_PEER_DEFAULTS.ttlMs;
    // Insertion order: reading a mark must not keep it; re-marking (set) moves it last.
    this.#until = new BoundedMap({ name: 'draining_peers', max: options.max ?? DRAINING_PEER_DEFAULTS.max, order: 'insertion' });
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
    this.#o = options;
  }

  get size(): number {
    return this.#until.size;
  }

  /** The peer at `key` said it is draining: skip it for the TTL from now. */
  mark(key: string): void {
    const fresh = !this.draining(key);
    // Over the cap the oldest mark goes: at worst that peer is chosen again and re-marks itself.
    this.#until.set(key, this.#now() + this.#ttlMs);
    if (fresh) this.#o.events?.drainingPeerMarked();
    this.#o.events?.drainingPeers(this.#until.size);
  }

  /** The peer at `key` answered without the mark (it restarted, or never drained): forget it. */
  clear(key: string): void {
    if (this.#until.delete(key)) this.#o.events?.drainingPeers(this.#until.size);
  }

  /** Whether the peer at `key` is marked now (an expired mark is dropped here). */
  draining(key: string): boolean {
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#until.delete(key);
    this.#o.events?.drainingPeers(this.#until.size);
    return false;
  }

  /**
   * The items the balancer may choose: those not draining. When every one is, the one that
   * announced first: in a rolling restart it is the likeliest to be back (the rollout moves on to
   * the next node once the previous one is ready), while the latest is about to close. A draining
   * router still serves until it closes, and its hard drain answers are requeued.
   */
  skipDraining<T>(items: readonly T[], key: (item: T) => string): readonly T[] {
    if (this.#until.size === 0) return items; // the common path: nothing to check, no copy
    const live = skipDead(items, (item) => !this.draining(key(item)));
    if (live !== items || items.length === 0 || !this.draining(key(items[0] as T))) return live;
    // skipDead gave every item back: each one is draining (the first checked above).
    let first = Number.POSITIVE_INFINITY;
    for (const item of items) first = Math.min(first, this.#until.get(key(item)) ?? Number.POSITIVE_INFINITY);
    return items.filter((item) => this.#until.get(key(item)) === first);
  }
}

/** Whether an answer's headers carry the draining mark (any value: only its presence counts). */
export function hasDrainingMark(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers[DRAINING_HEADER] !== undefined;
}
