import t from 'tap';
import { daemonSet, hostFilter, localNode, portTransform, replaceTransform } from '../../../../src/router/stages/concrete/transformers.js';
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

t.test('io.l5d.replace / io.l5d.const replace any destination; nothing stays nothing', async (t) => {
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
