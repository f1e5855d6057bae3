// Per-node identities issued by `hostmesh identity`, end to end: two routers (node-a, node-b)
// configured by YAML with identity.issuer and TLS blocks without certificate files, the issuer
// checking their projected tokens against the test API server. A pod's call carries its workload
// identity to the app (node-b accepts node-a's claim because node-a's issued certificate names
// node-a); renewals, an anchor rotation and an issuer outage cost no request.
//
// One clock drives the routers' renewals and the issuer's certificate times. OpenSSL checks
// validity against the real clock, so the test clock runs in the window where every certificate
// it makes is valid in real time too: it starts at real time minus 59 minutes (certificates live
// an hour) and moves forward from there.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { PodIndex } from '../../src/identity/pod-directory.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { createIntermediateCa, createCa } from '../../src/tls/generate.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { makePki, startIssuerEnv, type IssuerEnv } from '../helpers/identity-issuer.js';
import { eventually } from '../helpers/sockets.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const NODES = [
  { name: 'node-a', ip: '127.0.5.2' },
  { name: 'node-b', ip: '127.0.5.3' },
] as const;
const POD_IP = '127.0.5.20'; // default/hello-5d8f on node-a, service account default
const POD_ID = 'default.default.serviceaccount.identity.hostmesh.cluster.local';

/** A clock the test moves: timers due by `advance` run then; a 0 ms timer runs on the next turn. */
function testClock(start: number) {
  let now = start;
  const timers = new Set<{ at: number; fn: () => void }>();
  return {
    now: () => now,
    schedule(ms: number, fn: () => void): () => void {
      const e = { at: now + ms, fn };
      timers.add(e);
      if (ms <= 0) setImmediate(() => timers.delete(e) && fn());
      return () => void timers.delete(e);
    },
    advance(ms: number): void {
      now += ms;
      for (const e of [...timers]) if (e.at <= now && timers.delete(e)) e.fn();
    },
  };
}

const clock = testClock(Date.now() - 59 * MIN);
const pki = makePki('anchor one');
const env: IssuerEnv = await startIssuerEnv({ pki, now: clock.now, lifetimeMs: HOUR });
const issuerPort = env.server.address.port;
const dir = pki.dir;
const disco = join(dir, 'disco');
mkdirSync(disco);

// The app on node-b: answers with the identity the mesh delivered.
const app = http.createServer((req, res) => res.end(String(req.headers['l5d-client-id'] ?? '')));
await new Promise<void>((resolve) => app.listen(0, NODES[1].ip, resolve));
t.teardown(() => {
  app.closeAllConnections();
  app.close();
});
writeFileSync(join(disco, 'world'), `${NODES[1].ip} ${(app.address() as { port: number }).port} node=node-b\n`);

const ports = (await freePorts(NODES[0].ip, 3)) as [number, number, number];
const [outgoing, incoming, admin] = ports;
writeFileSync(join(disco, 'hostmesh'), NODES.map((n) => `${n.ip} ${incoming} node=${n.name}`).join('\n') + '\n');

const pods = new PodIndex();
pods.upsert({ namespace: 'default', name: 'hello-5d8f', uid: 'u-1', nodeName: 'node-a', serviceAccount: 'default', ips: [POD_IP], hostNetwork: false });
pods.markSynced();

function configText(node: (typeof NODES)[number]): string {
  return `
admin: {ip: ${node.ip}, port: ${admin}}
namers:
  - kind: io.l5d.fs
    rootDir: ${disco}
nodeName: ${node.name}
identity:
  trustDomain: cluster.local
  issuer:
    url: https://127.0.0.1:${issuerPort}
    serverName: localhost
    tokenFile: token-${node.name}
    trustBundle: ca-bundle.crt
    retryMinMs: 1000
    retryMaxMs: 60000
routers:
  - protocol: http
    label: outgoing
    dtab: /svc => /#/io.l5d.fs;
    interpreter:
      transformers:
        - kind: io.l5d.k8s.daemonset
          routers: /#/io.l5d.fs/hostmesh
    servers:
      - {port: ${outgoing}, ip: ${node.ip}}
    client:
      tls:
        trustCerts: [ca-bundle.crt]
  - protocol: http
    label: incoming
    dtab: /svc => /#/io.l5d.fs;
    interpreter:
      transformers:
        - kind: io.l5d.k8s.localnode
    servers:
      - port: ${incoming}
        ip: ${node.ip}
        tls:
          caCertPath: ca-bundle.crt
          requireClientAuth: true
`;
}

