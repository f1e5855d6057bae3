// Linkerd 1's namerd interpreters (io.l5d.namerd, io.l5d.namerd.http, io.l5d.mesh): the router's
// dtab is the one namerd keeps in Kubernetes (dtabs.l5d.io, namerd's io.l5d.k8s storage), read at
// start and followed live, bound with the router's own namers. A missing dtab fails the start (never
// a router that answers 502 to everything); a broken new version is refused and the old one stays.

import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { silentLogger } from '../../src/log.js';
import { startTextApp } from '../../src/demo/apps.js';
import { FakeApiServer, type KObject } from '../fixtures/k8s-api-server.js';
import { request } from '../helpers/http.js';
import { problemsOf } from '../helpers/config-text.js';

/** Waits until an async check holds (settle, do not sample): the watch delivers in its own time. */
async function until(check: () => Promise<boolean>, ceilingMs = 10_000): Promise<void> {
  const deadline = Date.now() + ceilingMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function dtabObject(name: string, dentries: { prefix: string; dst: string }[], namespace = 'default'): KObject {
  return { kind: 'DTab', metadata: { name, namespace }, dentries };
}

const api = await new FakeApiServer().start();
t.teardown(() => api.close());
const one = await startTextApp('one', '127.0.0.1', 'one');
const two = await startTextApp('two', '127.0.0.1', 'two');
t.teardown(() => Promise.all([one.close(), two.close()]));

const configText = (kind: string, extra = ''): string => `
admin: {ip: 127.0.0.1, port: 0}
namers: [{kind: io.l5d.k8s, host: 127.0.0.1, port: ${api.port}}]
identity: {podWatch: false}
routers:
- protocol: http
  label: outgoing
  interpreter:
    kind: ${kind}
    dst: /$/inet/namerd.default.svc.cluster.local/4100
    ${kind === 'io.l5d.mesh' ? 'root: /internal' : 'namespace: internal'}
    ${extra}
  servers: [{port: 0, ip: 127.0.0.1}]
`;

t.test('config: the namerd kinds load; what is lost is said; two dtabs are an error; refused kinds say why', async (t) => {
  for (const kind of ['io.l5d.namerd', 'io.l5d.namerd.http', 'io.l5d.mesh']) {
    const { config, warnings } = parseConfig(configText(kind, 'retry: {baseSeconds: 1}'), 'l5d.yaml', { env: {} });
    t.match(config.routers[0]?.namerd, { kind, namespace: 'internal', storageNamespace: 'default' }, kind);
    t.match(warnings.join('\n'), /interpreter\.dst: namerd at \/\$\/inet\/namerd\.default\.svc\.cluster\.local\/4100 is not contacted/);
    t.match(warnings.join('\n'), /interpreter\.retry: accepted, not enforced: it configures the connection to namerd/);
  }
  t.match(problemsOf(configText('io.l5d.namerd').replace('  servers:', '  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:')), [
    /routers\[0\]\.dtab: this router's dtab comes from namerd \(interpreter io\.l5d\.namerd\): remove dtab/,
  ]);
  t.match(problemsOf(configText('io.l5d.consul.interpreter')).join('\n'), /Consul is not Kubernetes discovery/);
  t.match(problemsOf(configText('io.l5d.k8s.configMap')).join('\n'), /not built: mount the ConfigMap as a volume and name the file in dtabFile/);
  // With no namer (linkerd-namerd.yml leaves discovery to namerd), hostmesh adds io.l5d.k8s and says so.
  const bare = parseConfig(configText('io.l5d.namerd').replace(/namers: .*\n/, ''), 'l5d.yaml', { env: {} });
  t.same(bare.config.namers, [{ kind: 'io.l5d.k8s', prefix: '/io.l5d.k8s' }]);
  t.match(bare.warnings.join('\n'), /bound with an io\.l5d\.k8s namer at \/#\/io\.l5d\.k8s added by hostmesh/);
});

t.test('a missing namerd dtab fails the start, naming the object', async (t) => {
  const { config } = parseConfig(configText('io.l5d.namerd'), 'l5d.yaml', { env: {} });
  await t.rejects(
    startHostmesh(config, { logger: silentLogger(), namerdStartMs: 5_000 }),
    /router outgoing: interpreter io\.l5d\.namerd: namerd dtab internal \(dtabs\.l5d\.io internal in namespace default\) does not exist/,
  );
});

t.test("routes with namerd's dtab, follows its changes, keeps the old one when a new one is broken", async (t) => {
  api.apply(dtabObject('external', [{ prefix: '/svc', dst: `/$/inet/127.0.0.1/${two.port}` }]));
  for (const kind of ['io.l5d.namerd', 'io.l5d.mesh']) {
    api.apply(dtabObject('internal', [{ prefix: '/svc', dst: `/$/inet/127.0.0.1/${one.port}` }]));
    const { config } = parseConfig(configText(kind), 'l5d.yaml', { env: {} });
    const mesh = await startHostmesh(config, { logger: silentLogger(), k8sBackoff: { baseMs: 20, capMs: 200 } });
    const port = mesh.routers[0]?.listeners[0]?.address.port as number;
    const get = async (): Promise<string> => (await request({ host: '127.0.0.1', port, path: '/', headers: { host: 'world' } })).body.trim();
    t.equal(await get(), 'one', `${kind}: the stored dtab routes`);
    if (kind === 'io.l5d.namerd') {
      api.apply(dtabObject('internal', [{ prefix: '/svc', dst: `/$/inet/127.0.0.1/${two.port}` }]));
      await until(async () => (await get()) === 'two');
      t.equal(await get(), 'two', 'a changed dtab applies without restart');
      api.apply(dtabObject('internal', [{ prefix: 'svc', dst: '/broken' }]));
      await until(async () => (await mesh.metrics.registry.metrics()).includes('hostmesh_dtab_reload_failures_total{router="outgoing"} 1'));
      t.equal(await get(), 'two', 'a broken version is refused; the one in force stays');
      api.delete('DTab', 'default', 'internal');
      await until(async () => (await mesh.metrics.registry.metrics()).includes('hostmesh_dtab_reload_failures_total{router="outgoing"} 2'));
      t.equal(await get(), 'two', 'a deleted dtab leaves the last version in force');
    }
    await mesh.close(0);
  }
});
