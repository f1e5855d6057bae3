// Deadlines end to end (issue 18): l5d-ctx-deadline over two routers (mTLS between nodes) to a
// backend that sleeps, service.totalTimeoutMs and client.requestAttemptTimeoutMs on one router.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import t from 'tap';
import type { HostmeshConfig, RouterConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { parseDeadline } from '../../src/router/deadline.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { request } from '../helpers/http.js';
import { A, B, listen, startMesh, type TestMesh } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound, timed } from '../helpers/prompt.js';
import { testRouter } from '../helpers/router-config.js';

const HOST = '127.0.0.1';
const SLEEP_MS = 1000;

/** What the backend saw: requests open now, requests cancelled under it, the deadlines it was given. */
const backendState = { open: 0, aborted: 0, answered: 0, hits: 0, deadlines: [] as (string | undefined)[] };
const slowOnce = new Set<string>();
let backend: http.Server;
let mesh: TestMesh;
let single: Hostmesh;
let ports: { total: number; attempt: number; admin: number };

t.before(async () => {
  backend = await listen(
    http.createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/__ready') return void res.end('ready\n');
      backendState.hits++;
      req.resume();
      // /sleep always takes SLEEP_MS; /slow-once/<k> only the first time for each k.
      const slow = path === '/sleep' || (path.startsWith('/slow-once/') && !slowOnce.has(path));
      slowOnce.add(path);
      if (!slow) return void res.end('ok\n');
      backendState.open++;
      backendState.deadlines.push(req.headers['l5d-ctx-deadline'] as string | undefined);
      const timer = setTimeout(() => {
        backendState.answered++;
        res.end('late\n');
      }, SLEEP_MS);
      res.on('close', () => {
        backendState.open--;
        if (!res.writableFinished) {
          // The router cancelled the request: the backend stops working on it.
          backendState.aborted++;
          clearTimeout(timer);
        }
      });
    }),
    HOST,
  );
  mesh = await startMesh();
  await mesh.register('sleepy', backend);

  const backendPort = (backend.address() as { port: number }).port;
  const [total, attempt, admin] = (await freePorts(HOST, 3)) as [number, number, number];
  ports = { total, attempt, admin };
  const router = (label: string, port: number, extra: Partial<RouterConfig>): RouterConfig =>
    testRouter(label, HOST, port, `/svc => /$/inet/${HOST}/${backendPort};`, extra);
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers: [
      router('total', total, { service: { totalTimeoutMs: 200 } }),
      router('attempt', attempt, {
        service: { responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' } },
        client: { loadBalancer: { kind: 'p2c' }, requestAttemptTimeoutMs: 200 },
      }),
    ],
    shutdownGraceMs: 100,
    baseDir: process.cwd(),
  };
  single = await startHostmesh(config, { logger: silentLogger() });
});

t.teardown(async () => {
  await single.close(100);
  await mesh.close();
  backend.closeAllConnections();
  await new Promise((r) => backend.close(r));
});

const ns = (ms: number): string => `${BigInt(Math.trunc(ms)) * 1_000_000n}`;
/** An l5d-ctx-deadline `ms` from now (negative: already past). */
const deadlineIn = (ms: number): string => `${ns(Date.now())} ${ns(Date.now() + ms)}`;
const err = (r: { headers: http.IncomingHttpHeaders }): string => decodeURIComponent(String(r.headers['l5d-err']));
const viaA = (path: string, headers: http.OutgoingHttpHeaders = {}) => request({ host: A, port: mesh.ports.outgoing, path, headers });

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metric(host: string, port: number, name: string, labels: Record<string, string>): Promise<number> {
  const r = await request({ host, port, path: '/metrics' });
  return parsePrometheus(r.body).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
}

t.test('a 100 ms l5d-ctx-deadline over two hops to a backend that sleeps 1 s: 503 TIMEOUT, the backend request cancelled', async (t) => {
  const before = { ...backendState };
  const sent = deadlineIn(100);
  const started = Date.now();
  const r = await viaA('http://sleepy/sleep', { 'l5d-ctx-deadline': sent });
  const took = Date.now() - started;
  t.equal(r.status, 503);
  t.match(err(r), /request deadline \(l5d-ctx-deadline\)/, `l5d-err: ${err(r)}`);
  t.ok(took < SLEEP_MS, `answered in ${took} ms, before the backend would have`);
  await until('the backend saw its request cancelled', () => backendState.aborted > before.aborted);
  t.equal(backendState.answered, before.answered, 'the backend never answered');
  // The next hop (and the app) got the same deadline: apps pass l5d-ctx-* on.
  const seen = parseDeadline(backendState.deadlines.at(-1));
  t.equal(seen?.deadline, parseDeadline(sent)?.deadline, 'the deadline reached the app unchanged');
  // Both hops hold the same deadline, so either may fire first (the other then relays or sees the
  // cancel): it is counted where it fired.
  const fired =
    (await metric(A, mesh.ports.admin, 'hostmesh_upstream_timeouts_total', { router: 'outgoing', kind: 'deadline' })) +
    (await metric(B, mesh.ports.admin, 'hostmesh_upstream_timeouts_total', { router: 'incoming', kind: 'deadline' }));
  t.ok(fired >= 1, `counted where it fired (${fired})`);
});

