// The io.l5d.ingress identifier on real sockets: Linkerd 1's ingress-controller config starts
// against the test API server, and Ingress objects (networking.k8s.io/v1) created, updated and
// deleted there change where requests go. Hostile Ingresses (thousands of paths, huge strings) are
// refused, counted, and do not disturb the served ones.

import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { silentLogger } from '../../src/log.js';
import { startTextApp } from '../../src/demo/apps.js';
import { FakeApiServer, type KObject } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service } from '../helpers/k8s.js';
import { freePort } from '../helpers/ports.js';
import { request, type Reply } from '../helpers/http.js';
import { repoPath } from '../helpers/paths.js';

const FIXTURE = repoPath('test', 'fixtures', 'linkerd1', 'ingress-controller.yaml');
const env = { NODE_NAME: 'node-a' };

const api = await new FakeApiServer().start();
t.teardown(() => api.close());
const v1 = await startTextApp('web-v1', '127.0.0.1', 'web-v1');
const v2 = await startTextApp('web-v2', '127.0.0.1', 'web-v2');
t.teardown(() => v1.close());
t.teardown(() => v2.close());
for (const [name, app] of [
  ['web-v1', v1],
  ['web-v2', v2],
] as const) {
  api.apply(service('shop', name));
  api.apply(endpointSlice('shop', `${name}-1`, name, [{ ip: app.host, node: 'node-a' }], [{ name: 'http', port: app.port }]));
}

function ingress(name: string, spec: Record<string, unknown>, annotations?: Record<string, string>): KObject {
  return { kind: 'Ingress', metadata: { namespace: 'shop', name, ...(annotations ? { annotations } : {}) }, spec } as KObject;
}

const rule = (host: string, path: string, svc: string) => ({
  host,
  http: { paths: [{ path, pathType: 'Prefix', backend: { service: { name: svc, port: { name: 'http' } } } }] },
});

const port = await freePort('127.0.0.1');
const { config } = await loadConfig(FIXTURE, {
  set: ['admin.ip=127.0.0.1', 'admin.port=0', 'routers.0.servers.0.ip=127.0.0.1', `routers.0.servers.0.port=${port}`],
  env,
});
const namers = config.namers.map((n) => (n.kind === 'io.l5d.k8s' ? { ...n, host: '127.0.0.1', port: api.port, allowLoopbackEndpoints: true } : n));
const mesh: Hostmesh = await startHostmesh(
  { ...config, namers, identity: { ...(config.identity ?? { trustDomain: 'cluster.local' }), podWatch: false } },
  { logger: silentLogger(), env, k8sBackoff: { baseMs: 20, capMs: 200 } },
);
t.teardown(() => mesh.close(0));

const get = (host: string, path = '/'): Promise<Reply> =>
  request({ host: '127.0.0.1', port, path, headers: { host } }).then(
    (r) => ({ ...r, body: r.body.trim() }),
    (e: Error) => ({ status: 0, headers: {}, body: e.message }),
  );

/** Polls until the check holds (the watch delivers the change), with a ceiling far above need. */
async function settle(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

t.test('create, update, delete an Ingress: routing follows', async (t) => {
  t.ok(await settle(async () => (await get('shop.example.com')).status === 404), 'listed, no Ingress yet: 404');
  const first = await get('shop.example.com');
  t.match(first.body, /no ingress rule matches shop\.example\.com\//, 'the body says why');

  api.apply(ingress('web', { rules: [rule('shop.example.com', '/', 'web-v1')] }));
  t.ok(await settle(async () => (await get('shop.example.com', '/cart')).body === 'web-v1'), 'created: the host routes to web-v1');
  t.equal((await get('other.example.com')).status, 404, 'another host does not match');

  api.apply(ingress('web', { rules: [rule('shop.example.com', '/', 'web-v1'), rule('shop.example.com', '/v2', 'web-v2')] }));
  t.ok(await settle(async () => (await get('shop.example.com', '/v2/x')).body === 'web-v2'), 'updated: /v2 goes to web-v2');
  t.equal((await get('shop.example.com', '/v2x')).body, 'web-v1', 'Prefix is by path element');

  api.apply(ingress('web', { rules: [rule('shop.example.com', '/', 'web-v1')] }, { 'kubernetes.io/ingress.class': 'nginx' }));
  t.ok(await settle(async () => (await get('shop.example.com')).status === 404), "another controller's class: not served");

  api.apply(ingress('web', { rules: [rule('shop.example.com', '/', 'web-v1')] }, { 'kubernetes.io/ingress.class': 'linkerd' }));
  t.ok(await settle(async () => (await get('shop.example.com')).body === 'web-v1'), 'class linkerd: served');

  // A backend by Service port number: /svc/shop/80/web-v2; the io.l5d.k8s namer maps the Service's
  // port 80 to its targetPort (the container port named http).
  api.apply({
    kind: 'Service',
    metadata: { namespace: 'shop', name: 'web-v2' },
    spec: { ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  } as KObject);
  api.apply(
    ingress('web', {
      rules: [
        { host: 'num.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-v2', port: { number: 80 } } } }] } },
      ],
    }),
  );
  t.ok(await settle(async () => (await get('num.example.com')).body === 'web-v2'), 'a port number routes too');

  api.delete('Ingress', 'shop', 'web');
  t.ok(await settle(async () => (await get('num.example.com')).status === 404), 'deleted: 404 again');
});

