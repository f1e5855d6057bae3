// Endpoint pools per client settings: the router's own pools for clients no prefix config changes,
// and one EndpointPools per distinct per-prefix TLS and pool settings (io.l5d.static), bounded.

import { BoundedMap } from '../../../core/bounded-map.js';
import type { RouterPartEvents } from '../../events.js';
import type { ConnectionOptions } from 'node:tls';
import type { ClientTlsSpec } from '../../../tls/tls-files.js';
import type { Clock } from '../../../core/clock.js';
import { clientTlsOptions } from '../../../tls/tls-files.js';
import { clientLimits, EndpointPools, type PoolEvents } from './endpoint-pool.js';
import type { ClientSettings } from '../../settings/static-params.js';
import type { ClientSpec } from '../../settings/spec.js';

/** Linkerd 1's bindingCache.clients default: distinct per-prefix client settings with pools open at once. */
export const DEFAULT_MAX_CLIENT_POOLS = 1000;

export interface ClientPoolsOptions {
  /** Distinct per-prefix settings with open pools (a `{var}` commonName makes one per captured name). */
  readonly maxClients?: number;
  readonly events?: PoolEvents;
  /** The clock of idle pool eviction and admission waits (tests drive it). */
  readonly clock?: Clock;
  /** A per-prefix client's pools were retired past maxClients (metrics). */
  /** Where a client's pools dropped past maxClients are reported (paramsEvicted('pools')). */
  readonly paramsEvents?: Pick<RouterPartEvents, 'paramsEvicted'>;
  /** Builds TLS options from a config (tests; default tls/tls-files.ts clientTlsOptions). */
  readonly tlsOptions?: (cfg: ClientTlsSpec) => ConnectionOptions;
}

// Settings objects are cached per name (static-params.ts), so their keys are computed once.
const keys = new WeakMap<ClientSettings, string>();

/** The settings that make connections differ: TLS and the pool's limits (not retries or accrual). */
function poolKey(s: ClientSettings): string {
  let key = keys.get(s);
  if (key === undefined) {
    key = JSON.stringify({ tls: s.tls ?? null, limits: clientLimits(s) });
    keys.set(s, key);
  }
  return key;
}

export class ClientPools {
  /** The router's pools (its global client config: peer routers over mTLS, or local pods). */
  readonly router: EndpointPools;
  readonly #global: ClientSettings;
  readonly #globalKey: string;
  readonly #byKey: BoundedMap<string, EndpointPools>;
  readonly #options: ClientPoolsOptions;

  /** `global`: the router's own client settings (a ClientSpec's prefix list, if any, is not read here). */
  constructor(router: EndpointPools, global: ClientSettings | ClientSpec, options: ClientPoolsOptions = {}) {
    this.router = router;
    this.#global = global;
    this.#globalKey = poolKey(global);
    this.#options = options;
    // Least recently used first out, past maxClients: its pools are retired.
    this.#byKey = new BoundedMap({
      name: 'client_pools',
      max: options.maxClients ?? DEFAULT_MAX_CLIENT_POOLS,
      onEvict: (_key, old) => {
        retire(old);
        options.paramsEvents?.paramsEvicted('pools');
      },
    });
  }

  /**
   * The pools a bound client's settings call for. Settings that differ from the router's only in
   * keys outside the pool (retries, accrual, timeouts) share the router's pools. TLS settings always
   * give TLS pools: a per-prefix TLS config never falls back to plaintext.
   */
  for(settings: ClientSettings): EndpointPools {
    if (settings === this.#global) return this.router;
    const key = poolKey(settings);
    if (key === this.#globalKey) return this.router;
    let pools = this.#byKey.get(key); // a hit becomes the most recently used
    if (pools !== undefined) return pools;
    const tls = settings.tls === undefined ? undefined : (this.#options.tlsOptions ?? clientTlsOptions)(settings.tls);
    pools = new EndpointPools(
      tls,
      { limits: clientLimits(settings), ...(this.#options.clock !== undefined ? { clock: this.#options.clock } : {}) },
      this.#options.events,
    );
    this.#byKey.set(key, pools);
    return pools;
  }

  /** Closes idle endpoint pools of the per-prefix clients (on their injected clock). */
  evictIdle(): void {
    for (const pools of this.#byKey.values()) pools.evictIdle();
  }

  /** Per-prefix settings with pools open now. */
  get size(): number {
    return this.#byKey.size;
  }

  /** New certificates on disk: per-prefix pools are retired, so new connections read the files again. */
  reloadTls(): void {
    for (const pools of this.#byKey.values()) retire(pools);
    this.#byKey.clear();
  }

  async close(): Promise<void> {
    const all = [...this.#byKey.values()];
    this.#byKey.clear();
    await Promise.all(all.map((p) => p.close()));
  }
}

/**
 * Takes pools out of use without cutting requests in flight on them: a TLS EndpointPools retires
 * its pools gracefully on setTls (undici's close waits for running requests); then close() only
 * stops its sweeper. Plaintext per-prefix pools differ only by limits, which come from the config,
 * so their number is bounded by it; they are closed outright.
 */
function retire(pools: EndpointPools): void {
  const tls = pools.tlsOptions;
  if (tls !== undefined) pools.setTls(tls);
  void pools.close();
}
