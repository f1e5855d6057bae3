import t from 'tap';
import { daemonSet, localNode } from '../../src/router/transformers.js';
import type { Endpoint } from '../../src/namer/addr.js';

const ep = (host: string, port: number, nodeName?: string): Endpoint => ({ host, port, meta: nodeName ? { nodeName } : {} });

t.test('localnode keeps only this node, by name, even within one /24', async (t) => {
  const all = [ep('10.0.0.5', 80, 'a'), ep('10.0.0.6', 80, 'b'), ep('10.0.0.7', 80, 'a')];
  t.same(localNode('a')(all).endpoints.map((e) => e.host), ['10.0.0.5', '10.0.0.7']);
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
