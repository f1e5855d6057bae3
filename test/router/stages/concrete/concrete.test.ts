// The concrete stage alone (stages/concrete/concrete.ts) on fake endpoints: union weights with an injected
// random source, alt, neg/fail/empty, transformers' reasons, failure accrual's and draining filters, balancers.

import { clockWithNow } from '../../../../src/core/clock.js';
import t from 'tap';
import type { NameTree } from '../../../../src/dtab/name-tree.js';
import { Path } from '../../../../src/dtab/path.js';
import { parsePath } from '../../../../src/dtab/parse.js';
import { HostmeshError } from '../../../../src/errors.js';
import type { Addr, BoundName, Endpoint } from '../../../../src/namer/addr.js';
import { Var } from '../../../../src/namer/var.js';
import { DrainingPeers } from '../../../../src/router/stages/concrete/draining-peers.js';
import { EndpointPools, endpointKey } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { accrualKey, FailureAccrual } from '../../../../src/router/stages/concrete/failure-accrual.js';
import { type BalancerKind, ConcreteStage } from '../../../../src/router/stages/concrete/concrete.js';
import { localNode, type EndpointTransform } from '../../../../src/router/stages/concrete/transformers.js';

const ep = (port: number, nodeName = 'node-a'): Endpoint => ({ host: '10.1.0.1', port, meta: { nodeName } });

function name(id: string, addr: Addr): BoundName {
  return { id: parsePath(id), residual: Path.empty, addr: new Var(addr) };
}

const leaf = (n: BoundName): NameTree<BoundName> => ({ kind: 'leaf', value: n });
const bound = (id: string, ...endpoints: Endpoint[]): BoundName => name(id, { kind: 'bound', endpoints });

interface Harness {
  stage: ConcreteStage;
  pools: EndpointPools;
  accrual: FailureAccrual;
  draining: DrainingPeers;
  /** The next values the stage's random source returns (then 0). */
  draws: number[];
}

function harness(t: { teardown(fn: () => unknown): void }, options: { balancer?: BalancerKind; transforms?: EndpointTransform[] } = {}): Harness {
  const pools = new EndpointPools(undefined);
  t.teardown(() => pools.close());
  const accrual = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 1 }, backoff: { kind: 'constant', ms: 60_000 } },
    { clock: clockWithNow(() => 0) },
  );
  const draining = new DrainingPeers({ clock: clockWithNow(() => 0) });
  const draws: number[] = [];
  const stage = new ConcreteStage({
    transforms: options.transforms ?? [],
    pools,
    accrual,
    drainingPeers: draining,
    balancer: options.balancer,
    random: () => draws.shift() ?? 0,
  });
  return { stage, pools, accrual, draining, draws };
}

/** The catalog error choose() threw, as `CODE status: message`. */
function refusal(fn: () => unknown): string {
  try {
    fn();
    return 'chosen';
  } catch (err) {
    return err instanceof HostmeshError ? `${err.code} ${err.status}: ${err.message}` : `not a HostmeshError: ${String(err)}`;
  }
}

t.test('a union member is chosen by weight from the injected random source', async (t) => {
  const h = harness(t);
  const a = bound('/#/t/a', ep(1));
  const b = bound('/#/t/b', ep(2));
  const tree: NameTree<BoundName> = {
    kind: 'union',
    members: [
      { weight: 1, tree: leaf(a) },
      { weight: 3, tree: leaf(b) },
    ],
  };
  const counts = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    h.draws.push(i / 100);
    const c = h.stage.choose(tree, { service: '/svc/x' });
    counts.set(c.name.id.show(), (counts.get(c.name.id.show()) ?? 0) + 1);
  }
  t.same(Object.fromEntries(counts), { '/#/t/a': 25, '/#/t/b': 75 }, 'a uniform source over [0, 1) splits 1:3');
  h.draws.push(0.2499);
  t.equal(h.stage.choose(tree, {}).name.id.show(), '/#/t/a');
  h.draws.push(0.25);
  t.equal(h.stage.choose(tree, {}).name.id.show(), '/#/t/b', 'the boundary belongs to the next member');
});

