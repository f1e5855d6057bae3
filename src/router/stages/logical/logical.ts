// Stage 2, logical: binds a logical name through the dtab in force (the router's own, plus a
// request's l5d-ctx-dtab/l5d-dtab override) to a tree of bound names, through a bounded cache of live bindings.

import { BoundedMap } from '../../../core/bounded-map.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dtab } from '../../../dtab/dtab.js';
import type { NameTree } from '../../../dtab/name-tree.js';
import type { Path } from '../../../dtab/path.js';
import { HostmeshError } from '../../../errors.js';
import type { BoundName, Lookup } from '../../../namer/addr.js';
import type { Binding, NameInterpreter } from '../../../namer/interpreter.js';
import { settled, type Var } from '../../../namer/var.js';
import type { RequestContext } from '../../context.js';
import { HeaderDtabs } from './header-dtabs.js';
import { headerValue } from '../../headers.js';
import type { RouterEvents } from '../../events.js';

/**
 * Bindings kept per router. Each distinct (dtab, path) a request produces is a live binding
 * (namer lookups, watches), so the cache is least-recently-used with two caps: names bound
 * through the router's own dtab (`paths`, Linkerd 1's default 1000) and names bound through a
 * request's l5d-dtab/l5d-ctx-dtab override (`overrides`, smaller: an override is a debugging
 * tool, and its text comes from the request).
 */
export interface BindingCacheLimits {
  readonly paths: number;
  readonly overrides: number;
  readonly idleTtlMs: number;
}

export const DEFAULT_BINDING_CACHE: BindingCacheLimits = { paths: 1000, overrides: 100, idleTtlMs: 600_000 };

/** How long a request waits for a binding still pending (a namer's first answer) before a 503 (Linkerd 1's bindingTimeoutMs default). */
const BINDING_WAIT_MS = 10_000;

export interface LogicalOptions {
  /** The router's own dtab; a Var so a reloaded dtabFile applies to new requests. */
  readonly dtab: Var<Dtab>;
  readonly interpreter: NameInterpreter;
  readonly limits: BindingCacheLimits;
  readonly now: () => number;
  /** Most nodes of one delegation tree (the interpreter's default when unset). */
  readonly budget?: number | undefined;
  /** The wait for a pending binding (bindingTimeoutMs); default BINDING_WAIT_MS. */
  readonly waitMs?: number | undefined;
  /** Where budget refusals and cache evictions are reported (default: nowhere). */
  readonly events?: Pick<RouterEvents, 'budgetExceeded' | 'bindingEvicted'> | undefined;
}

/** A logical name bound: the tree of bound names, and the override text to pass on downstream. */
export interface Bound {
  readonly tree: NameTree<BoundName>;
  /** The request's dtab override as forwarded in l5d-ctx-dtab ('' when none). */
  readonly overrides: string;
}

/** A Bound made by a constructor: never pretenured, as a literal's allocation site may be (route-plan.ts, Plan). */
class BoundTree implements Bound {
  constructor(
    readonly tree: NameTree<BoundName>,
    readonly overrides: string,
  ) {}
}

interface CachedBinding {
  readonly binding: Binding;
  /** The dtab it was bound through: a cached binding of another dtab (the router's was replaced) is not used. */
  readonly dtab: Dtab;
  lastUsed: number;
}

export class LogicalStage {
  readonly #o: LogicalOptions;
  /**
   * By path, through the router's own dtab (a request without l5d-dtab): keyed by the path alone, so
   * a request builds no key from the dtab's text (a few hundred bytes to join and hash each time).
   */
  readonly #bindings: BoundedMap<string, CachedBinding>;
  /** By the dtab's text and the path: a request's overrides make its dtab. */
  readonly #overrideBindings: BoundedMap<string, CachedBinding>;
  readonly #headerDtabs: HeaderDtabs;

  constructor(options: LogicalOptions) {
    this.#o = options;
    // Past a cap the least recently used binding is closed (Linkerd 1's bindingCache.paths and .overrides).
    const onEvict = (_key: string, c: CachedBinding): void => {
      c.binding.close();
      options.events?.bindingEvicted('capacity');
    };
    this.#bindings = new BoundedMap({ name: 'binding_cache_paths', max: options.limits.paths, onEvict });
    this.#overrideBindings = new BoundedMap({ name: 'binding_cache_overrides', max: options.limits.overrides, onEvict });
    this.#headerDtabs = new HeaderDtabs(options.limits.overrides);
  }

  get dtab(): Dtab {
    return this.#o.dtab.get();
  }

  /**
   * Binds `service` through the router's dtab and the request's override headers. A binding the
   * cache holds settled is returned at once (no promise: most requests); a pending one is waited
   * for. A failure throws (synchronously, or as the promise's rejection when it was waited for).
   */
  bind(headers: IncomingHttpHeaders, service: Path, ctx: RequestContext): Bound | Promise<Bound> {
    const base = this.#o.dtab.get();
    const overrides = this.#headerDtabs.parse(headerValue(headers['l5d-ctx-dtab']), headerValue(headers['l5d-dtab']));
    ctx.dtab = base.show();
    ctx.overrides = overrides.text;
    const dtab = overrides.dtab === undefined ? base : base.concat(overrides.dtab);
    const tree = this.#bind(dtab, service, overrides.dtab !== undefined);
    const text = overrides.text;
    return tree instanceof Promise ? tree.then((t) => new BoundTree(t, text)) : new BoundTree(tree, text);
  }

