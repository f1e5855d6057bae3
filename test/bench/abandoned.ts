// `npm run bench:abandoned`: issue 22's two figures.
//  1. A client writes 5,000 pipelined GETs and closes after 0.5 s; the app answers each in 4 ms.
//     Printed: what reached the app, what was dropped unsent, in-flight once settled, heap growth.
//     (Before: all 5,000 reached the app over ~20 s and in-flight stayed at ~4,999.)
//  2. Two routers over mTLS (node-a outgoing -> node-b incoming, default retry settings at both)
//     and an app answering every request 503 + l5d-retryable: true. Printed: the app's arrivals
//     for one POST. (Before: up to 11 x 11; 113 were seen.)

import http from 'node:http';
import net from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig } from '../../src/config/types.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { fsNodeConfig } from '../helpers/fs-node.js';
import { request } from '../helpers/http.js';
import { listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const HOST = '127.0.0.1';
const N = Number(process.env['PIPELINED'] ?? 5000);

async function metric(port: number, name: string): Promise<number> {
  const samples = parsePrometheus((await request({ host: HOST, port, path: '/metrics' })).body);
  return samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
}

async function pipelined(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-pipe-'));
  let hits = 0;
  const app = http.createServer((req, res) => {
    hits++;
    req.resume();
    setTimeout(() => res.end('ok\n'), 4);
  });
  await listen(app, HOST);
  await writeFile(join(dir, 'world'), `${HOST} ${(app.address() as net.AddressInfo).port}\n`);
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: '/svc => /#/io.l5d.fs;',
        identifier: [],
        transformers: [],
        servers: [{ ip: HOST, port }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 0,
    baseDir: dir,
  };
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const s = net.connect(port, HOST, () => s.write(Array.from({ length: N }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: world\r\n\r\n`).join('')));
  s.on('error', () => undefined);
  s.resume();
  await new Promise((r) => setTimeout(r, 500));
  s.destroy();
  const started = Date.now();
  let inFlight = await metric(admin, 'hostmesh_requests_in_flight');
  while (inFlight > 0 && Date.now() - started < 30_000) {
    await new Promise((r) => setTimeout(r, 100));
    inFlight = await metric(admin, 'hostmesh_requests_in_flight');
  }
  // Anything still on its way would show in the next second.
  const settled = hits;
  await new Promise((r) => setTimeout(r, 1000));
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const dropped = await metric(admin, 'hostmesh_pipeline_dropped_total');
  const paused = await metric(admin, 'hostmesh_pipeline_paused_total');
  console.log(
    `abandoned pipeline: ${N} pipelined GETs, client gone after 0.5 s: the app received ${hits} (${hits - settled} after settling), ${dropped} dropped unsent, ` +
      `the rest never read (paused ${paused}x at maxPipelinedRequests 32); in-flight ${inFlight} after ${Date.now() - started - 1000} ms; ` +
      `heap ${((heapAfter - heapBefore) / 1e6).toFixed(1)} MB over before${global.gc === undefined ? ' (run with --expose-gc for a settled heap)' : ''}`,
  );
  await mesh.close(0);
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
  await rm(dir, { recursive: true, force: true });
}

async function retries(): Promise<void> {
  const NODES = [
    { name: 'node-a', ip: '127.0.0.2' },
    { name: 'node-b', ip: '127.0.0.3' },
  ] as const;
  const [outgoing, incoming, admin] = (await freePorts(NODES[0].ip, 3)) as [number, number, number];
  const ports = { outgoing, incoming, admin };
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-retry-'));
  const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', NODES);
  let arrivals = 0;
  const app = http.createServer((req, res) => {
    arrivals++;
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'l5d-retryable': 'true' });
      res.end('busy\n');
    });
  });
  await listen(app, '127.0.0.31');
  await mkdir(join(dir, 'ns'));
  await writeFile(join(dir, 'ns', 'hostmesh'), NODES.map((n) => `${n.ip} ${incoming} node=${n.name}`).join('\n') + '\n');
  await writeFile(join(dir, 'ns', 'counter'), `127.0.0.31 ${(app.address() as net.AddressInfo).port} node=node-b\n`);
  const meshes = [];
  for (const n of NODES) {
    const certs = pki.nodes.get(n.name) as { cert: string; key: string };
    meshes.push(
      await startHostmesh(fsNodeConfig(n, { ports, certs: { ca: pki.ca, ...certs }, rootDir: join(dir, 'ns'), baseDir: dir, shutdownGraceMs: 100 }), {
        logger: silentLogger(),
      }),
    );
  }
  const r = await request({ host: NODES[0].ip, port: outgoing, path: '/', method: 'POST', headers: { host: 'counter', 'content-length': '7' } }, 'payload');
  console.log(
    `retries across two hops: one POST answered 503 + l5d-retryable: true reached the app ${arrivals} times (default maxRetriesPerRequest 10 at both routers; ` +
      `the outgoing one retries): answer ${r.status}, l5d-retryable to the pod ${r.headers['l5d-retryable'] ?? 'absent'}`,
  );
  await Promise.all(meshes.map((m) => m.close(100)));
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
  await rm(dir, { recursive: true, force: true });
}

await pipelined();
await retries();