t.test("an alternation takes its first branch; neg, fail and empty are the catalog's 502s", async (t) => {
  const h = harness(t);
  const a = bound('/#/t/a', ep(1));
  const b = bound('/#/t/b', ep(2));
  t.equal(h.stage.choose({ kind: 'alt', trees: [leaf(a), leaf(b)] }, {}).name, a);
  t.equal(
    refusal(() => h.stage.choose({ kind: 'neg' }, { service: '/svc/x' })),
    'NO_ROUTE 502: no route to /svc/x: the name does not bind (neg)',
  );
  t.equal(
    refusal(() => h.stage.choose({ kind: 'fail' }, { service: '/svc/x' })),
    'NO_ROUTE 502: no route to /svc/x: the dtab fails it',
  );
  t.equal(
    refusal(() => h.stage.choose({ kind: 'empty' }, { service: '/svc/x' })),
    'NO_ENDPOINTS 502: no endpoints for /svc/x: the name binds to an empty set',
  );
  t.equal(
    refusal(() => h.stage.choose({ kind: 'alt', trees: [] }, { service: '/svc/x' })),
    'NO_ROUTE 502: no route to /svc/x: the name does not bind (neg)',
  );
  t.equal(
    refusal(() => h.stage.choose({ kind: 'union', members: [{ weight: 1, tree: { kind: 'fail' } }] }, { service: '/svc/x' })),
    'NO_ROUTE 502: no route to /svc/x: the dtab fails it',
    'a union member is walked down like any tree',
  );
});

t.test('a bound name without endpoints: NO_ENDPOINTS naming the client, BINDING_FAILED for a failed address', async (t) => {
  const h = harness(t);
  t.equal(
    refusal(() => h.stage.choose(leaf(bound('/#/t/a')), { service: '/svc/x' })),
    'NO_ENDPOINTS 502: no endpoints for /svc/x at /#/t/a',
  );
  t.equal(
    refusal(() => h.stage.choose(leaf(name('/#/t/a', { kind: 'pending' })), { service: '/svc/x' })),
    'NO_ENDPOINTS 502: no endpoints for /svc/x at /#/t/a',
  );
  t.equal(
    refusal(() => h.stage.choose(leaf(name('/#/t/a', { kind: 'failed', error: new Error('api server said 500') })), { service: '/svc/x' })),
    'BINDING_FAILED 502: /#/t/a: api server said 500',
  );
  t.same(h.stage.choose(leaf(bound('/#/t/a', ep(1))), {}).another(new Set()), ep(1), 'another() of a one-endpoint name is that endpoint');
});

t.test('a transformer that leaves nothing says why in NO_ENDPOINTS; the first reason is kept', async (t) => {
  const h = harness(t, { transforms: [localNode('node-a'), () => ({ endpoints: [], why: 'a later reason' })] });
  const n = bound('/#/t/web', ep(1, 'node-b'), ep(2, 'node-c'));
  t.equal(
    refusal(() => h.stage.choose(leaf(n), { service: '/svc/web' })),
    'NO_ENDPOINTS 502: no endpoints for /svc/web at /#/t/web: none of 2 endpoints is on node node-a',
  );
  const kept = harness(t, { transforms: [localNode('node-a')] });
  const mixed = bound('/#/t/web', ep(1, 'node-b'), ep(2, 'node-a'));
  for (let i = 0; i < 5; i++) t.same(kept.stage.choose(leaf(mixed), {}).endpoint, ep(2, 'node-a'), 'only the local endpoint is chosen');
});

t.test('failure accrual: dead endpoints are skipped unless every endpoint is dead', async (t) => {
  const h = harness(t);
  const [e1, e2, e3] = [ep(1), ep(2), ep(3)];
  const n = bound('/#/t/a', e1, e2, e3);
  h.accrual.record(accrualKey('/#/t/a', endpointKey(e1)), false);
  t.equal(h.accrual.deadCount, 1);
  const chosen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    h.draws.push(i / 30, (i * 7) / 30 - Math.floor((i * 7) / 30));
    const c = h.stage.choose(leaf(n), {});
    chosen.add(endpointKey(c.endpoint));
    t.not(c.another(new Set())?.port, 1, 'another() skips it too');
  }
  t.same([...chosen].sort(), ['10.1.0.1:2', '10.1.0.1:3'], 'the dead endpoint is never chosen');
  // Accrual is per client: another bound name with the same endpoint still uses it.
  t.equal(endpointKey(h.stage.choose(leaf(bound('/#/t/other', e1)), {}).endpoint), '10.1.0.1:1');

  h.accrual.record(accrualKey('/#/t/a', endpointKey(e2)), false);
  h.accrual.record(accrualKey('/#/t/a', endpointKey(e3)), false);
  const all = new Set<string>();
  for (let i = 0; i < 30; i++) {
    h.draws.push(i / 30, 0.5);
    all.add(endpointKey(h.stage.choose(leaf(n), {}).endpoint));
  }
  t.equal(all.size, 3, 'all dead: every endpoint may be chosen again rather than a 502');
});

