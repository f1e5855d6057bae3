// The io.l5d.k8s namer against the test API server: pending until the first list, one shared
// watch per namespace and kind, residual paths, labelSelector, v1 Endpoints, and /ready of a
// whole router waiting for the first sync.

import t, { type Test } from 'tap';
import { K8sClient } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { Path } from '../../src/dtab/path.js';
import type { Addr, Lookup } from '../../src/namer/addr.js';
import { K8sNamer, type K8sNamerOptions } from '../../src/namer/k8s/k8s-namer.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service, until } from '../helpers/k8s.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';

async function setup(t: Test, options: Partial<K8sNamerOptions> = {}) {
  const api = await new FakeApiServer().start();
  const namer = new K8sNamer({
    client: new K8sClient(plainConnection('127.0.0.1', api.port)),
    logger: silentLogger(),
    backoff: { baseMs: 20, capMs: 200 },
    ...options,
  });
  t.teardown(async () => {
    await namer.close();
    await api.close();
  });
  return { api, namer };
}

const p = (s: string): Path => new Path(s.split('/').filter(Boolean));

function addrOf(l: Lookup): Addr | undefined {
  return l.kind === 'ok' && l.tree.kind === 'leaf' ? l.tree.value.addr.get() : undefined;
}
const hostsOf = (l: Lookup): string[] => {
  const a = addrOf(l);
  return a?.kind === 'bound' ? a.endpoints.map((e) => `${e.host}:${e.port}`).sort() : [];
};
const isNeg = (l: Lookup): boolean => l.kind === 'ok' && l.tree.kind === 'neg';

t.test('pending until the first list, then bound or neg; one watch per kind and namespace', async (t) => {
  const { api, namer } = await setup(t);
  api.setDelay(300);
  api.apply(service('default', 'world'));
  api.apply(endpointSlice('default', 'world-1', 'world', [{ ip: '10.0.0.1', node: 'n1' }]));
  const world = namer.lookup(p('default/http/world'));
  const missing = namer.lookup(p('default/http/nobody'));
  t.equal(world.get().kind, 'pending', 'pending while the API has not answered');
  t.notOk(namer.synced);
  api.setDelay(0);
  t.ok(await until(() => hostsOf(world.get()).length === 1), 'bound after the list');
  t.same(hostsOf(world.get()), ['10.0.0.1:8080']);
  t.ok(isNeg(missing.get()), 'a missing Service is neg');
  t.ok(namer.synced);
  for (let i = 0; i < 5; i++) namer.lookup(p(`default/http/svc-${i}`));
  namer.lookup(p('DEFAULT/HTTP/WORLD'));
  t.ok(await until(() => api.watchCount === 2), 'services + endpointslices watched once for the namespace');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(api.watchCount, 2, 'no watch per name');
  t.match(JSON.stringify(namer.state()), /endpointslices/, 'state lists the watches');
});

t.test('a residual path is kept; the bound id is the namer path', async (t) => {
  const { api, namer } = await setup(t);
  api.apply(service('default', 'world'));
  api.apply(endpointSlice('default', 'world-1', 'world', [{ ip: '10.0.0.1' }]));
  const v = namer.lookup(p('default/http/world/extra/bits'));
  t.ok(await until(() => addrOf(v.get())?.kind === 'bound'));
  const l = v.get();
  if (l.kind === 'ok' && l.tree.kind === 'leaf') {
    t.equal(l.tree.value.id.show(), '/#/io.l5d.k8s/default/http/world');
    t.equal(l.tree.value.residual.show(), '/extra/bits');
  } else t.fail('not a leaf');
  t.ok(isNeg(namer.lookup(p('default/http')).get()), 'too short a path is neg');
});

t.test('labelSelector: a 4th segment selects by label value', async (t) => {
  const { api, namer } = await setup(t, { labelSelector: 'version' });
  api.apply(service('default', 'world'));
  const s = endpointSlice('default', 'world-1', 'world', [{ ip: '10.0.0.1' }]);
  s.metadata.labels = { ...s.metadata.labels, version: 'v1' };
  api.apply(s);
  const v1 = namer.lookup(p('default/http/world/v1'));
  const v2 = namer.lookup(p('default/http/world/v2'));
  t.ok(await until(() => hostsOf(v1.get()).length === 1), 'v1 bound');
  t.ok(isNeg(v2.get()), 'v2 neg');
});

t.test('api: endpoints reads v1 Endpoints', async (t) => {
  const { api, namer } = await setup(t, { api: 'endpoints' });
  api.apply(service('default', 'world'));
  api.apply({
    kind: 'Endpoints',
    metadata: { namespace: 'default', name: 'world' },
    subsets: [{ addresses: [{ ip: '10.0.0.7', nodeName: 'n1' }], notReadyAddresses: [{ ip: '10.0.0.8' }], ports: [{ name: 'http', port: 8080 }] }],
  });
  const v = namer.lookup(p('default/http/world'));
  t.ok(await until(() => hostsOf(v.get()).length === 1));
  t.same(hostsOf(v.get()), ['10.0.0.7:8080'], 'notReadyAddresses are not used');
  api.apply({ kind: 'Endpoints', metadata: { namespace: 'default', name: 'world' }, subsets: [] });
  t.ok(await until(() => isNeg(v.get())), 'no subsets: neg');
});

t.test('/ready is 503 until the namer has listed, then 200', async (t) => {
  const api = await new FakeApiServer().start();
  api.setDown(true);
  const [port, admin] = (await freePorts('127.0.0.1', 2)) as [number, number];
  const hm = await startHostmesh(
    {
      admin: { ip: '127.0.0.1', port: admin, allowRemoteShutdown: false },
      namers: [{ kind: 'io.l5d.k8s', prefix: '/io.l5d.k8s', host: '127.0.0.1', port: api.port }],
      routers: [
        {
          protocol: 'http',
          label: 'outgoing',
          dtab: '/svc => /#/io.l5d.k8s/default/http;',
          identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
          transformers: [{ kind: 'io.l5d.k8s.daemonset', namespace: 'hostmesh', port: 'incoming', service: 'hostmesh' }],
          servers: [{ ip: '127.0.0.1', port }],
          client: { loadBalancer: { kind: 'p2c' } },
          maxHops: 64,
        },
      ],
      shutdownGraceMs: 100,
      baseDir: process.cwd(),
    },
    { logger: silentLogger(), k8sBackoff: { baseMs: 20, capMs: 200 } },
  );
  t.teardown(async () => {
    await hm.close(100);
    await api.close();
  });
  const ready = async (): Promise<number> => (await request({ host: '127.0.0.1', port: admin, path: '/ready' })).status;
  t.equal(await ready(), 503, 'not ready while the API is unreachable');
  api.setDown(false);
  let status = 0;
  for (let i = 0; i < 200 && status !== 200; i++) {
    status = await ready();
    if (status !== 200) await new Promise((r) => setTimeout(r, 25));
  }
  t.equal(status, 200, 'ready once synced');
});
