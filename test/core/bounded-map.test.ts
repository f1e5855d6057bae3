// The one bounded map (src/core/bounded-map.ts): never above its cap whatever the operations,
// evicts as CLOCK does (a read entry gets a second chance; in insertion order, the oldest set goes),
// reports what it evicted, and its size and evictions reach /metrics through the registry.

import fc from 'fast-check';
import t from 'tap';
import { BoundedMap, boundedMapStats } from '../../src/core/bounded-map.js';
import { Metrics } from '../../src/metrics/metrics.js';

type Op =
  | { kind: 'set'; key: number; value: number }
  | { kind: 'get'; key: number }
  | { kind: 'delete'; key: number }
  | { kind: 'peek'; key: number }
  | { kind: 'clear' };

/** Keys: mostly a few (so reads and sets meet the entries there, and a hot key is read again), some more. */
const key = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 20 }));

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: key, value: fc.integer() }),
  fc.record({ kind: fc.constant('get' as const), key: key }),
  fc.record({ kind: fc.constant('peek' as const), key: key }),
  fc.record({ kind: fc.constant('delete' as const), key: key }),
  fc.record({ kind: fc.constant('clear' as const) }),
);

/**
 * The reference: an array of [key, value, read], in eviction order. An insertion-order map evicts
 * from the front; an lru one gives a read entry a second chance (CLOCK): it goes to the back,
 * unmarked, and the first unread one is evicted.
 */
function model(max: number, lru: boolean) {
  let entries: [number, number, boolean][] = [];
  const evicted: number[] = [];
  return {
    entries: () => entries.map(([k, v]) => [k, v]),
    evicted,
    apply(o: Op): number | undefined {
      if (o.kind === 'clear') {
        entries = [];
        return undefined;
      }
      const i = entries.findIndex(([k]) => k === o.key);
      switch (o.kind) {
        case 'set':
          if (i >= 0 && lru) {
            entries[i] = [o.key, o.value, true];
            return undefined;
          }
          if (i >= 0) entries.splice(i, 1);
          entries.push([o.key, o.value, false]);
          while (entries.length > max) {
            const first = entries.shift() as [number, number, boolean];
            if (first[2] || first[0] === o.key) entries.push([first[0], first[1], false]);
            else evicted.push(first[0]);
          }
          return undefined;
        case 'get': {
          if (i < 0) return undefined;
          const e = entries[i] as [number, number, boolean];
          if (lru) e[2] = true;
          return e[1];
        }
        case 'peek':
          return i < 0 ? undefined : (entries[i] as [number, number, boolean])[1];
        case 'delete':
          if (i >= 0) entries = entries.filter(([k]) => k !== o.key);
          return undefined;
      }
    },
  };
}

for (const order of ['lru', 'insertion'] as const) {
  t.test(`${order}: never above its cap, and it evicts and answers exactly as the reference does`, async (t) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200, size: 'max' }), (max, ops) => {
        const evicted: number[] = [];
        const m = new BoundedMap<number, number>({ name: 'test_property', max, order, onEvict: (k) => evicted.push(k) });
        const ref = model(max, order === 'lru');
        for (const o of ops) {
          const want = ref.apply(o);
          const got =
            o.kind === 'set'
              ? (m.set(o.key, o.value), undefined)
              : o.kind === 'get'
                ? m.get(o.key)
                : o.kind === 'peek'
                  ? m.peek(o.key)
                  : o.kind === 'delete'
                    ? (m.delete(o.key), undefined)
                    : (m.clear(), undefined);
          if (got !== want) return false;
          if (m.size > max) return false;
        }
        return (
          JSON.stringify([...m.entries()]) === JSON.stringify(ref.entries()) &&
          JSON.stringify(evicted) === JSON.stringify(ref.evicted) &&
          m.evictions === ref.evicted.length
        );
      }),
      { numRuns: 300 },
    );
    t.pass('fast-check found no counterexample');
  });
}

