// The endpoint stage: one keep-alive pool per endpoint (TLS to peer routers, plaintext to local
// pods; hostmesh's lean HTTP/1.1 pool or undici's, client.engine), with in-flight counts for the
// balancer; idle pools are closed, the first minSize connections of a pool outlive idleTimeMs.

import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import type { buildConnector, Dispatcher } from 'undici';
import { refreshLast } from '../../../core/bounded-map.js';
import { H1Pool, leanClientAvailable } from '../../../core/h1-pool.js';
import { Client, Pool } from '../../../core/undici.js';
import type { ClientSettings } from '../../settings/spec.js';
import { type Cancel, type Clock, every, systemClock } from '../../../core/clock.js';
import { HostmeshError } from '../../../errors.js';
import { endpointKey, type Endpoint } from '../../../namer/addr.js';
import { Admission, type AdmissionLimits } from './admission.js';

export interface PoolEntry {
  readonly key: string;
  readonly origin: string;
  /** hostmesh's lean HTTP/1.1 pool (core/h1-pool.ts) or undici's Pool (client.engine): both are undici dispatchers. */
  readonly pool: Dispatcher;
  /** How the pool connects (TLS options, servername, client.connectTimeoutMs): an Upgrade's one-shot client connects the same way. */
  readonly connect: buildConnector.BuildOptions;
  /** Slots of this endpoint: per source and per service shares, a bounded wait queue. */
  readonly admission: Admission;
  /** Requests on this endpoint, waiting for a slot or in flight (the balancer's load). */
  inFlight: number;
  lastUsed: number;
  /** Peak-EWMA of time to response headers, in ms (0 until the first response). */
  ewmaMs: number;
  ewmaAt: number;
}

/**
 * How long a minSize connection stays open while idle, and a pool with minSize > 0 lives without
 * requests: undici's own cap on a server's keep-alive hint, and Linkerd 1's bindingCache idle TTL
 * (after which Linkerd 1 drops an unused client with its pool and its minSize connections).
 */
export const MIN_SIZE_IDLE_MS = 600_000;

/** Decay window of the latency average (Finagle's peak EWMA uses 10 s). */
const EWMA_DECAY_MS = 10_000;

// The stages key their pools with it; it lives with Endpoint so the delegation tree prints the same way.
export { endpointKey };

/**
 * Endpoint pools a router keeps open at once when client.maxEndpointPools is unset: an endpoint is
 * a local pod (at most ~110 per node) or a peer router (one per node), and every distinct
 * `/$/inet/<host>/<port>` a dtab override names; past it the least recently used idle pool is closed.
 */
export const DEFAULT_MAX_ENDPOINT_POOLS = 1000;

/** A pool with nothing in flight for this long is closed (minSize > 0: MIN_SIZE_IDLE_MS). */
export const POOL_IDLE_MS = 60_000;

/** Connections (= requests in flight) per endpoint when hostConnectionPool.maxSize is unset. */
export const DEFAULT_POOL_MAX_SIZE = 64;

/** Every bound the client side puts on one endpoint's pool, with defaults filled in. */
export interface ClientLimits extends AdmissionLimits {
  /** Connections of an endpoint kept open while idle past idleTimeMs (Linkerd 1 hostConnectionPool.minSize). */
  readonly minSize: number;
  /** An idle keep-alive connection is closed after this (Linkerd 1 hostConnectionPool.idleTimeMs). */
  readonly idleTimeMs: number;
  /** Response headers must arrive within this once the request is sent. */
  /** The TCP connect and TLS handshake to an endpoint (Linkerd 1 client.connectTimeoutMs; undici's default). */
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** A response body with no progress for this long is cut. */
  readonly bodyIdleTimeoutMs: number;
  /** A request body with no progress for this long is aborted (408 if nothing was answered yet). */
  readonly requestBodyIdleTimeoutMs: number;
  /** Endpoint pools open at once (client.maxEndpointPools): past it the least recently used idle one is closed. */
  readonly maxEndpointPools: number;
  /** The HTTP/1.1 client (client.engine): lean unless undici is asked for or this Node lacks the parser binding it needs. */
  readonly engine: 'lean' | 'undici';
}

