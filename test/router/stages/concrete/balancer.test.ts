import t from 'tap';
import { pickP2C, pickWeighted } from '../../../../src/router/stages/concrete/balancer.js';
import { EndpointPools } from '../../../../src/router/stages/endpoint/endpoint-pool.js';

t.test('p2c picks the less loaded of two random endpoints', async (t) => {
  const load = new Map([
    ['a', 5],
    ['b', 1],
    ['c', 9],
  ]);
  // random 0 -> index 0 ('a'); second draw 0.99 over the other two -> index 2 ('c'): a wins (5 < 9)
  const seq = [0, 0.99];
  t.equal(
    pickP2C(
      ['a', 'b', 'c'],
      (x) => load.get(x) ?? 0,
      () => seq.shift() ?? 0,
    ),
    'a',
  );
  const seq2 = [0, 0];
  // a vs b: b is less loaded
  t.equal(
    pickP2C(
      ['a', 'b', 'c'],
      (x) => load.get(x) ?? 0,
      () => seq2.shift() ?? 0,
    ),
    'b',
  );
  t.equal(
    pickP2C([], () => 0),
    undefined,
  );
  t.equal(
    pickP2C(['only'], () => 0),
    'only',
  );
});

/** Every pair of draws on a G x G grid of [0, 1), in order: a deterministic, uniform random source. */
function gridRandom(g: number): { random: () => number; draws: number } {
  const values: number[] = [];
  for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) values.push(i / g, j / g);
  let next = 0;
  return { random: () => values[next++] as number, draws: g * g };
}

t.test('p2c over a uniform random source: two distinct endpoints every time, each pair equally often', async (t) => {
  const { random, draws } = gridRandom(30);
  const pairs = new Map<string, number>();
  const picked = new Map<string, number>();
  let notTwoDistinct = 0;
  for (let i = 0; i < draws; i++) {
    const compared: string[] = [];
    const x = pickP2C(['a', 'b', 'c'], (e) => (compared.push(e), 0), random) as string;
    if (compared.length !== 2 || compared[0] === compared[1]) notTwoDistinct++;
    const key = [...compared].sort().join('');
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
    picked.set(x, (picked.get(x) ?? 0) + 1);
  }
  t.equal(notTwoDistinct, 0, `two distinct endpoints compared in all ${draws} choices`);
  t.same(Object.fromEntries(pairs), { ab: 300, ac: 300, bc: 300 }, 'each unordered pair a third of the time');
  t.same(Object.fromEntries(picked), { a: 300, b: 300, c: 300 }, 'equal loads: the load is spread evenly');
});

t.test('p2c over a uniform random source: the less loaded of each pair wins, so the busiest endpoint never does', async (t) => {
  const { random, draws } = gridRandom(30);
  const load = new Map([
    ['a', 5],
    ['b', 1],
    ['c', 9],
  ]);
  const picked = new Map<string, number>();
  for (let i = 0; i < draws; i++) {
    const x = pickP2C(['a', 'b', 'c'], (e) => load.get(e) ?? 0, random) as string;
    picked.set(x, (picked.get(x) ?? 0) + 1);
  }
  // b is in two of the three pairs and wins both; a wins only against c; c loses every pair.
  t.same(Object.fromEntries(picked), { b: 600, a: 300 });
});

t.test('weighted choice follows weights', async (t) => {
  t.equal(
    pickWeighted([1, 3], () => 0.2),
    0,
  );
  t.equal(
    pickWeighted([1, 3], () => 0.3),
    1,
  );
  t.equal(
    pickWeighted([0, 0], () => 0.5),
    0,
  );
});

t.test('EWMA cost: slower and busier endpoints cost more; latency decays back', async (t) => {
  const pools = new EndpointPools(undefined);
  t.teardown(() => pools.close());
  const fast = { host: '127.0.0.1', port: 1, meta: {} };
  const slow = { host: '127.0.0.1', port: 2, meta: {} };
  const f = pools.get(fast);
  const s = pools.get(slow);
  pools.observe(f, 5, 1000);
  pools.observe(s, 200, 1000);
  t.ok(pools.cost(slow) > pools.cost(fast), 'a slow endpoint costs more');
  t.equal(
    pickP2C(
      [fast, slow],
      (e) => pools.cost(e),
      () => 0.9,
    ),
    fast,
    'and p2c over EWMA cost avoids it',
  );
  f.inFlight = 100;
  t.ok(pools.cost(fast) > pools.cost(slow), 'a busy endpoint costs more even when fast');
  f.inFlight = 0;
  pools.observe(s, 5, 1000 + 60_000); // a minute later, fast again: the peak has decayed
  t.ok(s.ewmaMs < 10, `decayed to ${s.ewmaMs.toFixed(2)} ms`);
  pools.observe(s, 300, 1000 + 60_001);
  t.equal(s.ewmaMs, 300, 'a slower sample is taken at once (peak-sensitive)');
  t.equal(pools.cost({ host: '10.0.0.1', port: 9, meta: {} }), 0, 'an unmeasured endpoint is cheap, so it gets tried');
});
