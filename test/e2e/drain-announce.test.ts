// DaemonSet rollouts (issue 18): a draining router announces it to its peers before it closes, so
// they stop choosing it while another node has the service: no failed request, no requeue storm.

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
  { name: 'node-a', ip: '127.0.0.2', pod: '127.0.2.2' },
  { name: 'node-b', ip: '127.0.0.3', pod: '127.0.2.3' },
  { name: 'node-c', ip: '127.0.0.4', pod: '127.0.2.4' },
] as const;
type Node = (typeof NODES)[number];
const [A, B, C] = NODES;

let dir: string;
let ports: { outgoing: number; incoming: number; admin: number };
const meshes = new Map<string, Hostmesh>();
/** Requests each pod saw, by node. */
const hits = new Map<string, number>();
const pods: http.Server[] = [];

/** A pod on `node` counting what it saw; `forge` answers with the router's draining mark. */
async function pod(node: Node, service: string, forge = false): Promise<string> {
  const server = http.createServer((req, res) => {
    hits.set(`${service}@${node.name}`, (hits.get(`${service}@${node.name}`) ?? 0) + 1);
    req.resume();
    if (forge) res.setHeader('l5d-hostmesh-draining', '1');
    res.end(`${service} on ${node.name}\n`);
  });
  pods.push(await listen(server, node.pod));
  return `${node.pod} ${(server.address() as { port: number }).port} node=${node.name}\n`;
}

t.before(async () => {
  const [outgoing, incoming, admin] = (await freePorts(A.ip, 3)) as [number, number, number];
  ports = { outgoing, incoming, admin };
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-drain-announce-'));
  const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', NODES);
  await mkdir(join(dir, 'disco'));
  await writeFile(join(dir, 'disco', 'hostmesh'), NODES.map((n) => `${n.ip} ${ports.incoming} node=${n.name}\n`).join(''));
  // web and liar have a pod on node-b and on node-c; the client is on node-a.
  await writeFile(join(dir, 'disco', 'web'), (await pod(B, 'web')) + (await pod(C, 'web')));
  await writeFile(join(dir, 'disco', 'liar'), (await pod(B, 'liar', true)) + (await pod(C, 'liar', true)));
  for (const n of NODES) {
    const certs = pki.nodes.get(n.name) as { cert: string; key: string };
    meshes.set(
      n.name,
      await startHostmesh(
        fsNodeConfig(n, { ports, certs: { ca: pki.ca, ...certs }, rootDir: join(dir, 'disco'), baseDir: dir, shutdownGraceMs: 300, drainAnnounceMs: 0 }),
        { logger: silentLogger() },
      ),
    );
  }
});

t.teardown(async () => {
  await Promise.all([...meshes.values()].map((m) => m.close(100, 0)));
  for (const s of pods) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await rm(dir, { recursive: true, force: true });
});

const viaA = (service: string) => request({ host: A.ip, port: ports.outgoing, path: `http://${service}/` });

/** node-a's outgoing router's samples of `name` summed (all other labels). */
async function atA(name: string): Promise<number> {
  const r = await request({ host: A.ip, port: ports.admin, path: '/metrics' });
  return parsePrometheus(r.body)
    .filter((s) => s.name === name && s.labels['router'] === 'outgoing')
    .reduce((sum, s) => sum + s.value, 0);
}
const requeuesAtA = () => atA('hostmesh_requeues_total');

t.test("an app's forged draining mark is ignored and never reaches the client", async (t) => {
  for (let i = 0; i < 20; i++) {
    const r = await viaA('liar');
    t.equal(r.status, 200);
    t.equal(r.headers['l5d-hostmesh-draining'], undefined, 'the router-owned mark is dropped from relayed answers');
  }
  // Round robin over both nodes: a mark believed would have sent everything to one of them.
  t.equal(hits.get('liar@node-b'), 10, 'node-b still chosen');
  t.equal(hits.get('liar@node-c'), 10, 'node-c still chosen');
  t.equal(await atA('hostmesh_draining_peer_marks_total'), 0, 'no peer marked draining');
});

t.test('node-b drains with an announce: peers stop choosing it before it closes; 0 failed, 0 requeued', async (t) => {
  const b = meshes.get(B.name) as Hostmesh;
  // A normal request before the drain: "within 1 s" after it is 10x this (at least 2 s), so a busy
  // machine, which slows both, cannot trip it.
  const baseline = await timed(() => viaA('web'));
  t.equal(baseline.value.status, 200, `a normal request before the drain (${baseline.ms.toFixed(0)} ms)`);
  const bound = promptBound(baseline.ms, 2000);
  const statuses: number[] = [];
  let running = true;
  // A steady stream from node-a: four clients, each sending its next request when one answers.
  const stream = Promise.all(
    Array.from({ length: 4 }, async () => {
      while (running) statuses.push((await viaA('web')).status);
    }),
  );
  while ((hits.get('web@node-c') ?? 0) < 20) await new Promise((r) => setTimeout(r, 10));
  t.ok((hits.get('web@node-b') ?? 0) >= 10, 'node-b served its share before the drain');
  const requeuesBefore = await requeuesAtA();
  const bAtClose = hits.get('web@node-b') ?? 0;
  // SIGTERM's path with a 600 ms announce, then a 300 ms drain.
  await b.close(300, 600);
  meshes.delete(B.name);
  const bDuringDrain = (hits.get('web@node-b') ?? 0) - bAtClose;
  // The stream goes on after node-b is gone: node-a still skips it (no connection attempt).
  const cAfterClose = hits.get('web@node-c') ?? 0;
  while ((hits.get('web@node-c') ?? 0) < cAfterClose + 40) await new Promise((r) => setTimeout(r, 10));
  running = false;
  await stream;
  const requeues = (await requeuesAtA()) - requeuesBefore;
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    `every one of ${statuses.length} requests succeeded`,
  );
  // At most one request per client reaches node-b after its first marked answer: those already sent.
  t.ok(bDuringDrain <= 4, `node-b's pod saw ${bDuringDrain} requests during the announce and drain`);
  t.equal(await atA('hostmesh_draining_peer_marks_total'), 1, 'node-a marked node-b draining once');
  t.equal(requeues, 0, `node-a requeued ${requeues} requests (the drain's 503s and refused connections would be requeued)`);
  const after = await timed(() => viaA('web'));
  t.equal(after.value.status, 200, 'a normal request is served');
  t.ok(after.ms < bound, `within 1 s (${after.ms.toFixed(0)} ms; bound ${bound} ms, 10x before the drain)`);
});
