// The endpoint stage: one keep-alive undici Pool per endpoint (TLS to peer routers, plaintext to
// local pods), with in-flight counts for the balancer; idle pools are closed.

import type { ConnectionOptions } from 'node:tls';
import { Pool } from 'undici';
import type { Endpoint } from '../namer/addr.js';

export interface PoolEntry {
  readonly key: string;
  readonly origin: string;
  readonly pool: Pool;
  inFlight: number;
  lastUsed: number;
}

export function endpointKey(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

export class EndpointPools {
  readonly #tls: ConnectionOptions | undefined;
  readonly #pools = new Map<string, PoolEntry>();
  readonly #sweeper: NodeJS.Timeout;

  /** `tls` set: connections are TLS with these options (client cert, CA, servername). */
  constructor(tls: ConnectionOptions | undefined, idleMs = 60_000) {
    this.#tls = tls;
    this.#sweeper = setInterval(() => this.#sweep(idleMs), Math.min(idleMs, 30_000));
    this.#sweeper.unref();
  }

  load(e: Endpoint): number {
    return this.#pools.get(endpointKey(e))?.inFlight ?? 0;
  }

  get(e: Endpoint): PoolEntry {
    const key = endpointKey(e);
    let entry = this.#pools.get(key);
    if (entry === undefined) {
      const origin = `${this.#tls ? 'https' : 'http'}://${key}`;
      const pool = new Pool(origin, {
        connections: 64,
        keepAliveTimeout: 30_000,
        headersTimeout: 0,
        bodyTimeout: 0,
        ...(this.#tls ? { connect: { ...this.#tls } } : {}),
      });
      entry = { key, origin, pool, inFlight: 0, lastUsed: Date.now() };
      this.#pools.set(key, entry);
    }
    entry.lastUsed = Date.now();
    return entry;
  }

  #sweep(idleMs: number): void {
    const now = Date.now();
    for (const [key, entry] of this.#pools) {
      if (entry.inFlight === 0 && now - entry.lastUsed > idleMs) {
        this.#pools.delete(key);
        void entry.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy().catch(() => undefined)));
  }
}
