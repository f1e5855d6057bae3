import t from 'tap';
import { pickP2C, pickWeighted } from '../../src/router/balancer.js';
import { EndpointPools } from '../../src/router/endpoint-pool.js';

t.test('p2c picks the less loaded of two random endpoints', async (t) => {
  const load = new Map([['a', 5], ['b', 1], ['c', 9]]);
  // random 0 -> index 0 ('a'); second draw 0.99 over the other two -> index 2 ('c'): a wins (5 < 9)
  const seq = [0, 0.99];
  t.equal(pickP2C(['a', 'b', 'c'], (x) => load.get(x) ?? 0, () => seq.shift() ?? 0), 'a');
  const seq2 = [0, 0];
  // a vs b: b is less loaded
  t.equal(pickP2C(['a', 'b', 'c'], (x) => load.get(x) ?? 0, () => seq2.shift() ?? 0), 'b');
  t.equal(pickP2C([], () => 0), undefined);
  t.equal(pickP2C(['only'], () => 0), 'only');
});

t.test('p2c never picks the same index twice and spreads load', async (t) => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const x = pickP2C(['a', 'b', 'c'], () => 0) as string;
    counts.set(x, (counts.get(x) ?? 0) + 1);
  }
  for (const k of ['a', 'b', 'c']) t.ok((counts.get(k) ?? 0) > 500, `${k} chosen`);
});

t.test('weighted choice follows weights', async (t) => {
  t.equal(pickWeighted([1, 3], () => 0.2), 0);
  t.equal(pickWeighted([1, 3], () => 0.3), 1);
  t.equal(pickWeighted([0, 0], () => 0.5), 0);
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
  t.equal(pickP2C([fast, slow], (e) => pools.cost(e), () => 0.9), fast, 'and p2c over EWMA cost avoids it');
  f.inFlight = 100;
  t.ok(pools.cost(fast) > pools.cost(slow), 'a busy endpoint costs more even when fast');
  f.inFlight = 0;
  pools.observe(s, 5, 1000 + 60_000); // a minute later, fast again: the peak has decayed
  t.ok(s.ewmaMs < 10, `decayed to ${s.ewmaMs.toFixed(2)} ms`);
  pools.observe(s, 300, 1000 + 60_001);
  t.equal(s.ewmaMs, 300, 'a slower sample is taken at once (peak-sensitive)');
  t.equal(pools.cost({ host: '10.0.0.1', port: 9, meta: {} }), 0, 'an unmeasured endpoint is cheap, so it gets tried');
});
