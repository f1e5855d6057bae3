// Requeues across nodes: a request the peer router could not deliver (its node no longer has the
// pod, or the peer is gone) is sent again to another node's router, since no app saw it.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { fsNodeConfig } from '../helpers/fs-node.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound, timed } from '../helpers/prompt.js';
import { listen } from '../helpers/mesh.js';

const NODES = [
  { name: 'node-a', ip: '127.0.0.2' },
  { name: 'node-b', ip: '127.0.0.3' },
] as const;
const [A, _B] = NODES;

let dir: string;
let ports: { outgoing: number; incoming: number; admin: number };
const meshes = new Map<string, Hostmesh>();
/** The app pods: all on node-a (the "moved" pod), counting the requests each saw. */
const hits = { web: 0, liar: 0 };
let web: http.Server;
let liar: http.Server;

t.before(async () => {
  const [outgoing, incoming, admin] = (await freePorts(A.ip, 3)) as [number, number, number];
  ports = { outgoing, incoming, admin };
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-requeue-'));
  const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', NODES);
  web = await listen(
    http.createServer((req, res) => {
      hits.web++;
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(`web on node-a, ${req.method} body ${n}\n`));
    }),
    '127.0.0.20',
  );
  // An app that answers with the router's own requeue mark: it must not make anyone resend.
  liar = await listen(
    http.createServer((req, res) => {
      hits.liar++;
      req.resume();
      res.writeHead(502, { 'l5d-hostmesh-requeue': 'no-local-endpoint' });
      res.end('app failure\n');
    }),
    '127.0.0.20',
  );
  const webPort = (web.address() as { port: number }).port;
  const liarPort = (liar.address() as { port: number }).port;
  const routers = NODES.map((n) => `${n.ip} ${ports.incoming} node=${n.name}`).join('\n') + '\n';
  for (const n of NODES) {
    await mkdir(join(dir, n.name));
    await writeFile(join(dir, n.name, 'hostmesh'), routers);
  }
  // node-a still believes a web pod runs on node-b; node-b knows it moved to node-a.
  await writeFile(join(dir, 'node-a', 'web'), `127.0.0.20 ${webPort} node=node-a\n127.0.0.30 ${webPort} node=node-b\n`);
  await writeFile(join(dir, 'node-b', 'web'), `127.0.0.20 ${webPort} node=node-a\n`);
  await writeFile(join(dir, 'node-a', 'liar'), `127.0.0.20 ${liarPort} node=node-a\n127.0.0.30 ${liarPort} node=node-b\n`);
  await writeFile(join(dir, 'node-b', 'liar'), `127.0.0.20 ${liarPort} node=node-a\n`);
  for (const n of NODES) {
    const certs = pki.nodes.get(n.name) as { cert: string; key: string };
    // Each node has its own view of the cluster (its own directory): node-a's is stale.
    meshes.set(
      n.name,
      await startHostmesh(fsNodeConfig(n, { ports, certs: { ca: pki.ca, ...certs }, rootDir: join(dir, n.name), baseDir: dir, shutdownGraceMs: 200 }), {
        logger: silentLogger(),
      }),
    );
  }
});

t.teardown(async () => {
  await Promise.all([...meshes.values()].map((m) => m.close(100)));
  for (const s of [web, liar]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await rm(dir, { recursive: true, force: true });
});

const viaA = (path: string, options: http.RequestOptions = {}, body?: string) => request({ host: A.ip, port: ports.outgoing, path, ...options }, body);

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const r = await request({ host: A.ip, port: ports.admin, path: '/metrics' });
  const s = parsePrometheus(r.body).find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

t.test('a pod moved off node-b: requests node-a still sends there are requeued to node-a, 0 fail', async (t) => {
  const statuses: number[] = [];
  const bodies = new Set<string>();
  const before = hits.web;
  for (let i = 0; i < 40; i++) {
    const r = await viaA('http://web/');
    statuses.push(r.status);
    bodies.add(r.body);
    t.equal(r.headers['l5d-hostmesh-requeue'], undefined, 'the mark never reaches the app');
  }
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    'every request succeeded',
  );
  t.same([...bodies], ['web on node-a, GET body 0\n']);
  t.equal(hits.web - before, 40, 'the app saw each request once');
  t.ok((await metric('hostmesh_requeues_total', { router: 'outgoing', reason: 'no_local_endpoint' })) >= 15, 'requeues are counted');
});

