// The endpoint pools' least-recently-used order on its own: past client.maxEndpointPools the pool
// used longest ago (with nothing in flight), to a second, is the one closed. A pool used again moves
// behind the others only when it was last used a second or more before: the per-request path does
// not rebuild the map's table on every request.

import fc from 'fast-check';
import t from 'tap';
import type { Endpoint } from '../../../../src/namer/addr.js';
import { clientLimits, EndpointPools, type PoolEntry } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { ManualClock } from '../../../helpers/manual-clock.js';

const ep = (i: number): Endpoint => ({ host: '127.0.0.1', port: 20_000 + i, meta: {} });

t.test('uses in any order, at any pace: the pool closed for capacity is the least recently used, to a second', async (t) => {
  const use = fc.record({ endpoint: fc.integer({ min: 0, max: 5 }), after: fc.constantFrom(0, 300, 999, 1000, 5000) });
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(use, { maxLength: 60, size: 'max' }), async (cap, uses) => {
      const closed: string[] = [];
      const clock = new ManualClock();
      const pools = new EndpointPools(
        undefined,
        { limits: clientLimits({ maxEndpointPools: cap }), clock },
        { connect: () => undefined, disconnect: () => undefined, poolClosed: (reason) => closed.push(reason) },
      );
      // The reference: endpoints in eviction order, when each was last used, and its pool now.
      let order: number[] = [];
      const lastUsed = new Map<number, number>();
      const entries = new Map<number, PoolEntry>();
      let evicted = 0;
      try {
        for (const { endpoint: i, after } of uses) {
          await clock.advance(after);
          const now = clock.now();
          const entry = pools.get(ep(i));
          if (order.includes(i)) {
            if (entries.get(i) !== entry) return false; // kept open, not reopened
            if (now - (lastUsed.get(i) as number) >= 1000) order = [...order.filter((x) => x !== i), i];
          } else {
            if (order.length >= cap) {
              const gone = order.shift() as number;
              entries.delete(gone);
              lastUsed.delete(gone);
              evicted++;
            }
            if ([...entries.values()].includes(entry)) return false; // a new pool
            order.push(i);
          }
          lastUsed.set(i, now);
          entries.set(i, entry);
          if (pools.size !== order.length) return false;
        }
        return closed.length === evicted;
      } finally {
        await pools.close();
      }
    }),
    { numRuns: 150 },
  );
  t.pass('fast-check found no counterexample');
});

t.test('a pool used again a second later goes behind the others; used again sooner, it keeps its place', async (t) => {
  const clock = new ManualClock();
  const pools = new EndpointPools(undefined, { limits: clientLimits({ maxEndpointPools: 2 }), clock });
  t.teardown(() => pools.close());
  const a = pools.get(ep(1));
  const b = pools.get(ep(2));
  await clock.advance(1000);
  pools.get(ep(1));
  pools.get(ep(1));
  pools.get(ep(2)); // ep(2) was used 1 s ago: it moves behind ep(1)
  pools.get(ep(3)); // past the cap: ep(1), now first, is closed
  t.equal(pools.get(ep(2)), b, 'the most recently used one stays');
  t.not(pools.get(ep(1)), a, 'the least recently used one was closed (a new pool now)');
});
