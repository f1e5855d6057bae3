import fc from 'fast-check';
import t from 'tap';
import { constTransform, daemonSet, hostFilter, localNode, portTransform, replaceTransform } from '../../../../src/router/stages/concrete/transformers.js';
import type { Endpoint } from '../../../../src/namer/addr.js';

const ep = (host: string, port: number, nodeName?: string): Endpoint => ({ host, port, meta: nodeName ? { nodeName } : {} });

t.test('localnode keeps only this node, by name, even within one /24', async (t) => {
  const all = [ep('10.0.0.5', 80, 'a'), ep('10.0.0.6', 80, 'b'), ep('10.0.0.7', 80, 'a')];
  t.same(
    localNode('a')(all).endpoints.map((e) => e.host),
    ['10.0.0.5', '10.0.0.7'],
  );
  const none = localNode('c')(all);
  t.same(none.endpoints, []);
  t.match(none.why, /node c/);
});

t.test('daemonset maps destinations to the router on their node', async (t) => {
  const routers = [ep('192.168.1.1', 4141, 'a'), ep('192.168.1.2', 4141, 'b')];
  const tr = daemonSet(() => routers);
  const r = tr([ep('10.0.0.5', 80, 'b'), ep('10.0.0.6', 80, 'b')]);
  t.same(r.endpoints, [routers[1]], 'deduplicated, node b only');
  const missing = tr([ep('10.0.0.9', 80, 'z')]);
  t.same(missing.endpoints, []);
  t.match(missing.why, /node\(s\) z/);
});

t.test('io.l5d.port sends to the same hosts on another port', async (t) => {
  const r = portTransform(4141)([ep('10.0.0.5', 80, 'a'), ep('10.0.0.6', 8080)]);
  t.same(
    r.endpoints.map((e) => `${e.host}:${e.port}`),
    ['10.0.0.5:4141', '10.0.0.6:4141'],
  );
  t.equal(r.endpoints[0]?.meta.nodeName, 'a', 'metadata is kept');
});

t.test('io.l5d.const is its set whatever the destination, empty included (Linkerd 1: it ignores the input)', async (t) => {
  const tr = constTransform(() => [ep('127.0.0.1', 4141)]);
  t.same(tr([ep('10.0.0.5', 80)]).endpoints, [ep('127.0.0.1', 4141)]);
  t.same(tr([]).endpoints, [ep('127.0.0.1', 4141)], 'an empty destination gets it too (replace keeps it empty)');
  t.match(constTransform(() => [])([ep('10.0.0.5', 80)]).why, /constant set is empty/);
});

t.test('io.l5d.replace replaces any destination; nothing stays nothing', async (t) => {
  let current = [ep('127.0.0.1', 4141)];
  const tr = replaceTransform(() => current);
  t.same(tr([ep('10.0.0.5', 80), ep('10.0.0.6', 80)]).endpoints, current);
  t.same(tr([]).endpoints, [], 'an empty destination stays empty');
  current = [];
  const r = tr([ep('10.0.0.5', 80)]);
  t.same(r.endpoints, []);
  t.match(r.why, /replacement set is empty/);
  current = [ep('127.0.0.9', 1), ep('127.0.0.10', 2)];
  t.same(tr([ep('10.0.0.5', 80)]).endpoints.length, 2, 'the replacement is read per request (live)');
});

t.test('io.l5d.localhost / specificHost keep endpoints on the given hosts', async (t) => {
  const tr = hostFilter(['10.0.0.5', '127.0.0.1'], 'this host');
  t.same(
    tr([ep('10.0.0.5', 80), ep('10.0.0.6', 80), ep('127.0.0.1', 81)]).endpoints.map((e) => e.port),
    [80, 81],
  );
  const none = tr([ep('10.9.9.9', 80)]);
  t.same(none.endpoints, []);
  t.match(none.why, /on this host/);
});

t.test('daemonset asked again for the same destinations follows the routers as they change', async (t) => {
  let routers = [ep('192.168.1.1', 4141, 'a')];
  const tr = daemonSet(() => routers);
  const dests = [ep('10.0.0.5', 80, 'a'), ep('10.0.0.6', 80, 'b')];
  const first = tr(dests);
  t.same(first.endpoints, routers);
  t.equal(tr(dests), first, 'the same routers: the answer made for these destinations is reused');
  routers = [...routers, ep('192.168.1.2', 4141, 'b')];
  t.same(tr(dests).endpoints, routers, "node b's router, once it is known");
  routers = [ep('192.168.1.9', 4141, 'a')];
  t.same(tr(dests).endpoints, routers, 'a router replaced on node a');
  routers = [];
  t.match(tr(dests).why, /node\(s\) a, b/, 'no router left');
});

t.test('daemonset: any sequence of routers and destinations answers as a fresh transform would', async (t) => {
  const pool = [ep('192.168.1.1', 4141, 'a'), ep('192.168.1.2', 4141, 'b'), ep('192.168.1.3', 4141, 'b'), ep('192.168.1.4', 4141)];
  const destSets = [[ep('10.0.0.5', 80, 'a')], [ep('10.0.0.6', 80, 'b'), ep('10.0.0.7', 80, 'a')], [ep('10.0.0.8', 80, 'c')], []];
  const step = fc.record({ routers: fc.subarray(pool), dests: fc.nat(destSets.length - 1) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 30, size: 'max' }), (steps) => {
      let routers: Endpoint[] = [];
      const kept = daemonSet(() => routers);
      for (const s of steps) {
        // A new array when the set changes (as the binding's walk makes one per call), the same items.
        routers = [...s.routers];
        const dests = destSets[s.dests] as Endpoint[];
        const got = kept(dests);
        const want = daemonSet(() => routers)(dests);
        if (JSON.stringify(got) !== JSON.stringify(want)) return false;
      }
      return true;
    }),
  );
  t.pass('fast-check found no counterexample');
});