t.test('a deadline already past is answered at once and never forwarded', async (t) => {
  const hits = backendState.hits;
  for (let i = 0; i < 10; i++) {
    const r = await viaA('http://sleepy/sleep', { 'l5d-ctx-deadline': deadlineIn(-50) });
    t.equal(r.status, 503);
    t.match(err(r), /l5d-ctx-deadline.* ms ago: not forwarded/);
  }
  t.equal(backendState.hits, hits, 'the backend saw none of them');
  t.equal(await metric(A, mesh.ports.admin, 'hostmesh_upstream_timeouts_total', { router: 'outgoing', kind: 'deadline_passed' }), 10);
  // A bad value is ignored (as Linkerd 1 does): the request goes through.
  const ok = await viaA('http://world/', { 'l5d-ctx-deadline': 'tomorrow' });
  t.equal(ok.status, 200);
});

t.test('40 requests at once with 150 ms deadlines: all 503, none left open at the backend, the router serves others', async (t) => {
  // The normal request before the flood: "within 1 s" is 10x this (at least 2 s), so a busy
  // machine, which slows both, cannot trip it.
  const baseline = await timed(() => viaA('http://world/'));
  t.equal(baseline.value.status, 200, `a normal request before the flood (${baseline.ms.toFixed(0)} ms)`);
  const bound = promptBound(baseline.ms, 2000);
  const before = { ...backendState };
  const flood = Array.from({ length: 40 }, () => viaA('http://sleepy/sleep', { 'l5d-ctx-deadline': deadlineIn(150) }));
  const started = Date.now();
  const normal = await viaA('http://world/');
  const ms = Date.now() - started;
  t.equal(normal.status, 200, 'a normal request during the flood');
  t.ok(ms < bound, `answered within 1 s (${ms} ms; bound ${bound} ms, 10x before the flood)`);
  // By order: had it waited for a slot the flood holds past its deadline, the backend would have
  // answered a flood request first (each sleeps SLEEP_MS); it had answered none.
  t.equal(backendState.answered, before.answered, 'answered before any flood request ran its full sleep');
  const statuses = (await Promise.all(flood)).map((r) => r.status);
  t.same([...new Set(statuses)], [503]);
  await until('every cancelled request closed at the backend', () => backendState.open === 0);
  t.equal(backendState.answered, before.answered, 'the backend answered none');
  // Some waited in the endpoint's queue (per-source share) and timed out there, never sent.
  t.equal(backendState.aborted - before.aborted, backendState.hits - before.hits, 'each request the backend saw was cancelled');
});

t.test('service.totalTimeoutMs: 503 TIMEOUT, the upstream request cancelled, the deadline sent to the next hop', async (t) => {
  const before = { ...backendState };
  const started = Date.now();
  const r = await request({ host: HOST, port: ports.total, path: '/sleep', headers: { host: 'app' } });
  t.equal(r.status, 503);
  t.match(err(r), /totalTimeoutMs 200 ms/);
  t.ok(Date.now() - started < SLEEP_MS);
  await until('cancelled', () => backendState.aborted > before.aborted);
  const d = parseDeadline(backendState.deadlines.at(-1));
  t.ok(d !== undefined && d.deadline - d.timestamp === 200, 'the router propagated its own deadline');
  t.equal(await metric(HOST, ports.admin, 'hostmesh_upstream_timeouts_total', { router: 'total', kind: 'total' }), 1);
  t.equal((await request({ host: HOST, port: ports.total, path: '/fast', headers: { host: 'app' } })).status, 200, 'fast requests unaffected');
});

t.test('client.requestAttemptTimeoutMs: a timed-out GET is retried (retryableRead5XX), a POST is not', async (t) => {
  const before = { ...backendState };
  const r = await request({ host: HOST, port: ports.attempt, path: '/slow-once/get', headers: { host: 'app' } });
  t.equal(r.status, 200, 'the second attempt answered');
  t.equal(r.body, 'ok\n');
  await until('the first attempt cancelled', () => backendState.aborted > before.aborted);
  t.equal(await metric(HOST, ports.admin, 'hostmesh_upstream_timeouts_total', { router: 'attempt', kind: 'attempt' }), 1);
  t.equal(await metric(HOST, ports.admin, 'hostmesh_retries_total', { router: 'attempt', service: '/svc/app' }), 1);
  const post = await request(
    { host: HOST, port: ports.attempt, path: '/slow-once/post', method: 'POST', headers: { host: 'app', 'content-length': '2' } },
    'hi',
  );
  t.equal(post.status, 503);
  t.match(err(post), /requestAttemptTimeoutMs 200 ms/);
  t.equal(await metric(HOST, ports.admin, 'hostmesh_retries_total', { router: 'attempt', service: '/svc/app' }), 1, 'not retried');
});
