// The one bounded map of the process, for every cache keyed by request data (header dtabs, per-name
// settings, retry budgets, draining peers, idle names, ...). A key a client chose must never grow
// memory without bound: past `max` entries one is evicted. In an 'lru' map (the default) a read
// gives an entry a second chance (the CLOCK approximation of least recently used): an entry read
// since it last came up is moved behind the others instead of evicted, so the entry evicted is one
// not read for a whole round of evictions. In an 'insertion' map entries leave in the order they
// came (first in, first out: a mark that must not be kept alive by being read).
//
// Why not an exact LRU: moving an entry on every read is a delete and a set on a JavaScript Map,
// whose table leaves a hole per delete and is rebuilt when the holes fill it; for a map that lives
// long, V8 builds the new table in the old generation, so every few reads of a hot cache left old-
// generation garbage behind and brought the full collections nearer (issue 28, session 12). Here a
// read only sets a flag: the table changes when entries come or go, and at evictions.
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
  /** 'lru' (default): a read gives an entry a second chance. 'insertion': entries leave in the order they came. */
  readonly order?: 'lru' | 'insertion';
  /** Called when an entry leaves the map for capacity (not when replaced by set() or deleted). */
  readonly onEvict?: (key: K, value: V) => void;
}

/** An entry: its value, and whether it was read or set again since it last came up for eviction. */
interface Slot<V> {
  value: V;
  used: boolean;
}

export class BoundedMap<K, V> implements Iterable<[K, V]> {
  readonly name: string;
  readonly max: number;
  readonly #map = new Map<K, Slot<V>>();
  readonly #lru: boolean;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;
  #evictions = 0;
  readonly #named: Named;

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

  /** The value of `key`, marked as read (in an 'lru' map: it gets a second chance at the next eviction). */
  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    if (this.#lru) slot.used = true;
    return slot.value;
  }

  /** The value of `key` without marking it read. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /**
   * Sets `key`. A new key goes behind the others, then entries are evicted past `max`. An existing
   * key keeps its place in an 'lru' map (marked as read) and goes behind the others in an
   * 'insertion' one (it came again).
   */
  set(key: K, value: V): this {
    const slot = this.#map.get(key);
    if (slot !== undefined && this.#lru) {
      slot.value = value;
      slot.used = true;
      return this;
    }
    if (slot !== undefined) this.#map.delete(key);
    this.#map.set(key, { value, used: false });
    while (this.#map.size > this.max) this.#evictOne(key);
    return this;
  }

  /**
   * Evicts the first entry not read since it last came up; the read ones it passes go behind,
   * unmarked. Never `kept`, the key just set: its caller is about to use the value (a binding, a
   * client's pools), which eviction would close under it. With every other entry read, the pass
   * goes round once, unmarking them, and takes the first of them.
   */
  #evictOne(kept: K): void {
    for (;;) {
      const [oldKey, slot] = this.#map.entries().next().value as [K, Slot<V>];
      if (slot.used || oldKey === kept) {
        slot.used = false;
        this.#map.delete(oldKey);
        this.#map.set(oldKey, slot);
        continue;
      }
      this.#map.delete(oldKey);
      this.#evictions++;
      this.#named.evictions++;
      this.#onEvict?.(oldKey, slot.value);
      return;
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  /** The entry eviction looks at first, if any. */
  oldest(): [K, V] | undefined {
    const first = this.#map.entries().next().value as [K, Slot<V>] | undefined;
    return first === undefined ? undefined : [first[0], first[1].value];
  }

  /** In eviction order (the first is looked at first): in an 'lru' map that is not the order of the last reads. */
  *keys(): IterableIterator<K> {
    yield* this.#map.keys();
  }

  /** In eviction order. */
  *values(): IterableIterator<V> {
    for (const slot of this.#map.values()) yield slot.value;
  }

  /** In eviction order. */
  *entries(): IterableIterator<[K, V]> {
    for (const [key, slot] of this.#map) yield [key, slot.value];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

/** How often at most refreshLast moves an entry last (ms): a map it keeps is least recently used first, to this. */
export const LRU_REFRESH_MS = 1000;

/**
 * For a Map kept least recently used first by hand (its entries carry their own last use, which
 * the caller updates to `now` after this): moves `key` last only when it was last used
 * LRU_REFRESH_MS or more before `now`. Moving it on every use (a delete and a set) makes the Map
 * rebuild its table every few uses, in the old generation for a map that lives long (issue 28,
 * session 12); a sweep by last use stays right to LRU_REFRESH_MS.
 */
export function refreshLast<K, V>(map: Map<K, V>, key: K, value: V, lastUsed: number, now: number): void {
  if (now - lastUsed < LRU_REFRESH_MS) return;
  map.delete(key);
  map.set(key, value);
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