/**
 * The limits a client config asks for. Linkerd 1 left the pool unbounded (maxSize and maxWaiters
 * Int.MaxValue, no timeouts); a node's links are shared by every pod, so hostmesh bounds them:
 * 64 connections per endpoint (what it always used), a pod at most half of them, a service at
 * most three quarters, 1,024 waiters (a pod at most half of them) for at most 5 s, and deadlines
 * long enough for long polls. A busy pod's excess waits its turn; only past the queue is it shed.
 */
export function clientLimits(c: ClientSettings = {}): ClientLimits {
  const maxInFlight = c.hostConnectionPool?.maxSize ?? DEFAULT_POOL_MAX_SIZE;
  const maxWaiters = c.hostConnectionPool?.maxWaiters ?? 1024;
  return {
    minSize: c.hostConnectionPool?.minSize ?? 0,
    maxInFlight,
    maxWaiters,
    maxWaitersPerSource: Math.max(1, Math.ceil(maxWaiters / 2)),
    maxWaitMs: c.maxWaitMs ?? 5_000,
    maxPerSource: Math.min(maxInFlight, c.maxInFlightPerSource ?? Math.max(1, Math.floor(maxInFlight / 2))),
    maxPerService: Math.min(maxInFlight, c.maxInFlightPerService ?? Math.max(1, Math.floor((maxInFlight * 3) / 4))),
    idleTimeMs: c.hostConnectionPool?.idleTimeMs ?? 30_000,
    connectTimeoutMs: c.connectTimeoutMs ?? 10_000,
    headersTimeoutMs: c.headersTimeoutMs ?? 30_000,
    bodyIdleTimeoutMs: c.bodyIdleTimeoutMs ?? 60_000,
    requestBodyIdleTimeoutMs: c.requestBodyIdleTimeoutMs ?? 60_000,
    maxEndpointPools: c.maxEndpointPools ?? DEFAULT_MAX_ENDPOINT_POOLS,
    engine: c.engine === 'undici' || !leanClientAvailable() ? 'undici' : 'lean',
  };
}

/** Connection events of the pools (metrics). */
export interface PoolEvents {
  connect(): void;
  disconnect(): void;
  /** An endpoint's pool was opened (hostmesh_endpoint_pools). */
  poolOpened?(): void;
  /** A pool was closed: idle past its idle time, the least recently used idle one past maxEndpointPools, or retired (new TLS, shutdown). */
  poolClosed?(reason: 'idle' | 'capacity' | 'retired'): void;
  /** A new endpoint was refused: maxEndpointPools pools open, each with requests in flight. */
  refused?(): void;
}

/**
 * Linkerd 1's minSize (Finagle's low watermark) as undici's Pool allows it: the pool makes one
 * Client per connection through this factory, and the first minSize it makes are the floor. Those
 * take a keep-alive of MIN_SIZE_IDLE_MS instead of idleTimeMs; the rest close at idleTimeMs. The
 * pool hands each request to its first free Client, so a light load runs on the floor and the
 * extra ones go idle and close. A floor connection still closes when the server says so (undici
 * honours a Keep-Alive hint up to keepAliveMaxTimeout, e.g. Node's default 5 s) and is reopened on
 * the next request: as in Finagle, nothing is pre-opened, so an endpoint nobody calls costs nothing.
 */
function floorFactory(minSize: number, floor: Set<unknown>): (origin: URL, opts: object) => Client {
  return (origin, opts) => {
    const o = opts as ConstructorParameters<typeof Client>[1];
    if (floor.size >= minSize) return new Client(origin, o);
    const client = new Client(origin, { ...o, keepAliveTimeout: MIN_SIZE_IDLE_MS, keepAliveMaxTimeout: MIN_SIZE_IDLE_MS });
    floor.add(client);
    return client;
  };
}

export class EndpointPools {
  #tls: ConnectionOptions | undefined;
  /** Least recently used first, to LRU_REFRESH_MS (core/bounded-map.ts, refreshLast). */
  readonly #pools = new Map<string, PoolEntry>();
  readonly #stopSweeper: Cancel;
  readonly #idleMs: number;
  readonly #clock: Clock;

  /** `tls` set: connections are TLS with these options (client cert, CA, servername). */
  readonly #events: PoolEvents | undefined;
  /** The pools' connect and disconnect listeners: one pair for every pool, not a pair per pool. */
  readonly #onConnect: (() => void) | undefined;
  readonly #onDisconnect: (() => void) | undefined;
  readonly limits: ClientLimits;

