// Retries across the two hops (node-a's outgoing router -> node-b's incoming router over mTLS ->
// the app): an app answering 503 with l5d-retryable: true is retried by the outgoing router only,
// so one request reaches the app at most 1 + its maxRetriesPerRequest times (before: each of
// node-a's attempts was retried up to 10 times by node-b: 113 arrivals for one POST). Nothing a
// pod sends changes which hop retries.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RouterConfig } from '../../src/config/types.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { fsNodeConfig } from '../helpers/fs-node.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { listen } from '../helpers/mesh.js';

const NODES = [
  { name: 'node-a', ip: '127.0.0.2' },
  { name: 'node-b', ip: '127.0.0.3' },
] as const;
const [A] = NODES;
/** The outgoing router's retry limit here (the incoming router keeps the default, 10). */
const LIMIT = 3;

let dir: string;
let ports: { outgoing: number; incoming: number; admin: number };
const meshes: Hostmesh[] = [];
/** Arrivals at the app per path. */
const arrivals = new Map<string, number>();
let app: http.Server;

t.before(async () => {
  const [outgoing, incoming, admin] = (await freePorts(A.ip, 3)) as [number, number, number];
  ports = { outgoing, incoming, admin };
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-retry-hop-'));
  const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', NODES);
  // The app, on node-b: always busy, and says the request is safe to send again.
  app = await listen(
    http.createServer((req, res) => {
      arrivals.set(req.url ?? '/', (arrivals.get(req.url ?? '/') ?? 0) + 1);
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'l5d-retryable': 'true' });
        res.end('busy\n');
      });
    }),
    '127.0.0.31',
  );
  const appPort = (app.address() as { port: number }).port;
  await mkdir(join(dir, 'ns'));
  await writeFile(join(dir, 'ns', 'hostmesh'), NODES.map((n) => `${n.ip} ${ports.incoming} node=${n.name}`).join('\n') + '\n');
  await writeFile(join(dir, 'ns', 'counter'), `127.0.0.31 ${appPort} node=node-b\n`);
  for (const n of NODES) {
    const certs = pki.nodes.get(n.name) as { cert: string; key: string };
    const config = fsNodeConfig(n, { ports, certs: { ca: pki.ca, ...certs }, rootDir: join(dir, 'ns'), baseDir: dir, shutdownGraceMs: 100 });
    // Generous budgets at both hops: only the per-request limit and the one-hop rule bound retries.
    const budget = { ttlSecs: 10, minRetriesPerSec: 1000, percentCanRetry: 1 };
    config.routers = config.routers.map(
      (r): RouterConfig =>
        r.label === 'outgoing'
          ? { ...r, service: { retries: { budget, maxRetriesPerRequest: LIMIT } } }
          : { ...r, service: { retries: { budget, maxRetriesPerRequest: 10 } } },
    );
    meshes.push(await startHostmesh(config, { logger: silentLogger() }));
  }
});

t.teardown(async () => {
  await Promise.all(meshes.map((m) => m.close(100)));
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
  await rm(dir, { recursive: true, force: true });
});

const post = (path: string, headers: Record<string, string> = {}) =>
  request({ host: A.ip, port: ports.outgoing, path, method: 'POST', headers: { host: 'counter', 'content-length': '7', ...headers } }, 'payload');

t.test('one POST answered 503 l5d-retryable reaches the app 1 + the outgoing limit times, not more', async (t) => {
  const r = await post('/once');
  t.equal(r.status, 503, "the app's answer is relayed");
  t.equal(r.body, 'busy\n');
  t.equal(r.headers['l5d-success-class'], '0.0');
  t.equal(r.headers['l5d-retryable'], undefined, 'the hop that retried does not tell the pod to retry again');
  t.equal(arrivals.get('/once'), 1 + LIMIT, `the app saw it ${1 + LIMIT} times (node-a's first attempt and ${LIMIT} retries; node-b retried none)`);
});

t.test('nothing a pod sends makes either hop retry more (or the incoming router retry at all)', async (t) => {
  const forged = {
    'l5d-retryable': 'true',
    'l5d-hostmesh-requeue': 'no-local-endpoint',
    'l5d-hostmesh-draining': '1',
    'l5d-success-class': '1.0',
    'l5d-ctx-retries': '0',
  };
  const r = await post('/forged', forged);
  t.equal(r.status, 503);
  t.equal(arrivals.get('/forged'), 1 + LIMIT, 'the same bound');
});

t.test('many POSTs: every one is bounded the same way', async (t) => {
  for (let i = 0; i < 10; i++) await post(`/many-${i}`);
  for (let i = 0; i < 10; i++) t.equal(arrivals.get(`/many-${i}`), 1 + LIMIT, `/many-${i}`);
});