t.test('small request bodies are requeued whole; a body past the buffer is not resent', async (t) => {
  for (let i = 0; i < 10; i++) {
    const body = 'x'.repeat(1000 + i);
    const r = await viaA('http://web/', { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': String(body.length) } }, body);
    t.equal(r.status, 200);
    t.equal(r.body, `web on node-a, POST body ${body.length}\n`);
  }
  // 200 KiB: past the buffer, so a request sent to node-b cannot be resent: it fails as before
  // (502 from node-b, without the mark), and one sent to node-a succeeds.
  const big = 'y'.repeat(200 * 1024);
  const results: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await viaA('http://web/', { method: 'PUT', headers: { 'content-length': String(big.length) } }, big);
    results.push(r.status);
    t.equal(r.headers['l5d-hostmesh-requeue'], undefined);
    if (r.status === 200) t.equal(r.body, `web on node-a, PUT body ${big.length}\n`);
  }
  // Which of the two happens depends on how much of the body had passed when node-b answered;
  // what never happens is a resend of a body that was not kept whole (router/stages/forward/retry-body.ts tests).
  t.ok(results.includes(200) && results.every((s) => s === 200 || s === 502), `big bodies: ${results.join(',')}`);
});

t.test("an app's 502 carrying the requeue mark is relayed once, never resent", async (t) => {
  const before = hits.liar;
  for (let i = 0; i < 10; i++) {
    const r = await viaA('http://liar/');
    t.equal(r.status, 502);
    t.equal(r.body, 'app failure\n');
    t.equal(r.headers['l5d-hostmesh-requeue'], undefined);
    t.equal(r.headers['l5d-err'], undefined, "the app's answer, not the router's");
  }
  t.equal(hits.liar - before, 10, 'each request reached the app exactly once');
});

t.test("node-b's router drains (SIGTERM's path): requests during the drain succeed on node-a", async (t) => {
  const b = meshes.get('node-b') as Hostmesh;
  // Requests keep coming while node-b drains: its draining answers are marked not-delivered and its
  // closing connections refuse; node-a resends both to node-a's router.
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await viaA('http://web/')).status);
  const draining = b.close(1500);
  for (let i = 0; i < 30; i++) statuses.push((await viaA(i % 2 === 0 ? 'http://web/' : 'http://web/d', i % 3 === 0 ? { method: 'DELETE' } : {})).status);
  await draining;
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    'every request succeeded',
  );
});

t.test("node-b's router is gone (port closed): requests succeed on node-a", async (t) => {
  // A normal request before node-b goes: "promptly" after it is 10x this (at least 2 s), so a busy
  // machine, which slows both, cannot trip it.
  const baseline = await timed(() => viaA('http://web/'));
  t.equal(baseline.value.status, 200, `a normal request before (${baseline.ms.toFixed(0)} ms)`);
  const bound = promptBound(baseline.ms, 2000);
  await (meshes.get('node-b') as Hostmesh).close(100);
  meshes.delete('node-b');
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push((await viaA(i % 3 === 0 ? 'http://web/' : 'http://web/x', i % 2 === 0 ? {} : { method: 'DELETE' })).status);
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    'every request succeeded',
  );
  t.ok((await metric('hostmesh_requeues_total', { router: 'outgoing', reason: 'connect_failed' })) >= 10, 'connection failures requeued');
  // The router stays responsive: a normal request is answered promptly.
  const after = await timed(() => viaA('http://web/'));
  t.equal(after.value.status, 200);
  t.ok(after.ms < bound, `answered promptly (${after.ms.toFixed(0)} ms; bound ${bound} ms, 10x before node-b went)`);
});
