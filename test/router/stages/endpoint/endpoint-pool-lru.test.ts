// The endpoint pools' least-recently-used order on its own: past client.maxEndpointPools the pool
// used longest ago (with nothing in flight) is the one closed, however often the newest one is
// used again in a row (the per-request path does not move it when it is already the newest).

import fc from 'fast-check';
import t from 'tap';
import type { Endpoint } from '../../../../src/namer/addr.js';
import { clientLimits, EndpointPools, type PoolEntry } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { ManualClock } from '../../../helpers/manual-clock.js';

const ep = (i: number): Endpoint => ({ host: '127.0.0.1', port: 20_000 + i, meta: {} });

t.test('uses in any order: the pool closed for capacity is always the least recently used', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 60, size: 'max' }), async (cap, uses) => {
      const closed: string[] = [];
      const pools = new EndpointPools(
        undefined,
        { limits: clientLimits({ maxEndpointPools: cap }), clock: new ManualClock() },
        { connect: () => undefined, disconnect: () => undefined, poolClosed: (reason) => closed.push(reason) },
      );
      // The reference: endpoints by last use, oldest first, and the pool each one has now.
      let order: number[] = [];
      const entries = new Map<number, PoolEntry>();
      let evicted = 0;
      try {
        for (const i of uses) {
          const entry = pools.get(ep(i));
          if (order.includes(i)) {
            if (entries.get(i) !== entry) return false; // kept open, not reopened
            order = order.filter((x) => x !== i);
          } else {
            if (order.length >= cap) {
              entries.delete(order.shift() as number);
              evicted++;
            }
            if ([...entries.values()].includes(entry)) return false; // a new pool
          }
          order.push(i);
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

t.test('the newest pool used again and again, then the others: the oldest goes', async (t) => {
  const pools = new EndpointPools(undefined, { limits: clientLimits({ maxEndpointPools: 2 }), clock: new ManualClock() });
  t.teardown(() => pools.close());
  const a = pools.get(ep(1));
  const b = pools.get(ep(2));
  pools.get(ep(1));
  pools.get(ep(1));
  pools.get(ep(2));
  pools.get(ep(3)); // past the cap: ep(1), used before ep(2) last, is closed
  t.equal(pools.get(ep(2)), b, 'the most recently used one stays');
  t.not(pools.get(ep(1)), a, 'the least recently used one was closed (a new pool now)');
});