t.test('a read keeps an entry in an lru map, not in an insertion-order one', async (t) => {
  const lru = new BoundedMap<string, number>({ name: 'test_examples', max: 2 });
  lru.set('a', 1).set('b', 2);
  lru.get('a');
  lru.set('c', 3);
  t.same([...lru.keys()].sort(), ['a', 'c'], 'b, not read, went; a, read, stayed');
  lru.set('d', 4);
  t.same([...lru.keys()].sort(), ['a', 'd'], 'then c, the one not read since it came');
  lru.set('e', 5);
  t.same([...lru.keys()].sort(), ['d', 'e'], "a's read was spent on its second chance: not read again, it goes next");
  const fifo = new BoundedMap<string, number>({ name: 'test_examples', max: 2, order: 'insertion' });
  fifo.set('a', 1).set('b', 2);
  fifo.get('a');
  fifo.set('c', 3);
  t.same([...fifo.keys()], ['b', 'c'], 'a, the oldest set, went although it was read');
  t.equal(new BoundedMap({ name: 'test_examples', max: 0 }).max, 1, 'a cap below one is one');
});

t.test('hot entries read between the sets of a flood of new keys stay; reads do not reorder the map', async (t) => {
  const m = new BoundedMap<string, number>({ name: 'test_examples', max: 10 });
  for (let h = 0; h < 5; h++) m.set(`hot-${h}`, h);
  const order = [...m.keys()];
  for (let h = 0; h < 5; h++) for (let r = 0; r < 3; r++) m.get(`hot-${h}`);
  t.same([...m.keys()], order, 'reads only mark entries');
  for (let i = 0; i < 1000; i++) {
    m.set(`flood-${i}`, i);
    if (i % 4 === 0) for (let h = 0; h < 5; h++) m.get(`hot-${h}`);
  }
  t.equal(m.size, 10);
  for (let h = 0; h < 5; h++) t.equal(m.peek(`hot-${h}`), h, `hot-${h} is still cached`);
  t.equal(m.evictions, 995, 'only flood keys went');
});

t.test('the key just set is never the one evicted, even when every other entry was read', async (t) => {
  for (const max of [1, 2, 5]) {
    const evicted: string[] = [];
    const m = new BoundedMap<string, number>({ name: 'test_examples', max, onEvict: (k) => evicted.push(k) });
    for (let i = 0; i < max; i++) m.set(`old-${i}`, i);
    for (let i = 0; i < max; i++) m.get(`old-${i}`);
    m.set('new', 99);
    t.equal(m.peek('new'), 99, `max ${max}: the new entry is there for its caller`);
    t.same(evicted, ['old-0'], `max ${max}: an old one went, after its second chance`);
    t.equal(m.size, max);
  }
});

t.test("a flood of distinct keys costs the cap, and /metrics shows the cache's size and evictions", async (t) => {
  const metrics = new Metrics();
  const m = new BoundedMap<string, number>({ name: 'test_flood', max: 100 });
  for (let i = 0; i < 10_000; i++) m.set(`/svc/attacker-${i}`, i);
  t.equal(m.size, 100);
  t.equal(m.evictions, 9_900);
  const stats = boundedMapStats().find((s) => s.name === 'test_flood');
  t.match(stats, { maps: 1, size: 100, max: 100, evictions: 9_900 });
  const text = await metrics.registry.metrics();
  t.match(text, /hostmesh_bounded_map_entries\{map="test_flood"\} 100\n/);
  t.match(text, /hostmesh_bounded_map_capacity\{map="test_flood"\} 100\n/);
  t.match(text, /hostmesh_bounded_map_evictions_total\{map="test_flood"\} 9900\n/);
  for (let i = 0; i < 50; i++) m.set(`/svc/more-${i}`, i);
  t.match(await metrics.registry.metrics(), /hostmesh_bounded_map_evictions_total\{map="test_flood"\} 9950\n/, 'the counter follows');
});
