// Names resolved through the Kubernetes API (the test API server) across two routers over mutual
// TLS: endpoint changes reach routing, neg falls through to 502, several slices merge, the
// daemonset/localnode transformers deliver by node, and an API outage fails no request.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import https from 'node:https';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service, type SliceEndpoint } from '../helpers/k8s.js';
import { NODES, startK8sMesh, type K8sMesh } from '../helpers/k8s-mesh.js';
import { request, type Reply } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';

const [A, B] = [NODES[0].ip, NODES[1].ip];
let api: FakeApiServer;
let mesh: K8sMesh;

t.before(async () => {
  api = await new FakeApiServer().start();
  mesh = await startK8sMesh(api);
});
t.teardown(async () => {
  await mesh.close();
  await api.close();
});

const via = (name: string, headers: Record<string, string> = {}): Promise<Reply> =>
  request({ host: A, port: mesh.ports.outgoing, path: `http://${name}/`, headers }).catch((e: Error) => ({ status: 0, headers: {}, body: e.message }));

/** Polls `check` (every 25 ms) until true or the ceiling passes. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function bodies(name: string, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await via(name)).body);
  return seen;
}

const sameSet = (a: Set<string>, b: string[]): boolean => a.size === b.length && b.every((x) => a.has(x));

function publish(svc: string, slice: string, endpoints: SliceEndpoint[], port: number): void {
  api.apply(endpointSlice('default', slice, svc, endpoints, [{ name: 'http', port }]));
}

t.test('endpoints added, unready and removed reach routing; zero endpoints is a 502 naming the service', async (t) => {
  const port = await freePort('127.0.0.10');
  await mesh.startPods(
    [
      { name: 'web-1', ip: '127.0.0.10', node: 'node-a' },
      { name: 'web-2', ip: '127.0.0.11', node: 'node-b' },
    ],
    port,
  );
  api.apply(service('default', 'web', [{ name: 'http', port: 80 }]));
  publish('web', 'web-x1', [{ ip: '127.0.0.10', node: 'node-a' }], port);
  t.ok(await eventually(async () => (await via('web')).body === 'web-1'), 'the first pod answers');

  publish(
    'web',
    'web-x1',
    [
      { ip: '127.0.0.10', node: 'node-a' },
      { ip: '127.0.0.11', node: 'node-b' },
    ],
    port,
  );
  t.ok(await eventually(async () => sameSet(await bodies('web', 6), ['web-1', 'web-2'])), 'a new pod on the other node takes traffic');

  publish(
    'web',
    'web-x1',
    [
      { ip: '127.0.0.10', node: 'node-a', ready: false },
      { ip: '127.0.0.11', node: 'node-b' },
    ],
    port,
  );
  t.ok(await eventually(async () => sameSet(await bodies('web', 6), ['web-2'])), 'an unready pod gets no traffic');

  publish('web', 'web-x1', [], port);
  let r: Reply = { status: 0, headers: {}, body: '' };
  t.ok(await eventually(async () => (r = await via('web')).status === 502), 'scaled to zero: 502');
  t.match(String(r.headers['l5d-err']), /web/, 'l5d-err names the service');
  t.match(r.body, /\/svc\/web/, 'the body names the logical name');

  publish('web', 'web-x1', [{ ip: '127.0.0.10', node: 'node-a' }], port);
  t.ok(await eventually(async () => (await via('web')).body === 'web-1'), 'restored without a restart');
});

t.test('a Service deleted and recreated; several slices per service are merged', async (t) => {
  const port = await freePort('127.0.0.12');
  await mesh.startPods(
    [
      { name: 'api-1', ip: '127.0.0.12', node: 'node-a' },
      { name: 'api-2', ip: '127.0.0.13', node: 'node-b' },
    ],
    port,
  );
  api.apply(service('default', 'api'));
  publish('api', 'api-a', [{ ip: '127.0.0.12', node: 'node-a' }], port);
  publish('api', 'api-b', [{ ip: '127.0.0.13', node: 'node-b' }], port);
  t.ok(await eventually(async () => sameSet(await bodies('api', 6), ['api-1', 'api-2'])), 'both slices serve');

  api.delete('Service', 'default', 'api');
  t.ok(await eventually(async () => (await via('api')).status === 502), 'no Service: neg, 502');
  api.apply(service('default', 'api'));
  t.ok(await eventually(async () => (await via('api')).status === 200), 'recreated: routed again');

  api.delete('EndpointSlice', 'default', 'api-a');
  t.ok(await eventually(async () => sameSet(await bodies('api', 6), ['api-2'])), 'a deleted slice takes its endpoints with it');
});

t.test('a port by number goes through the Service targetPort (a name or a number)', async (t) => {
  const port = await freePort('127.0.0.14');
  await mesh.startPods([{ name: 'num-1', ip: '127.0.0.14', node: 'node-b' }], port);
  api.apply({
    kind: 'Service',
    metadata: { namespace: 'default', name: 'num' },
    spec: {
      ports: [
        { name: 'web', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'raw', port: 81, targetPort: port, protocol: 'TCP' },
      ],
    },
  });
  publish('num', 'num-x', [{ ip: '127.0.0.14', node: 'node-b' }], port);
  for (const servicePort of ['80', '81']) {
    const dtab = `/svc/num => /#/io.l5d.k8s/default/${servicePort}/num`;
    t.ok(await eventually(async () => (await via('num', { 'l5d-dtab': dtab })).body === 'num-1'), `service port ${servicePort}`);
  }
  // (A neg dentry falls back to earlier ones, so use a name the base dtab does not bind.)
  const r = await via('nothing', { 'l5d-dtab': '/svc/nothing => /#/io.l5d.k8s/default/99/num' });
  t.equal(r.status, 502, 'a port the Service does not have is neg');
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), /^no route to \/svc\/nothing/, 'l5d-err says no route');
  t.match(r.body, /^delegation path:\n[^]*\/#\/io\.l5d\.k8s\/default\/99\/num {2}\(\/svc\/nothing=>/m, 'the body shows the k8s path that was neg');
  const alt = await via('nothing', { 'l5d-dtab': '/svc/nothing => /#/io.l5d.k8s/default/99/num | /#/io.l5d.k8s/DEFAULT/HTTP/NUM' });
  t.equal(alt.body, 'num-1', 'neg falls through an alternation; segments are case-insensitive');
});

function viaIncoming(ip: string, name: string): Promise<Reply> {
  const node = NODES.find((n) => n.ip === ip)!;
  const certs = mesh.pki.nodes.get(node.name)!;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: ip,
        port: mesh.ports.incoming,
        path: '/',
        headers: { host: name },
        servername: 'hostmesh',
        ca: readFileSync(mesh.pki.ca),
        cert: readFileSync(certs.cert),
        key: readFileSync(certs.key),
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

t.test('daemonset + localnode: several pods per node in one /24, each router delivers only to its own node', async (t) => {
  const port = await freePort('127.0.0.20');
  const pods = [
    { name: 'spread-a1', ip: '127.0.0.20', node: 'node-a' },
    { name: 'spread-a2', ip: '127.0.0.21', node: 'node-a' },
    { name: 'spread-b1', ip: '127.0.0.22', node: 'node-b' },
    { name: 'spread-b2', ip: '127.0.0.23', node: 'node-b' },
  ];
  await mesh.startPods(pods, port);
  api.apply(service('default', 'spread'));
  publish(
    'spread',
    'spread-x',
    pods.map((p) => ({ ip: p.ip, node: p.node })),
    port,
  );
  t.ok(
    await eventually(async () =>
      sameSet(
        await bodies('spread', 16),
        pods.map((p) => p.name),
      ),
    ),
    'through node-a, every pod on both nodes is reached',
  );
  for (const [ip, node] of [
    [A, 'node-a'],
    [B, 'node-b'],
  ] as const) {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add((await viaIncoming(ip, 'spread')).body);
    t.same(
      [...seen].sort(),
      pods.filter((p) => p.node === node).map((p) => p.name),
      `${node}'s incoming router delivers only to ${node}'s pods`,
    );
  }
});

t.test('the API away during traffic: zero failed requests, state marked stale, recovery without restart', { timeout: 60_000 }, async (t) => {
  const port = await freePort('127.0.0.30');
  await mesh.startPods([{ name: 'steady-1', ip: '127.0.0.30', node: 'node-b' }], port);
  api.apply(service('default', 'steady'));
  publish('steady', 'steady-x', [{ ip: '127.0.0.30', node: 'node-b' }], port);
  t.ok(await eventually(async () => (await via('steady')).status === 200), 'routed');

  let failures = 0;
  let sent = 0;
  let stop = false;
  const traffic = (async () => {
    while (!stop) {
      const r = await via('steady');
      sent++;
      if (r.status !== 200) failures++;
    }
  })();
  api.setDown(true);
  const state = async (): Promise<string> => (await request({ host: A, port: mesh.ports.admin, path: '/namer_state/io.l5d.k8s.json' })).body;
  t.ok(await eventually(async () => (await state()).includes('"stale": true'), 10_000), 'namer state shows stale watches');
  await new Promise((r) => setTimeout(r, 1500)); // traffic keeps flowing on the last known endpoints
  api.setDown(false);
  t.ok(await eventually(async () => !(await state()).includes('"stale": true'), 15_000), 'fresh again after the API returns');
  stop = true;
  await traffic;
  t.ok(sent > 20, `requests were sent during the outage (${sent})`);
  t.equal(failures, 0, 'no request failed');
  const ready = await request({ host: A, port: mesh.ports.admin, path: '/ready' });
  t.equal(ready.status, 200, 'still ready');
});
