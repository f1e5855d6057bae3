// Linkerd 1's published DaemonSet-family configs (fixtures written in their shape under
// test/fixtures/linkerd1/) with the environment their manifests give the container (POD_IP, or
// NODE_NAME for the CNI variants): `run --check` passes every one hostmesh runs and prints what it
// accepts without enforcing; the others are refused with an error that says why (non-Kubernetes
// discovery, non-HTTP protocols).
// Then the ones that pass start against the test API server and route a request through the
// outgoing router, the incoming router (the node found from POD_IP) and on to the app.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import t from 'tap';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheck } from '../../src/cli/run.js';
import { loadConfig } from '../../src/config/load.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { silentLogger } from '../../src/log.js';
import { startTextApp } from '../../src/demo/apps.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { FakeApiServer, type KObject } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service } from '../helpers/k8s.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { repoPath } from '../helpers/paths.js';

const DIR = repoPath('test', 'fixtures', 'linkerd1');
const POD_IP = '10.244.1.7';
const env = { POD_IP }; // what linkerd.yml's DaemonSet injects
const cniEnv = { NODE_NAME: 'node-a' }; // linkerd-cni.yml

const tmp = await mkdtemp(join(tmpdir(), 'hostmesh-l5d1-fixtures-'));
t.teardown(() => rm(tmp, { recursive: true, force: true }));
const pki = await writeDemoPki(tmp, 'linkerd', [{ name: 'node-a', ip: '127.0.0.1' }]);
const certs = pki.nodes.get('node-a') as { cert: string; key: string };

interface Case {
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
  readonly set?: readonly string[];
  /** Refused: what the error must say. */
  readonly refused?: RegExp;
}

const tlsSet = [
  `routers.0.client.tls.trustCerts.0=${pki.ca}`,
  `routers.1.servers.0.tls.certPath=${certs.cert}`,
  `routers.1.servers.0.tls.keyPath=${certs.key}`,
];

const CASES: readonly Case[] = [
  { file: 'daemonset.yaml', env },
  { file: 'daemonset-tls.yaml', env, set: tlsSet },
  { file: 'daemonset-cni.yaml', env: cniEnv },
  { file: 'daemonset-zipkin.yaml', env },
  { file: 'daemonset-egress.yaml', env },
  { file: 'daemonset-ingress.yaml', env },
  { file: 'daemonset-latency.yaml', env },
  { file: 'daemonset-namerd.yaml', env },
  { file: 'daemonset-namerd-mesh-cni.yaml', env: cniEnv },
  { file: 'servicemesh-http.yaml', env: { ...env, NODE_NAME: 'node-a' } },
  { file: 'daemonset-grpc.yaml', env },
  { file: 'servicemesh.yaml', env },
  { file: 'ingress-controller.yaml', env },
  // Not Kubernetes, not HTTP: refused for good, saying so.
  { file: 'consul.yaml', env, refused: /namer kind io\.l5d\.consul is refused: Consul is not discovery hostmesh does/ },
  { file: 'marathon.yaml', env, refused: /namer kind io\.l5d\.marathon is refused: Marathon is not discovery hostmesh does/ },
  { file: 'serversets.yaml', env, refused: /namer kind io\.l5d\.serversets is refused: ZooKeeper serversets is not discovery/ },
  { file: 'thrift.yaml', env, refused: /protocol thrift is refused: hostmesh routes HTTP only/ },
  { file: 'mux.yaml', env, refused: /protocol mux is refused: hostmesh routes HTTP only/ },
];

t.test('run --check with the manifest environment: passes, or refuses saying why', async (t) => {
  for (const c of CASES) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCheck(join(DIR, c.file), [...(c.set ?? [])], { out: (l) => out.push(l), err: (l) => err.push(l) }, c.env);
    if (c.refused === undefined) {
      t.equal(code, 0, `${c.file} passes${code !== 0 ? `: ${err.join(' | ')}` : ''}`);
      t.match(
        out.join('\n'),
        /node name: (found at start from the Kubernetes API: the pod with IP 10\.244\.1\.7 \(POD_IP\)|node-a \(NODE_NAME\))/,
        `${c.file}: says where the node name comes from`,
      );
      const listed = readFileSync(join(DIR, c.file), 'utf8').includes('usage:')
        ? /accepted, not enforced \(\d+\): .*usage/
        : /accepted, not enforced: none \(every key of this config is enforced\)/;
      t.match(out.join('\n'), listed, `${c.file}: lists the keys accepted but not enforced`);
    } else {
      t.equal(code, 1, `${c.file} is refused`);
      t.match(err.join('\n'), c.refused, `${c.file}: the error says why`);
    }
  }
  // What is lost is said where it is lost.
  const err: string[] = [];
  await runCheck(join(DIR, 'daemonset-zipkin.yaml'), [], { out: () => undefined, err: (l) => err.push(l) }, env);
  t.match(err.join('\n'), /daemonset-zipkin\.yaml:14:5: telemetry\[1\]: io\.l5d\.zipkin: accepted, not enforced: no spans are sent to Zipkin/);
});