  /**
   * `idleMs`: a pool with nothing in flight for this long is closed (its endpoint is gone or
   * unused), measured on `clock` (evictIdle() sweeps, called by a sweeper on the same clock; the
   * admission wait bounds run on it too).
   */
  constructor(tls: ConnectionOptions | undefined, options: { limits?: ClientLimits; idleMs?: number; clock?: Clock } = {}, events?: PoolEvents) {
    this.#tls = tls;
    this.#events = events;
    if (events !== undefined) {
      this.#onConnect = () => events.connect();
      this.#onDisconnect = () => events.disconnect();
    }
    this.limits = options.limits ?? clientLimits();
    this.#idleMs = options.idleMs ?? (this.limits.minSize > 0 ? MIN_SIZE_IDLE_MS : POOL_IDLE_MS);
    this.#clock = options.clock ?? systemClock;
    this.#stopSweeper = every(this.#clock, Math.min(this.#idleMs, 30_000), () => this.evictIdle());
  }

  /** Endpoint pools open now. */
  get size(): number {
    return this.#pools.size;
  }

  /** Whether connections to endpoints are TLS (peer routers) or plaintext (local pods). */
  get tls(): boolean {
    return this.#tls !== undefined;
  }

  /** TLS options for connections made outside the pools (upgrades). */
  get tlsOptions(): ConnectionOptions | undefined {
    return this.#tls;
  }