t.test('draining peers are skipped after dead ones, unless every one is draining', async (t) => {
  const h = harness(t);
  const [e1, e2] = [ep(1), ep(2)];
  const n = bound('/#/t/a', e1, e2);
  h.draining.mark(endpointKey(e1));
  for (let i = 0; i < 10; i++) {
    h.draws.push(i / 10, 0.3);
    t.same(h.stage.choose(leaf(n), {}).endpoint, e2);
  }
  h.draining.mark(endpointKey(e2));
  t.ok(h.stage.choose(leaf(n), {}).endpoint, 'both draining: one is still chosen');
  h.accrual.record(accrualKey('/#/t/a', endpointKey(e2)), false);
  h.draining.clear(endpointKey(e2));
  t.same(h.stage.choose(leaf(n), {}).endpoint, e1, 'draining e1 is preferred to dead e2');
});

t.test('another() excludes the endpoints tried, and is undefined once all were', async (t) => {
  const h = harness(t);
  const [e1, e2, e3] = [ep(1), ep(2), ep(3)];
  const c = h.stage.choose(leaf(bound('/#/t/a', e1, e2, e3)), {});
  const tried = new Set([endpointKey(e1), endpointKey(e2)]);
  for (let i = 0; i < 10; i++) {
    h.draws.push(i / 10);
    t.same(c.another(tried), e3);
  }
  tried.add(endpointKey(e3));
  t.equal(c.another(tried), undefined, 'nothing left: the caller answers with what it has');
  // A name whose endpoints changed since the choice: another() reads the current set.
  const v = bound('/#/t/b', e1);
  const cv = h.stage.choose(leaf(v), {});
  (v.addr as Var<Addr>).set({ kind: 'bound', endpoints: [e1, e2] });
  t.same(cv.another(new Set([endpointKey(e1)])), e2, 'a new endpoint is a candidate');
  (v.addr as Var<Addr>).set({ kind: 'failed', error: new Error('gone') });
  t.equal(cv.another(new Set()), undefined, 'a failed address: no other endpoint, no throw');
});

t.test('round robin rotates through the endpoints in order', async (t) => {
  const h = harness(t, { balancer: 'roundRobin' });
  const n = bound('/#/t/a', ep(1), ep(2), ep(3));
  const order = Array.from({ length: 7 }, () => h.stage.choose(leaf(n), {}).endpoint.port);
  t.same(order, [1, 2, 3, 1, 2, 3, 1]);
});

t.test('round robin rotates per client: two services interleaved each still visit every endpoint', async (t) => {
  const h = harness(t, { balancer: 'roundRobin' });
  const a = bound('/#/t/a', ep(1), ep(2));
  const b = bound('/#/t/b', ep(3), ep(4));
  const seenA = new Set<number>();
  for (let i = 0; i < 6; i++) {
    seenA.add(h.stage.choose(leaf(a), {}).endpoint.port);
    h.stage.choose(leaf(b), {});
  }
  t.same([...seenA].sort(), [1, 2], "client a's requests reach both of its endpoints");
});

t.test("p2c picks the less loaded of two draws by the pools' in-flight counts", async (t) => {
  const h = harness(t);
  const [e1, e2, e3] = [ep(1), ep(2), ep(3)];
  const n = bound('/#/t/a', e1, e2, e3);
  h.pools.get(e1).inFlight = 5;
  h.pools.get(e2).inFlight = 1;
  h.draws.push(0, 0); // draws e1, then e2 of the other two
  t.same(h.stage.choose(leaf(n), {}).endpoint, e2, 'e2 (1 in flight) over e1 (5)');
  h.draws.push(0, 0.99); // e1 and e3: e3 has none in flight
  t.same(h.stage.choose(leaf(n), {}).endpoint, e3);
  h.pools.get(e2).inFlight = 9;
  h.draws.push(0.5, 0); // e2 and e1
  t.same(h.stage.choose(leaf(n), {}).endpoint, e1, 'load is read at each choice');
  h.pools.get(e1).inFlight = 0;
  h.pools.get(e2).inFlight = 0;
});