const meshes: Hostmesh[] = [];
for (const node of NODES) {
  const routerPod = env.pod(`hostmesh-${node.name}`, node.name);
  writeFileSync(join(dir, `token-${node.name}`), env.token(routerPod, { expiresAt: clock.now() + 48 * HOUR }));
  const { config } = parseConfig(configText(node), join(dir, `${node.name}.yaml`));
  meshes.push(await startHostmesh(config, { logger: silentLogger(), pods, tlsPollMs: 100, identityClock: clock }));
}
t.teardown(async () => {
  await Promise.all(meshes.map((m) => m.close(0)));
  await env.close();
});

const [meshA, meshB] = meshes as [Hostmesh, Hostmesh];
const ready = (node: (typeof NODES)[number]) => request({ host: node.ip, port: admin, path: '/ready' }).then((r) => r.status);
const call = () =>
  request({ host: NODES[0].ip, port: outgoing, localAddress: POD_IP, path: 'http://world/' }).catch((err: Error) => ({
    status: 0,
    body: err.message,
    headers: {},
  }));
const serialOf = (m: Hostmesh) => (m.nodeCertificate?.current === undefined ? '' : new X509Certificate(m.nodeCertificate.current.cert).serialNumber);
/** The sum of a metric's lines that carry every label given (0 when none). */
async function metric(m: Hostmesh, name: string, ...labels: string[]): Promise<number> {
  const text = await m.metrics.registry.metrics();
  let sum = 0;
  for (const l of text.split('\n')) if (l.startsWith(name) && labels.every((x) => l.includes(x))) sum += Number(l.split(' ').pop());
  return sum;
}

/** Sends requests one after another until stopped; counts answers that are not the pod's identity. */
function traffic() {
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (!stop) {
      const r = await call();
      sent++;
      if (r.status !== 200 || r.body !== POD_ID) failures.push(`${r.status} ${r.body.slice(0, 200)}`);
    }
  })();
  return {
    async end() {
      stop = true;
      await loop;
      return { sent, failures };
    },
  };
}

t.test('each router obtains a certificate for its own node, and /ready waits for it', async (t) => {
  t.ok(await eventually(() => meshA.nodeCertificate?.valid() === true && meshB.nodeCertificate?.valid() === true, 20_000), 'both certified');
  t.equal(await ready(NODES[0]), 200);
  t.equal(await ready(NODES[1]), 200);
  const leaf = new X509Certificate(meshA.nodeCertificate?.current?.cert ?? '');
  t.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/node/node-a');
});

t.test("identity end to end with issued certificates: node-b accepts node-a's claim; the app sees the pod", async (t) => {
  let r = await call();
  for (let i = 0; i < 50 && r.status !== 200; i++) r = await call(); // the fs namer's first read
  t.equal(r.status, 200, r.body);
  t.equal(r.body, POD_ID, 'l5d-client-id is the calling pod');
});

t.test('renewal at 2/3 of the life: a new certificate, a fresh key, and no failed request', async (t) => {
  const before = [serialOf(meshA), serialOf(meshB)];
  const keyBefore = meshA.nodeCertificate?.current?.key;
  const load = traffic();
  clock.advance(40 * MIN + 1000);
  t.ok(await eventually(() => serialOf(meshA) !== before[0] && serialOf(meshB) !== before[1], 20_000), 'both renewed');
  t.not(meshA.nodeCertificate?.current?.key, keyBefore, 'a new private key');
  for (let i = 0; i < 5; i++) await call();
  const { sent, failures } = await load.end();
  t.same(failures, [], `${sent} requests across the renewal, none failed`);
  t.equal(await metric(meshA, 'hostmesh_identity_renewals_total', 'result="ok"'), 2);
});