  /** Binds `service` through the router's own dtab only. */
  async bindBase(service: Path): Promise<NameTree<BoundName>> {
    return this.#bind(this.#o.dtab.get(), service);
  }

  #bind(dtab: Dtab, path: Path, override = false): NameTree<BoundName> | Promise<NameTree<BoundName>> {
    const key = override ? `${dtab.show()}\n${path.show()}` : path.show();
    const cache = override ? this.#overrideBindings : this.#bindings;
    let cached = cache.get(key);
    if (cached !== undefined && cached.dtab !== dtab && cached.dtab.show() !== dtab.show()) {
      // Bound through the router's earlier dtab: replaced by a binding through the current one.
      cache.delete(key);
      cached.binding.close();
      cached = undefined;
    }
    if (cached === undefined) {
      cached = { binding: this.#o.interpreter.bind(dtab, path, { budget: this.#o.budget }), dtab, lastUsed: 0 };
      cache.set(key, cached);
    }
    cached.lastUsed = this.#o.now();
    const state = cached.binding.state.get();
    if (state.kind === 'pending') return this.#waitBound(dtab, path, override, key, cached);
    return this.#settledTree(state, path, override, key, cached);
  }

  /** A binding still pending: waited for (bindingTimeoutMs) on this request's own reference. */
  async #waitBound(dtab: Dtab, path: Path, override: boolean, key: string, cached: CachedBinding): Promise<NameTree<BoundName>> {
    // This request's own reference: the cache may evict the entry while the request waits.
    const held = this.#o.interpreter.bind(dtab, path, { budget: this.#o.budget });
    const waitMs = this.#o.waitMs ?? BINDING_WAIT_MS;
    let state: Lookup;
    try {
      state = (await settled(held.state, waitMs)) ?? {
        kind: 'failed',
        error: new HostmeshError('TIMEOUT', `binding ${path.show()} did not resolve within ${waitMs} ms (bindingTimeoutMs)`),
      };
    } finally {
      held.close();
    }
    return this.#settledTree(state, path, override, key, cached);
  }

  /** The tree of a settled binding, or its failure thrown (a failed binding is not kept). */
  #settledTree(state: Lookup, path: Path, override: boolean, key: string, cached: CachedBinding): NameTree<BoundName> {
    const cache = override ? this.#overrideBindings : this.#bindings;
    if (state.kind !== 'ok' && cache.peek(key) === cached) {
      // A failure is not kept: the next request binds afresh (a refused namespace may have room by then).
      cache.delete(key);
      cached.binding.close();
    }
    if (state.kind === 'failed' && state.error instanceof HostmeshError && state.error.code === 'BINDING_OVER_BUDGET') {
      this.#o.events?.budgetExceeded(override ? 'override' : 'dtab');
      // The override is what made binding too costly: the client's request is at fault (400).
      if (override) throw new HostmeshError('OVERRIDE_OVER_BUDGET', `dtab override rejected: ${state.error.message}`);
    }
    if (state.kind === 'failed') {
      throw state.error instanceof HostmeshError ? state.error : new HostmeshError('BINDING_FAILED', state.error.message);
    }
    if (state.kind === 'pending') throw new HostmeshError('TIMEOUT', `binding ${path.show()} timed out`);
    return state.tree;
  }

  /** Every bound name of the cached bindings that resolved, by id (the admin's client state). */
  boundNames(): Map<string, BoundName> {
    const seen = new Map<string, BoundName>();
    const walk = (t: NameTree<BoundName>): void => {
      if (t.kind === 'leaf') seen.set(t.value.id.show(), t.value);
      else if (t.kind === 'alt') t.trees.forEach(walk);
      else if (t.kind === 'union') t.members.forEach((m) => walk(m.tree));
    };
    for (const c of [...this.#bindings.values(), ...this.#overrideBindings.values()]) {
      const s = c.binding.state.get();
      if (s.kind === 'ok') walk(s.tree);
    }
    return seen;
  }

  /** Drops cached bindings unused for idleTtl (on the injected clock); returns how many. */
  evictIdle(): number {
    const now = this.#o.now();
    let n = 0;
    for (const cache of [this.#bindings, this.#overrideBindings]) {
      // Every entry is looked at: the map's order is its eviction order, not the order of last use.
      for (const [key, c] of cache) {
        if (now - c.lastUsed < this.#o.limits.idleTtlMs) continue;
        cache.delete(key);
        c.binding.close();
        this.#o.events?.bindingEvicted('idle');
        n++;
      }
    }
    return n;
  }

  /** Bindings cached now (hostmesh_binding_cache_size). */
  get size(): number {
    return this.#bindings.size + this.#overrideBindings.size;
  }

  close(): void {
    for (const c of [...this.#bindings.values(), ...this.#overrideBindings.values()]) c.binding.close();
    this.#bindings.clear();
    this.#overrideBindings.clear();
  }
}