// --- start and route -----------------------------------------------------------------------------

const api = await new FakeApiServer().start();
t.teardown(() => api.close());
const app = await startTextApp('world-v1', '127.0.0.1', 'world-v1 (node-a)');
t.teardown(() => app.close());
const [outPort, inPort] = (await freePorts('127.0.0.1', 2)) as [number, number];

// This router's own pod (found by POD_IP), the routers' Service l5d, and world-v1 on node-a.
api.apply({
  kind: 'Pod',
  metadata: { namespace: 'default', name: 'l5d-x7k2p' },
  spec: { nodeName: 'node-a' },
  status: { phase: 'Running', podIP: POD_IP },
} as KObject);
for (const ns of ['default', 'linkerd']) {
  api.apply(
    service(ns, 'l5d', [
      { name: 'incoming', port: inPort },
      { name: 'http-incoming', port: inPort },
    ]),
  );
  api.apply(
    endpointSlice(
      ns,
      'l5d-1',
      'l5d',
      [{ ip: '127.0.0.1', node: 'node-a' }],
      [
        { name: 'incoming', port: inPort },
        { name: 'http-incoming', port: inPort },
      ],
    ),
  );
}
api.apply(service('default', 'world-v1'));
api.apply(endpointSlice('default', 'world-v1-1', 'world-v1', [{ ip: app.host, node: 'node-a' }], [{ name: 'http', port: app.port }]));
api.apply(service('default', 'world'));
api.apply(endpointSlice('default', 'world-1', 'world', [{ ip: app.host, node: 'node-a' }], [{ name: 'http', port: app.port }]));
api.apply({
  kind: 'DTab',
  metadata: { namespace: 'default', name: 'internal' },
  dentries: [
    { prefix: '/srv', dst: '/#/io.l5d.k8s/default/http' },
    { prefix: '/svc', dst: '/srv' },
    { prefix: '/svc/world', dst: '/srv/world-v1' },
  ],
} as KObject);

api.apply({ kind: 'DTab', metadata: { namespace: 'default', name: 'external' }, dentries: [{ prefix: '/svc', dst: '/$/inet/127.0.0.1/1' }] } as KObject);

/** The --set lines a test may use: listen addresses, ports, the API's address, file paths. */
function localSet(file: string, routers: { out: number; in: number }, extra: readonly string[] = []): string[] {
  const set = ['admin.ip=127.0.0.1', 'admin.port=0', ...extra];
  if (file === 'daemonset-namerd.yaml' || file === 'daemonset-namerd-mesh-cni.yaml') {
    set.push(`routers.0.interpreter.dtabStorage.host=127.0.0.1`, `routers.0.interpreter.dtabStorage.port=${api.port}`);
    set.push(`routers.1.interpreter.dtabStorage.host=127.0.0.1`, `routers.1.interpreter.dtabStorage.port=${api.port}`);
  }
  if (file === 'daemonset-namerd.yaml') {
    set.push(`routers.2.interpreter.dtabStorage.host=127.0.0.1`, `routers.2.interpreter.dtabStorage.port=${api.port}`);
    set.push('routers.2.servers.0.ip=127.0.0.1', 'routers.2.servers.0.port=0');
  }
  return set.concat([
    `routers.0.servers.0.ip=127.0.0.1`,
    `routers.0.servers.0.port=${routers.out}`,
    `routers.1.servers.0.ip=127.0.0.1`,
    `routers.1.servers.0.port=${routers.in}`,
  ]);
}

const ROUTED: { file: string; env: NodeJS.ProcessEnv; host: string; set?: readonly string[] }[] = [
  { file: 'daemonset.yaml', env, host: 'world' },
  { file: 'daemonset-cni.yaml', env: cniEnv, host: 'world' },
  { file: 'daemonset-egress.yaml', env, host: 'world' },
  { file: 'daemonset-zipkin.yaml', env, host: 'world' },
  { file: 'daemonset-namerd.yaml', env, host: 'world' },
  { file: 'servicemesh-http.yaml', env, host: 'world-v1' },
];