t.test('hostile Ingresses are refused and counted; the served ones keep routing', async (t) => {
  api.apply(ingress('good', { rules: [rule('good.example.com', '/', 'web-v2')] }));
  const many = Array.from({ length: 3000 }, (_, i) => rule(`h${i}.example.com`, '/', 'web-v1'));
  api.apply(ingress('many', { rules: many }));
  api.apply(ingress('huge', { rules: [rule(`${'x'.repeat(200_000)}.example.com`, '/', 'web-v1')] }));
  api.apply(
    ingress('redos', {
      rules: [
        {
          host: 'redos.example.com',
          http: { paths: [{ path: '/(a+)+b', pathType: 'ImplementationSpecific', backend: { service: { name: 'web-v1', port: { name: 'http' } } } }] },
        },
      ],
    }),
  );
  const refused = async (): Promise<string> => mesh.metrics.registry.metrics();
  const counted = await settle(async () => {
    const m = await refused();
    return /hostmesh_ingress_refused_total\{router="http",reason="too_many_rules"\} 1/.test(m) && /reason="too_large"\} 1/.test(m);
  });
  t.ok(counted, 'too_many_rules and too_large are counted, without a request asking');
  t.equal((await get('good.example.com')).body, 'web-v2', 'the good Ingress routes');
  t.equal((await get('h7.example.com')).status, 404, 'nothing of the 3000-path Ingress is served');
  const start = process.hrtime.bigint();
  const evil = await get('redos.example.com', `/${'a'.repeat(1800)}c`);
  t.equal(evil.status, 404, "a catastrophic regex's worst subject does not match");
  t.ok(process.hrtime.bigint() - start < 5_000_000_000n, 'and is answered (the linear engine) rather than hanging the router');
  const m = await refused();
  t.match(m, /hostmesh_ingress_refused_total\{router="http",reason="too_many_rules"\} 1\n/, 'counted once, not per rebuild');
  t.match(m, /hostmesh_ingress_served\{router="http",what="rules"\} 2/, 'good and redos: 2 rules served');
});

t.test('past maxIngresses the watch keeps names only, and other classes take no slot', async (t) => {
  const { IngressSource } = await import('../../src/router/stages/identify/ingress.js');
  const { K8sClient } = await import('../../src/k8s/client.js');
  const { resolveConnection } = await import('../../src/k8s/connection.js');
  for (let i = 0; i < 5; i++)
    api.apply(ingress(`other-${i}`, { rules: [rule(`o${i}.example.com`, '/', 'web-v1')] }, { 'kubernetes.io/ingress.class': 'nginx' }));
  for (let i = 0; i < 5; i++) api.apply(ingress(`cap-${i}`, { rules: [rule(`c${i}.example.com`, '/', 'web-v1')] }));
  const refusals: string[] = [];
  const source = new IngressSource({
    client: new K8sClient(resolveConnection({ host: '127.0.0.1', port: api.port }), { connections: 2 }),
    namespace: 'shop',
    logger: silentLogger(),
    cls: 'linkerd',
    ignoreDefaultBackends: false,
    maxIngresses: 3,
    events: { ingressRefused: (r) => refusals.push(r), ingressServed: () => {} },
  }).start();
  t.teardown(() => source.stop());
  t.ok(await settle(async () => source.informer.synced && source.table.size === 3), 'three served');
  const held = source.informer.list().filter((p) => p.l5d.paths.length > 0).length;
  t.equal(held, 3, 'only three are held with their rules (the nginx ones and the rest as names)');
  t.ok(refusals.filter((r) => r === 'over_max_ingresses').length >= 2, 'the others are counted over_max_ingresses');
  t.notOk(refusals.includes('class'), "another class's Ingresses are not counted as refusals");
});
