// The config shipped in k8s/ (the ConfigMap's config.yaml and dtabs; certificate files in place of
// identity.issuer, see test/helpers/static-tls-config.ts) run as two
// `hostmesh run` processes, node-a and node-b, with only addresses, ports and the in-cluster paths
// overridden with --set, against the test API server holding the objects of k8s/ and
// k8s/examples/hello-world.yaml. Certificates come from `hostmesh certs` and are mounted the way
// Kubernetes mounts a Secret (a `..data` symlink). Checks:
// - a pod on node-a reaches world (on node-b) through both routers, over mutual TLS, and an
//   l5d-dtab override reaches world-v2;
// - the API calls the routers make are exactly what the shipped ClusterRole allows;
// - rotating the Secret's files (the ..data swap cert-manager causes) applies to new handshakes
//   without a restart or a failed request, and a broken rotation keeps the old certificates.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import { cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { FakeApiServer, type KObject } from '../fixtures/k8s-api-server.js';
import { runCertsInProcess, spawnCli } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { endpointSlice, pod } from '../helpers/k8s.js';
import { kustomize, manifestFile, one, ROOT } from '../helpers/manifests.js';
import { freePorts } from '../helpers/ports.js';
import { needs } from '../helpers/requires.js';
import { staticTlsConfig } from '../helpers/static-tls-config.js';
import { mkdtempSync } from 'node:fs';

const NODES = [
  { name: 'node-a', ip: '127.0.0.2' },
  { name: 'node-b', ip: '127.0.0.3' },
];
// The shipped config with certificate files instead of identity.issuer (test/e2e/identity-issued.test.ts
// covers issued certificates): static files keep working for users who manage their own.
const CONFIG = staticTlsConfig(mkdtempSync(join(tmpdir(), 'hostmesh-static-config-')));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pod: answers `<text> <l5d-client-id>`; GET /slow streams for as long as `slowGate` is closed. */
function startPod(ip: string, text: string, slowGate: { open: Promise<void> }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first half;');
      void slowGate.open.then(() => res.end('second half'));
      return;
    }
    res.end(`${text} ${String(req.headers['l5d-client-id'] ?? '-')}`);
  });
  return new Promise((resolve) => server.listen(0, ip, () => resolve(server)));
}

async function metric(host: string, port: number, pattern: RegExp): Promise<number> {
  const r = await request({ host, port, path: '/metrics' }).catch(() => ({ body: '' }));
  const m = pattern.exec(r.body);
  return m ? Number(m[1]) : 0;
}

async function servingSerial(host: string, port: number, ca: Buffer, cert: Buffer, key: Buffer): Promise<string> {
  const s = tls.connect({ host, port, ca, cert, key, servername: 'hostmesh', checkServerIdentity: (_h, c) => tls.checkServerIdentity('hostmesh', c) });
  await once(s, 'secureConnect');
  const serial = s.getPeerCertificate().serialNumber;
  s.destroy();
  return serial.toUpperCase();
}