  /**
   * New TLS options (rotated certificates): new connections use them at once. Existing pools are
   * retired: taken out of rotation and closed gracefully, so requests in flight on them finish.
   */
  setTls(tls: ConnectionOptions): void {
    if (this.#tls === undefined) throw new Error('plaintext pools cannot switch to TLS');
    this.#tls = tls;
    this.#context = undefined;
    const retired = [...this.#pools.values()];
    this.#pools.clear();
    for (const entry of retired) this.#close(entry, 'retired');
  }

  load(e: Endpoint): number {
    return this.#pools.get(endpointKey(e))?.inFlight ?? 0;
  }

  /**
   * EWMA cost: latency average times (requests in flight + 1), so a slow endpoint and a busy one
   * both look expensive. Unmeasured endpoints cost little, so new endpoints get tried.
   */
  cost(e: Endpoint): number {
    const entry = this.#pools.get(endpointKey(e));
    if (entry === undefined) return 0;
    return (entry.ewmaMs + 0.01) * (entry.inFlight + 1);
  }

  /** Records one response latency: peak-sensitive (a slower sample is taken at once), decaying. */
  observe(entry: PoolEntry, latencyMs: number, now = this.#clock.now()): void {
    if (latencyMs > entry.ewmaMs) {
      entry.ewmaMs = latencyMs;
    } else {
      const w = Math.exp(-Math.max(0, now - entry.ewmaAt) / EWMA_DECAY_MS);
      entry.ewmaMs = entry.ewmaMs * w + latencyMs * (1 - w);
    }
    entry.ewmaAt = now;
  }

  /**
   * The pool of endpoint `e`, opened if need be. With maxEndpointPools open, the least recently
   * used one with nothing in flight is closed first; if every one has requests in flight, the new
   * endpoint is refused (503 ENDPOINT_POOLS_FULL) and nothing is opened.
   */
  get(e: Endpoint): PoolEntry {
    const key = endpointKey(e);
    const now = this.#clock.now();
    let entry = this.#pools.get(key);
    if (entry !== undefined) {
      refreshLast(this.#pools, key, entry, entry.lastUsed, now);
    } else {
      if (this.#pools.size >= this.limits.maxEndpointPools) this.#makeRoom(key);
      const origin = `${this.#tls ? 'https' : 'http'}://${key}`;
      const l = this.limits;
      const connect = this.#tls ? { ...this.#tls, secureContext: this.#secureContext(), timeout: l.connectTimeoutMs } : { timeout: l.connectTimeoutMs };
      const pool = l.engine === 'lean' ? this.#lean(origin, connect) : this.#undici(origin, connect);
      if (this.#onConnect !== undefined && this.#onDisconnect !== undefined) {
        pool.on('connect', this.#onConnect);
        pool.on('disconnect', this.#onDisconnect);
      }
      const admission = new Admission(l, this.#clock);
      entry = { key, origin, pool, connect: connect as buildConnector.BuildOptions, admission, inFlight: 0, lastUsed: now, ewmaMs: 0, ewmaAt: now };
      this.#pools.set(key, entry);
      this.#events?.poolOpened?.();
    }
    entry.lastUsed = now;
    return entry;
  }

  /** hostmesh's lean pool: the same limits and timeouts, its timers on the router's clock. */
  #lean(origin: string, connect: ConnectionOptions & { timeout: number }): Dispatcher {
    const l = this.limits;
    return new H1Pool(origin, {
      connections: l.maxInFlight,
      keepAliveTimeout: l.idleTimeMs,
      keepAliveMaxTimeout: l.idleTimeMs,
      headersTimeout: l.headersTimeoutMs,
      bodyTimeout: l.bodyIdleTimeoutMs,
      minSize: l.minSize,
      floorKeepAlive: MIN_SIZE_IDLE_MS,
      connect,
      clock: this.#clock,
    });
  }

  /** undici's Pool (client.engine: undici), minSize through floorFactory. */
  #undici(origin: string, connect: ConnectionOptions & { timeout: number }): Dispatcher {
    const l = this.limits;
    const floor = new Set<unknown>();
    // Admission keeps at most maxInFlight requests on the pool, so its own queue stays empty.
    // undici's headersTimeout runs once the request is sent (not while a body uploads), and
    // bodyTimeout is the idle time between body chunks, paused while the reader applies
    // back-pressure: what headersTimeoutMs and bodyIdleTimeoutMs mean (the lean pool does the same).
    const pool = new Pool(origin, {
      connections: l.maxInFlight,
      keepAliveTimeout: l.idleTimeMs,
      keepAliveMaxTimeout: l.idleTimeMs,
      headersTimeout: l.headersTimeoutMs,
      bodyTimeout: l.bodyIdleTimeoutMs,
      ...(l.minSize > 0 ? { factory: floorFactory(l.minSize, floor) } : {}),
      connect: connect as buildConnector.BuildOptions,
    });
    // undici drops a Client that failed to connect: its place in the floor is free again.
    if (l.minSize > 0) pool.on('connectionError', (_origin, targets) => targets.forEach((c) => floor.delete(c)));
    return pool;
  }

  /** Closes the least recently used pool with nothing in flight, or refuses `key` when there is none. */
  #makeRoom(key: string): void {
    while (this.#pools.size >= this.limits.maxEndpointPools) {
      let victim: PoolEntry | undefined;
      for (const entry of this.#pools.values()) {
        if (entry.inFlight === 0) {
          victim = entry;
          break;
        }
      }
      if (victim === undefined) {
        this.#events?.refused?.();
        throw HostmeshError.of('ENDPOINT_POOLS_FULL', 'full', { max: this.limits.maxEndpointPools, endpoint: key });
      }
      this.#pools.delete(victim.key);
      this.#close(victim, 'capacity');
    }
  }

  /** Closes a pool taken out of the map: its idle sockets at once, requests still on it first (undici's close). */
  #close(entry: PoolEntry, reason: 'idle' | 'capacity' | 'retired'): void {
    void entry.pool.close().catch(() => undefined);
    this.#events?.poolClosed?.(reason);
  }

  #context: SecureContext | undefined;

  /**
   * One parsed context (certificate, key, CAs) for every connection, not one per handshake: the
   * one the options carry (clientTlsOptions builds it), else made here once.
   */
  #secureContext(): SecureContext | undefined {
    if (this.#tls === undefined) return undefined;
    this.#context ??= this.#tls.secureContext ?? createSecureContext(this.#tls);
    return this.#context;
  }

  /** Closes the pools with nothing in flight and unused for the idle time (on the injected clock); returns how many. */
  evictIdle(now = this.#clock.now()): number {
    let closed = 0;
    for (const [key, entry] of this.#pools) {
      if (entry.inFlight === 0 && now - entry.lastUsed >= this.#idleMs) {
        this.#pools.delete(key);
        this.#close(entry, 'idle');
        closed++;
      }
    }
    return closed;
  }

  async close(): Promise<void> {
    this.#stopSweeper();
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    for (let i = 0; i < pools.length; i++) this.#events?.poolClosed?.('retired');
    await Promise.all(pools.map((p) => p.pool.destroy().catch(() => undefined)));
  }
}