t.test('each starts against the test API server and routes outgoing -> incoming -> app', async (t) => {
  for (const c of ROUTED) {
    const { config } = await loadConfig(join(DIR, c.file), { set: localSet(c.file, { out: outPort, in: inPort }, c.set), env: c.env });
    // Each namer reads the test API server where the manifest's kubectl proxy (or in-cluster access) would be.
    const namers = config.namers.map((n) => (n.kind === 'io.l5d.k8s' ? { ...n, host: '127.0.0.1', port: api.port, allowLoopbackEndpoints: true } : n));
    let mesh: Hostmesh | undefined;
    try {
      mesh = await startHostmesh(
        { ...config, namers, identity: { ...(config.identity ?? { trustDomain: 'cluster.local' }), podWatch: false } },
        {
          logger: silentLogger(),
          env: c.env,
          k8sBackoff: { baseMs: 20, capMs: 200 },
          namerdStartMs: 10_000,
        },
      );
      t.equal(mesh.config.nodeName, 'node-a', `${c.file}: the node (${c.env['NODE_NAME'] !== undefined ? 'NODE_NAME' : 'from POD_IP'})`);
      let res = await request({ host: '127.0.0.1', port: outPort, path: '/', headers: { host: c.host } });
      for (let i = 0; i < 100 && res.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50)); // the namers' first lists
        res = await request({ host: '127.0.0.1', port: outPort, path: '/', headers: { host: c.host } });
      }
      t.equal(res.status, 200, `${c.file}: routed (${res.headers['l5d-err'] ?? ''})`);
      t.match(res.body, /world-v1 \(node-a\)/, `${c.file}: the app answered`);
      const metrics = await mesh.metrics.registry.metrics();
      t.match(metrics, /hostmesh_requests_total\{router="(http-)?outgoing"[^}]*\} 1/, `${c.file}: through the outgoing router`);
      t.match(metrics, /hostmesh_requests_total\{router="(http-)?incoming"[^}]*\} 1/, `${c.file}: and the incoming router (daemonset -> localnode)`);
    } finally {
      await mesh?.close(0);
    }
  }
});

// linkerd-ingress-controller.yml: one router whose io.l5d.ingress identifier reads Ingress objects
// (here from the test API server) and names /svc/<namespace>/<port>/<service>, bound by the dtab
// `/svc => /#/io.l5d.k8s` to the service's endpoints.
t.test('ingress-controller starts and routes a request through an Ingress', async (t) => {
  const [port] = (await freePorts('127.0.0.1', 1)) as [number];
  const { config } = await loadConfig(join(DIR, 'ingress-controller.yaml'), {
    set: ['admin.ip=127.0.0.1', 'admin.port=0', 'routers.0.servers.0.ip=127.0.0.1', `routers.0.servers.0.port=${port}`],
    env,
  });
  const namers = config.namers.map((n) => (n.kind === 'io.l5d.k8s' ? { ...n, host: '127.0.0.1', port: api.port, allowLoopbackEndpoints: true } : n));
  api.apply({
    kind: 'Ingress',
    metadata: { namespace: 'default', name: 'world', annotations: { 'kubernetes.io/ingress.class': 'linkerd' } },
    spec: {
      rules: [
        { host: 'world.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'world', port: { name: 'http' } } } }] } },
      ],
    },
  } as KObject);
  const mesh = await startHostmesh(
    { ...config, namers, identity: { ...(config.identity ?? { trustDomain: 'cluster.local' }), podWatch: false } },
    { logger: silentLogger(), env, k8sBackoff: { baseMs: 20, capMs: 200 } },
  );
  try {
    let res = await request({ host: '127.0.0.1', port, path: '/hello', headers: { host: 'world.example.com' } });
    for (let i = 0; i < 100 && res.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the Ingress and endpoint watches' first lists
      res = await request({ host: '127.0.0.1', port, path: '/hello', headers: { host: 'world.example.com' } });
    }
    t.equal(res.status, 200, `routed (${res.headers['l5d-err'] ?? ''})`);
    t.match(res.body, /world-v1 \(node-a\)/, 'the app behind the Ingress answered');
    const other = await request({ host: '127.0.0.1', port, path: '/', headers: { host: 'nobody.example.com' } });
    t.equal(other.status, 404, 'a host no Ingress names: 404');
  } finally {
    await mesh.close(0);
    api.delete('Ingress', 'default', 'world');
  }
});