t.test('anchor rotation with two anchors in the bundle: 0 failed requests', async (t) => {
  const load = traffic();
  const reloads = async () =>
    (await metric(meshA, 'hostmesh_tls_reloads_total', 'result="ok"')) + (await metric(meshB, 'hostmesh_tls_reloads_total', 'result="ok"'));
  const anchor2 = createCa({ commonName: 'anchor two' });
  // 1. Both anchors in the bundle (the ConfigMap); routers reload it.
  let seen = await reloads();
  writeFileSync(pki.bundlePath, pki.anchor.certPem + anchor2.certPem);
  for (let i = 0; i < 200 && (await reloads()) < seen + 4; i++) await new Promise((r) => setTimeout(r, 50));
  t.ok((await reloads()) >= seen + 4, 'both routers reloaded the two-anchor bundle (server and client sides)');
  // 2. The issuer's Secret gets an issuer certificate from the new anchor; routers renew from it.
  const issuer2 = createIntermediateCa(anchor2, { commonName: 'issuer two' });
  writeFileSync(pki.issuerKeyPath, issuer2.keyPem);
  writeFileSync(pki.issuerCertPath, issuer2.certPem);
  await env.server.reload();
  t.equal(env.server.material.certPem.trim(), issuer2.certPem.trim(), 'the issuer reloaded its certificate without a restart');
  t.ok(await meshA.nodeCertificate?.renewNow(), 'node-a renewed from the new issuer');
  for (let i = 0; i < 5; i++) await call(); // a node-a certificate from anchor two, node-b's from anchor one
  t.ok(await meshB.nodeCertificate?.renewNow(), 'node-b renewed from the new issuer');
  t.match(meshA.nodeCertificate?.current?.cert ?? '', issuer2.certPem.trim().slice(-200), 'chain carries the new issuer');
  // 3. The old anchor leaves the bundle.
  seen = await reloads();
  writeFileSync(pki.bundlePath, anchor2.certPem);
  for (let i = 0; i < 200 && (await reloads()) < seen + 4; i++) await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 5; i++) await call();
  const { sent, failures } = await load.end();
  t.same(failures, [], `${sent} requests across the rotation, none failed`);
  const r = await call();
  t.equal(r.body, POD_ID, 'served on the new anchor alone');
});

t.test('issuer down longer than a renewal interval: traffic flows until the certificate actually expires', async (t) => {
  await env.close();
  const cert = meshA.nodeCertificate?.current;
  t.ok(cert !== undefined);
  const notAfter = Math.min(cert?.notAfter ?? 0, meshB.nodeCertificate?.current?.notAfter ?? 0);
  const failedBefore = await metric(meshA, 'hostmesh_identity_renewals_total', 'result="failed"');
  const load = traffic();
  // Step through the renewal point and on to one second before expiry: retries fail, traffic flows.
  while (clock.now() < notAfter - 5 * MIN) {
    clock.advance(5 * MIN);
    await call();
  }
  clock.advance(notAfter - 1000 - clock.now());
  for (let i = 0; i < 5; i++) await call();
  const { sent, failures } = await load.end();
  t.same(failures, [], `${sent} requests with the issuer down, none failed`);
  let failed = failedBefore;
  for (let i = 0; i < 100 && failed <= failedBefore; i++) {
    await new Promise((r) => setTimeout(r, 50));
    failed = await metric(meshA, 'hostmesh_identity_renewals_total', 'result="failed"');
  }
  t.ok(failed > failedBefore, `renewal failures counted (${failed - failedBefore})`);
  t.equal(await ready(NODES[0]), 200, 'still ready a second before expiry');
  clock.advance(2000);
  t.equal(await ready(NODES[0]), 503, 'not ready once the certificate has expired');
  t.equal(await metric(meshA, 'hostmesh_identity_certificate_valid '), 0);
});
