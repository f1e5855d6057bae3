// The bounded maps' metrics (src/core/bounded-map.ts): for every cache keyed by request data, the
// entries it holds, its cap and the entries it evicted, read at scrape time. Maps of one name (one
// per router, say) are summed: the name says what is cached.

import { Counter, Gauge, type Registry } from 'prom-client';
import { boundedMapStats } from '../core/bounded-map.js';

/** Registers hostmesh_bounded_map_entries, _capacity and _evictions_total on `registry`. */
export function registerBoundedMapMetrics(registry: Registry): void {
  const registers = [registry];
  new Gauge({
    name: 'hostmesh_bounded_map_entries',
    help: 'Entries held by the bounded caches keyed by request data (core/bounded-map.ts), by cache.',
    labelNames: ['map'],
    registers,
    collect() {
      this.reset();
      for (const s of boundedMapStats()) this.labels(s.name).set(s.size);
    },
  });
  new Gauge({
    name: 'hostmesh_bounded_map_capacity',
    help: 'Entries the bounded caches may hold (their caps, summed over the maps of a cache).',
    labelNames: ['map'],
    registers,
    collect() {
      this.reset();
      for (const s of boundedMapStats()) this.labels(s.name).set(s.max);
    },
  });
  // The maps count their evictions; the counter is brought up to that total at each scrape.
  const counted = new Map<string, number>();
  new Counter({
    name: 'hostmesh_bounded_map_evictions_total',
    help: 'Entries the bounded caches evicted for capacity (the least recently used, or the oldest), by cache.',
    labelNames: ['map'],
    registers,
    collect() {
      for (const s of boundedMapStats()) {
        const delta = s.evictions - (counted.get(s.name) ?? 0);
        counted.set(s.name, s.evictions);
        if (delta > 0) this.labels(s.name).inc(delta);
        else this.labels(s.name).inc(0);
      }
    },
  });
}