const kubectl = needs(t, 'kubectl', 'the shipped DaemonSet config (renders k8s/ with kubectl kustomize)');
t.test('the shipped DaemonSet config: routing, exact RBAC, certificate rotation', { timeout: 120_000, ...kubectl }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-shipped-'));
  const api = await new FakeApiServer().start();
  const children: ChildProcess[] = [];
  const pods: http.Server[] = [];
  let openGate!: () => void;
  const gate = { open: new Promise<void>((r) => (openGate = r)) };
  t.teardown(async () => {
    openGate();
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const p of pods) p.closeAllConnections();
    await Promise.all(pods.map((p) => new Promise((r) => p.close(r))));
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  // Certificates as a user makes them, mounted like a Secret volume: tls/<key> -> ..data/<key>.
  const tlsDir = join(dir, 'tls');
  const issue = async (version: string): Promise<string> => {
    const r = await runCertsInProcess(['certs', 'issue', '--ca-dir', join(dir, 'ca'), '--out', join(dir, version)]);
    t.equal(r.code, 0, r.stderr);
    await cp(join(dir, version), join(tlsDir, `..${version}`), { recursive: true });
    return new X509Certificate(await readFile(join(dir, version, 'tls.crt'))).serialNumber.toUpperCase();
  };
  const swapTo = async (version: string): Promise<void> => {
    await symlink(`..${version}`, join(tlsDir, '..data_tmp'));
    await rename(join(tlsDir, '..data_tmp'), join(tlsDir, '..data')); // atomic, as the kubelet does
  };
  t.equal((await runCertsInProcess(['certs', 'init', '--out', join(dir, 'ca')])).code, 0);
  await mkdir(tlsDir);
  const serial1 = await issue('v1');
  await symlink('..v1', join(tlsDir, '..data'));
  for (const f of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(join('..data', f), join(tlsDir, f));

  // The cluster: the objects of k8s/ (Service hostmesh) and the example (Services world, world-v2),
  // with EndpointSlices the EndpointSlice controller would make for pods on the two nodes.
  const [outgoing, incoming, admin] = (await freePorts('127.0.0.2', 3)) as [number, number, number];
  const base = kustomize('k8s');
  const example = manifestFile('k8s/examples/hello-world.yaml');
  const asApi = (m: object, portName: string, port: number) => {
    const o = structuredClone(m) as KObject & { spec: { ports: { name: string; port: number }[] } };
    o.spec.ports = o.spec.ports.map((p) => (p.name === portName ? { ...p, port } : p));
    return o;
  };
  api.apply(asApi(one(base, 'Service', 'hostmesh'), 'incoming', incoming));
  api.apply(
    endpointSlice(
      'hostmesh',
      'hostmesh-abc',
      'hostmesh',
      NODES.map((n) => ({ ip: n.ip, node: n.name })),
      [
        { name: 'incoming', port: incoming },
        { name: 'admin', port: admin },
      ],
    ),
  );
  const world = await startPod('127.0.0.21', 'world (v1)', gate);
  const worldV2 = await startPod('127.0.0.22', 'world (v2)', gate);
  pods.push(world, worldV2);
  for (const [name, server] of [
    ['world', world],
    ['world-v2', worldV2],
  ] as const) {
    api.apply(one(example, 'Service', name) as unknown as KObject);
    const port = (server.address() as { port: number }).port;
    // The app's Pod: the incoming router delivers only to pods its watch knows on its node.
    api.apply(pod('default', `${name}-1`, 'node-b', name === 'world' ? '127.0.0.21' : '127.0.0.22'));
    api.apply(endpointSlice('default', `${name}-x1`, name, [{ ip: name === 'world' ? '127.0.0.21' : '127.0.0.22', node: 'node-b' }], [{ name: 'http', port }]));
  }

  // The policy ConfigMap mounted as the kubelet does: policy/policy.yaml -> ..data/policy.yaml.
  const policyDir = join(dir, 'policy');
  const policyMap = one(base, 'ConfigMap', 'hostmesh-policy') as unknown as { data: Record<string, string> };
  await mkdir(join(policyDir, '..v1'), { recursive: true });
  await writeFile(join(policyDir, '..v1', 'policy.yaml'), policyMap.data['policy.yaml'] ?? '');
  await symlink('..v1', join(policyDir, '..data'));
  await symlink(join('..data', 'policy.yaml'), join(policyDir, 'policy.yaml'));

  const tlsFile = (f: string) => join(tlsDir, f);
  for (const node of NODES) {
    const set = [
      `admin.ip=${node.ip}`,
      `admin.port=${admin}`,
      'namers.0.host=127.0.0.1',
      `namers.0.port=${api.port}`,
      // The test's pods are loopback addresses (a cluster simulated on one machine).
      'namers.0.allowLoopbackEndpoints=true',
      `routers.0.dtabFile=${join(ROOT, 'k8s/base/config/outgoing.dtab')}`,
      `routers.0.servers.0.ip=${node.ip}`,
      `routers.0.servers.0.port=${outgoing}`,
      `routers.0.client.tls.trustCerts.0=${tlsFile('ca.crt')}`,
      `routers.0.client.tls.clientAuth.certPath=${tlsFile('tls.crt')}`,
      `routers.0.client.tls.clientAuth.keyPath=${tlsFile('tls.key')}`,
      `routers.1.dtabFile=${join(ROOT, 'k8s/base/config/incoming.dtab')}`,
      `routers.1.servers.0.ip=${node.ip}`,
      `routers.1.servers.0.port=${incoming}`,
      `routers.1.servers.0.tls.certPath=${tlsFile('tls.crt')}`,
      `routers.1.servers.0.tls.keyPath=${tlsFile('tls.key')}`,
      `routers.1.servers.0.tls.caCertPath=${tlsFile('ca.crt')}`,
      // The h2 routers, on free ports of the node's address.
      `routers.2.dtabFile=${join(ROOT, 'k8s/base/config/h2-outgoing.dtab')}`,
      `routers.2.servers.0.ip=${node.ip}`,
      'routers.2.servers.0.port=0',
      `routers.2.client.tls.trustCerts.0=${tlsFile('ca.crt')}`,
      `routers.2.client.tls.clientAuth.certPath=${tlsFile('tls.crt')}`,
      `routers.2.client.tls.clientAuth.keyPath=${tlsFile('tls.key')}`,
      `routers.3.dtabFile=${join(ROOT, 'k8s/base/config/h2-incoming.dtab')}`,
      `routers.3.servers.0.ip=${node.ip}`,
      'routers.3.servers.0.port=0',
      `routers.3.servers.0.tls.certPath=${tlsFile('tls.crt')}`,
      `routers.3.servers.0.tls.keyPath=${tlsFile('tls.key')}`,
      `routers.3.servers.0.tls.caCertPath=${tlsFile('ca.crt')}`,
      `authz.policyFile=${join(policyDir, 'policy.yaml')}`,
    ].flatMap((s) => ['--set', s]);
    const child = spawnCli(['run', '-c', CONFIG, ...set], { NODE_NAME: node.name });
    child.stderr?.resume();
    children.push(child);
  }
  for (const node of NODES) {
    let status = 0;
    for (let i = 0; i < 300 && status !== 200; i++) {
      status = await request({ host: node.ip, port: admin, path: '/ready' }).then(
        (r) => r.status,
        () => 0,
      );
      if (status !== 200) await sleep(100);
    }
    t.equal(status, 200, `${node.name} is ready`);
  }

  // A pod on node-a calls world through http_proxy: outgoing (node-a) -> mTLS -> incoming (node-b).
  const call = (path = 'http://world/', headers: http.OutgoingHttpHeaders = {}) => request({ host: '127.0.0.2', port: outgoing, path, headers });
  let reply = await call();
  for (let i = 0; i < 100 && reply.status !== 200; i++) {
    await sleep(50);
    reply = await call();
  }
  t.equal(reply.status, 200);
  t.equal(reply.body, 'world (v1) spiffe://hostmesh/mesh', "delivered by node-b, which verified the caller's mesh certificate");
  const v2 = await call('http://world/', { 'l5d-dtab': '/svc/world => /svc/world-v2' });
  t.equal(v2.body, 'world (v2) spiffe://hostmesh/mesh', 'an l5d-dtab override reaches world-v2');

  // RBAC: every API call made so far maps to a (group, resource, verb) the ClusterRole grants, and
  // every grant is used.
  const calls = new Set(
    api.requests.map((r) => {
      const u = new URL(r.url, 'http://api');
      const parts = u.pathname.split('/').filter(Boolean);
      const group = parts[0] === 'api' ? '' : (parts[1] ?? '?');
      const rest = parts.slice(parts[0] === 'api' ? 2 : 3);
      const resource = rest[0] === 'namespaces' ? rest[2] : rest[0];
      const named = rest[0] === 'namespaces' ? rest.length > 3 : rest.length > 1;
      const watch = ['1', 'true'].includes(u.searchParams.get('watch') ?? '');
      return `${r.method} ${group}/${resource} ${watch ? 'watch' : named ? 'get' : 'list'}`;
    }),
  );
  const role = one(base, 'ClusterRole', 'hostmesh') as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
  const granted = new Set(
    role.rules.flatMap((rule) => rule.apiGroups.flatMap((g) => rule.resources.flatMap((res) => rule.verbs.map((v) => `GET ${g}/${res} ${v}`)))),
  );
  t.same([...calls].sort(), [...granted].sort(), 'the API calls made are exactly the ones the ClusterRole grants');

  // Rotation while traffic flows: a slow response is in flight on the old connections, a steady
  // stream of new requests runs, then the Secret's files are swapped to a new certificate.
  const caPem = await readFile(join(dir, 'ca', 'ca.crt'));
  const clientCert = await readFile(join(dir, 'v1', 'tls.crt'));
  const clientKey = await readFile(join(dir, 'v1', 'tls.key'));
  t.equal(await servingSerial('127.0.0.3', incoming, caPem, clientCert, clientKey), serial1, 'node-b serves the first certificate');
  const slow = call('http://world/slow');
  let failures = 0;
  let done = 0;
  let flowing = true;
  const load = Promise.all(
    [0, 1, 2, 3].map(async () => {
      while (flowing) {
        const r = await call().catch(() => ({ status: 0, body: '' }));
        if (r.status === 200 && r.body.startsWith('world (v1)')) done++;
        else failures++;
      }
    }),
  );
  const okReloads = /hostmesh_tls_reloads_total\{result="ok"\} (\d+)/;
  const serial2 = await issue('v2');
  await swapTo('v2');
  let reloads = 0;
  for (let i = 0; i < 100 && reloads < 2; i++) {
    reloads = await metric('127.0.0.3', admin, okReloads);
    if (reloads < 2) await sleep(100);
  }
  t.ok(reloads >= 2, `node-b reloaded its server and client certificates (${reloads})`);
  t.equal(await servingSerial('127.0.0.3', incoming, caPem, clientCert, clientKey), serial2, 'new handshakes get the rotated certificate');
  const before = done;
  for (let i = 0; i < 100 && done < before + 20; i++) await sleep(20);
  openGate();
  const slowReply = await slow;
  t.equal(slowReply.body, 'first half;second half', 'the response in flight across the rotation completed');

  // A broken rotation (key from another certificate) is rejected; v2 stays in force.
  await issue('v3');
  await cp(join(dir, 'v1', 'tls.key'), join(tlsDir, '..v3', 'tls.key'));
  await swapTo('v3');
  let rejected = 0;
  for (let i = 0; i < 100 && rejected < 1; i++) {
    rejected = await metric('127.0.0.3', admin, /hostmesh_tls_reloads_total\{result="rejected"\} (\d+)/);
    if (rejected < 1) await sleep(100);
  }
  t.ok(rejected >= 1, 'the mismatched key was rejected and counted');
  t.equal(await servingSerial('127.0.0.3', incoming, caPem, clientCert, clientKey), serial2, 'the previous certificate stays in force');
  flowing = false;
  await load;
  t.ok(done > 20, `${done} requests completed during the rotations`);
  t.equal(failures, 0, 'no request failed');

  // The ConfigMap edited to the hello-world sample policy (deny-by-default in default; only hello's
  // service account may call world): node-b applies it without a restart, and this caller is denied.
  await mkdir(join(policyDir, '..v2'));
  await cp(join(ROOT, 'k8s', 'examples', 'policy.yaml'), join(policyDir, '..v2', 'policy.yaml'));
  await symlink('..v2', join(policyDir, '..data_tmp'));
  await rename(join(policyDir, '..data_tmp'), join(policyDir, '..data'));
  let denied = await call();
  for (let i = 0; i < 100 && denied.status !== 403; i++) {
    await sleep(50);
    denied = await call();
  }
  t.equal(denied.status, 403, 'the edited policy ConfigMap is in force');
  t.match(decodeURIComponent(String(denied.headers['l5d-err'])), /^authorization denied: .*default\/world/, 'l5d-err names the destination');

  for (const c of children) c.kill('SIGTERM');
  for (const c of children) {
    const [code] = c.exitCode !== null ? [c.exitCode] : ((await once(c, 'exit')) as [number | null]);
    t.equal(code, 0, 'drains and exits 0');
  }
});
