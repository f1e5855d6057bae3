// The one bounded map of the process, for every cache keyed by request data (header dtabs, per-name
// settings, retry budgets, draining peers, idle names, ...). A key a client chose must never grow
// memory without bound: past `max` entries the oldest one is evicted. `get` refreshes an entry
// (least recently used order) unless the map is made with `order: 'insertion'` (first in, first
// out: a mark that must not be kept alive by being read).
//
// Every map has a name; the maps of one name (one per router, say) are counted together in
// `boundedMapStats()` (entries now, cap, evictions so far), which src/metrics/bounded-maps.ts exports.
// The registry holds maps weakly, so a map dropped with its owner leaves the stats.

export type EvictionReason = 'capacity' | 'deleted' | 'cleared';

export interface BoundedMapOptions<K, V> {
  /** A metric label: what the map caches (a short snake_case name, the same for every instance). */
  readonly name: string;
  /** Entries at most (at least 1). */
  readonly max: number;
  /** 'lru' (default): get() refreshes an entry. 'insertion': entries leave in the order they came. */
  readonly order?: 'lru' | 'insertion';
  /** Called when an entry leaves the map for capacity (not when replaced by set() or deleted). */
  readonly onEvict?: (key: K, value: V) => void;
}

/** No key: what BoundedMap's newest key is when it is not known (no key of a caller is this symbol). */
const NONE: unique symbol = Symbol('none');

export class BoundedMap<K, V> implements Iterable<[K, V]> {
  readonly name: string;
  readonly max: number;
  readonly #map = new Map<K, V>();
  readonly #lru: boolean;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;
  #evictions = 0;
  readonly #named: Named;
  /**
   * The key last set or refreshed, which is the newest entry while it is in the map: reading it
   * again needs no refresh (a hot key read per request would otherwise be deleted and re-added each
   * time, churning the table). NONE when unknown.
   */
  #newest: K | typeof NONE = NONE;

  constructor(options: BoundedMapOptions<K, V>) {
    this.name = options.name;
    this.max = Math.max(1, Math.floor(options.max));
    this.#lru = (options.order ?? 'lru') === 'lru';
    this.#onEvict = options.onEvict;
    this.#named = register(this as BoundedMap<unknown, unknown>);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Entries evicted for capacity since the map was made. */
  get evictions(): number {
    return this.#evictions;
  }

  /** The value of `key`, refreshed as most recently used (in an 'lru' map). */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined && this.#lru && key !== this.#newest) {
      this.#map.delete(key);
      this.#map.set(key, v);
      this.#newest = key;
    }
    return v;
  }

  /** The value of `key` without refreshing it. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Sets `key` (as the newest entry), then evicts the oldest entries past `max`. */
  set(key: K, value: V): this {
    this.#map.delete(key);
    this.#map.set(key, value);
    this.#newest = key;
    while (this.#map.size > this.max) {
      const [oldKey, oldValue] = this.#map.entries().next().value as [K, V];
      this.#map.delete(oldKey);
      this.#evictions++;
      this.#named.evictions++;
      this.#onEvict?.(oldKey, oldValue);
    }
    return this;
  }

  delete(key: K): boolean {
    if (key === this.#newest) this.#newest = NONE;
    return this.#map.delete(key);
  }

  clear(): void {
    this.#newest = NONE;
    this.#map.clear();
  }

  /** The oldest entry (the next to be evicted), if any. */
  oldest(): [K, V] | undefined {
    return this.#map.entries().next().value as [K, V] | undefined;
  }

  /** Oldest first. */
  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  /** Oldest first. */
  values(): IterableIterator<V> {
    return this.#map.values();
  }

  /** Oldest first. */
  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

/** The maps of one name, summed. */
export interface BoundedMapStats {
  readonly name: string;
  /** Live maps of this name. */
  readonly maps: number;
  /** Entries in them now. */
  readonly size: number;
  /** Their caps, summed. */
  readonly max: number;
  /** Entries evicted for capacity, since the process started (maps dropped since included). */
  readonly evictions: number;
}

interface Named {
  readonly live: Set<WeakRef<BoundedMap<unknown, unknown>>>;
  /** Evictions by every map of this name, ever (a counter: never goes down when a map is dropped). */
  evictions: number;
}

const registry = new Map<string, Named>();

function register(map: BoundedMap<unknown, unknown>): Named {
  let named = registry.get(map.name);
  if (named === undefined) {
    named = { live: new Set(), evictions: 0 };
    registry.set(map.name, named);
  }
  named.live.add(new WeakRef(map));
  return named;
}

/** Every name's maps, summed, sorted by name (the metrics module reads this at scrape time). */
export function boundedMapStats(): BoundedMapStats[] {
  const out: BoundedMapStats[] = [];
  for (const [name, named] of registry) {
    let maps = 0;
    let size = 0;
    let max = 0;
    for (const ref of named.live) {
      const m = ref.deref();
      if (m === undefined) {
        named.live.delete(ref);
        continue;
      }
      maps++;
      size += m.size;
      max += m.max;
    }
    out.push({ name, maps, size, max, evictions: named.evictions });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
