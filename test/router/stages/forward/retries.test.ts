// Retry budgets, backoff and resendable bodies (router/stages/forward/retries.ts, router/stages/forward/retry-body.ts) on an
// injected clock, then retries through a running router over real sockets.

import http from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import t from 'tap';
import type { HostmeshConfig, RouterConfig } from '../../../../src/config/types.js';
import { silentLogger } from '../../../../src/log.js';
import { backoffDelays, Budgets, RetryBudget } from '../../../../src/router/stages/forward/retries.js';
import { ReplayableBody } from '../../../../src/router/stages/forward/retry-body.js';
import { startHostmesh, type Hostmesh } from '../../../../src/app/hostmesh.js';
import { request } from '../../../helpers/http.js';
import { listen } from '../../../helpers/mesh.js';
import { freePorts } from '../../../helpers/ports.js';
import { parsePrometheus } from '../../../helpers/prometheus.js';
import { testRouter } from '../../../helpers/router-config.js';

t.test('budget: the reserve is minRetriesPerSec x ttlSecs, then percentCanRetry of the requests in the window', async (t) => {
  let now = 1_000_000;
  const b = new RetryBudget({ ttlSecs: 10, minRetriesPerSec: 1, percentCanRetry: 0.2 }, () => now);
  let n = 0;
  while (b.tryWithdraw()) n++;
  t.equal(n, 10, 'an idle client gets the reserve: 1 per second over 10 s');
  for (let i = 0; i < 100; i++) b.deposit();
  n = 0;
  while (b.tryWithdraw()) n++;
  t.equal(n, 20, '100 requests earn 20 retries');
  now += 5_000;
  t.notOk(b.tryWithdraw(), 'still spent 5 s later: deposits and withdrawals both count for ttlSecs');
  now += 5_000;
  t.equal(Math.round(b.balance()), 10, 'after ttlSecs the window is empty again: the reserve only');
});

t.test('budget: zero reserve and zero percentage allow nothing; percentCanRetry above 1 allows several per request', async (t) => {
  const none = new RetryBudget({ ttlSecs: 10, minRetriesPerSec: 0, percentCanRetry: 0 }, () => 0);
  for (let i = 0; i < 1000; i++) none.deposit();
  t.notOk(none.tryWithdraw());
  const many = new RetryBudget({ ttlSecs: 1, minRetriesPerSec: 0, percentCanRetry: 2 }, () => 0);
  many.deposit();
  t.ok(many.tryWithdraw());
  t.ok(many.tryWithdraw());
  t.notOk(many.tryWithdraw());
});

t.test('budget: a steady failing load is bounded at the percentage plus the reserve', async (t) => {
  let now = 0;
  const b = new RetryBudget({ ttlSecs: 10, minRetriesPerSec: 10, percentCanRetry: 0.2 }, () => now);
  let retries = 0;
  let requests = 0;
  // 200 requests per second for 60 s, every one wanting a retry.
  for (let s = 0; s < 60; s++) {
    for (let i = 0; i < 200; i++) {
      now = s * 1000 + i * 5;
      b.deposit();
      requests++;
      if (b.tryWithdraw()) retries++;
    }
  }
  t.ok(retries <= requests * 0.2 + 10 * 60 + 100, `${retries} retries for ${requests} requests`);
  t.ok(retries >= requests * 0.2, 'and the budget is used');
});

t.test('budgets per key are capped (least recently used dropped)', async (t) => {
  const budgets = new Budgets({ ttlSecs: 10, minRetriesPerSec: 0, percentCanRetry: 1 }, 3, () => 0);
  const a = budgets.get('/svc/a');
  a.deposit();
  for (const k of ['/svc/b', '/svc/c', '/svc/d']) budgets.get(k);
  t.equal(budgets.size, 3);
  t.not(budgets.get('/svc/a'), a, 'the oldest went first');
  const d = budgets.get('/svc/d');
  t.equal(budgets.get('/svc/d'), d, 'a used one stays');
});

t.test('backoff: constant, and decorrelated jitter between minMs and maxMs', async (t) => {
  const c = backoffDelays({ kind: 'constant', ms: 25 });
  t.same([c(), c(), c()], [25, 25, 25]);
  const top = backoffDelays({ kind: 'jittered', minMs: 10, maxMs: 1000 }, () => 1);
  t.same([top(), top(), top(), top(), top(), top()], [30, 90, 270, 810, 1000, 1000], 'at most three times the previous delay, capped');
  const bottom = backoffDelays({ kind: 'jittered', minMs: 10, maxMs: 1000 }, () => 0);
  t.same([bottom(), bottom()], [10, 10], 'never below minMs');
});

async function readAll(s: Readable): Promise<string> {
  let text = '';
  for await (const c of s) text += (c as Buffer).toString();
  return text;
}

t.test('body: a second attempt gets every byte, those kept and those still to come', async (t) => {
  const src = new PassThrough();
  const body = new ReplayableBody(src, 1024);
  const first = body.attempt();
  src.write('hello ');
  await new Promise((r) => setImmediate(r));
  first.destroy(); // the attempt failed
  t.ok(body.replayable);
  const second = body.attempt();
  src.end('world');
  t.equal(await readAll(second), 'hello world');
});

t.test('body: past the buffer it cannot be resent', async (t) => {
  const src = new PassThrough();
  const body = new ReplayableBody(src, 8);
  const first = body.attempt();
  const reading = readAll(first);
  src.end('0123456789abcdef');
  t.equal(await reading, '0123456789abcdef', 'the first attempt streams it all');
  t.notOk(body.replayable);
  t.equal(body.keptBytes, 0, 'nothing is held once past the bound');
  t.throws(() => body.attempt(), /retry buffer/);
});

// --- Through a running router: a backend whose paths under /once/ fail the first time. ---

const HOST = '127.0.0.1';
let mesh: Hostmesh;
let backend: http.Server;
let ports: { read: number; plain: number; stingy: number; admin: number };
const seen = new Map<string, number>();
const bodies: string[] = [];

t.before(async () => {
  backend = await listen(
    http.createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const path = req.url ?? '/';
        const n = (seen.get(path) ?? 0) + 1;
        seen.set(path, n);
        if (req.method === 'POST') bodies.push(text);
        if (path.startsWith('/once/') && n === 1) {
          res.writeHead(503, path.includes('marked') ? { 'l5d-retryable': 'true' } : {});
          res.end('busy\n');
          return;
        }
        if (path.startsWith('/always/')) {
          res.writeHead(503);
          res.end('down\n');
          return;
        }
        res.end(`ok ${n}\n`);
      });
    }),
    HOST,
  );
  const backendPort = (backend.address() as { port: number }).port;
  const [read, plain, stingy, admin] = (await freePorts(HOST, 4)) as [number, number, number, number];
  ports = { read, plain, stingy, admin };
  const router = (label: string, port: number, service: RouterConfig['service']): RouterConfig =>
    testRouter(label, HOST, port, `/svc => /$/inet/${HOST}/${backendPort};`, service !== undefined ? { service } : {});
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers: [
      router('read', read, { responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' } }),
      router('plain', plain, undefined),
      router('stingy', stingy, {
        responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' },
        retries: { budget: { minRetriesPerSec: 0, percentCanRetry: 0 } },
      }),
    ],
    shutdownGraceMs: 100,
    baseDir: process.cwd(),
  };
  mesh = await startHostmesh(config, { logger: silentLogger() });
});

t.teardown(async () => {
  await mesh.close(100);
  backend.closeAllConnections();
  await new Promise((r) => backend.close(r));
});

const via = (port: number, path: string, method = 'GET', body?: string) =>
  request({ host: HOST, port, path, method, headers: { host: 'app', ...(body !== undefined ? { 'content-length': String(body.length) } : {}) } }, body);

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const r = await request({ host: HOST, port: ports.admin, path: '/metrics' });
  return parsePrometheus(r.body).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
}

t.test('retryableRead5XX: a GET that fails once is retried and succeeds; the class is in l5d-success-class', async (t) => {
  for (let i = 0; i < 20; i++) {
    const r = await via(ports.read, `/once/read-${i}`);
    t.equal(r.status, 200);
    t.equal(r.body, 'ok 2\n', 'the second attempt answered');
    t.equal(r.headers['l5d-success-class'], '1.0');
  }
  t.equal(await metric('hostmesh_retries_total', { router: 'read', service: '/svc/app' }), 20);
});

t.test('a POST is not a read: its 503 is relayed, once, as a failure', async (t) => {
  const r = await via(ports.read, '/once/post-1', 'POST', 'payload');
  t.equal(r.status, 503);
  t.equal(r.headers['l5d-success-class'], '0.0');
  t.equal(seen.get('/once/post-1'), 1);
});

t.test('l5d-retryable: true from the answer is honoured for any method; the body is sent again whole', async (t) => {
  bodies.length = 0;
  const r = await via(ports.plain, '/once/marked-1', 'POST', 'the same bytes');
  t.equal(r.status, 200);
  t.same(bodies, ['the same bytes', 'the same bytes']);
});

t.test('the default classifier (nonRetryable5XX) retries nothing', async (t) => {
  const r = await via(ports.plain, '/once/plain-1');
  t.equal(r.status, 503);
  t.equal(r.headers['l5d-success-class'], '0.0');
  t.equal(seen.get('/once/plain-1'), 1);
});

t.test('an empty budget: the failure is relayed and counted; the router keeps serving', async (t) => {
  const r = await via(ports.stingy, '/once/stingy-1');
  t.equal(r.status, 503);
  t.equal(seen.get('/once/stingy-1'), 1);
  t.equal(await metric('hostmesh_retry_budget_exhausted_total', { router: 'stingy', kind: 'retry' }), 1);
  t.equal((await via(ports.stingy, '/fine')).status, 200);
});

t.test("the router's own error that reached no app says so: l5d-retryable: true (Linkerd 1)", async (t) => {
  const r = await request({ host: HOST, port: ports.plain, path: '/', headers: { host: 'app', 'l5d-dtab': `/svc/app => /$/inet/${HOST}/1` } });
  t.equal(r.status, 502);
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), /cannot reach/);
  t.equal(r.headers['l5d-retryable'], 'true');
  t.equal(r.headers['l5d-hostmesh-requeue'], undefined, 'the requeue mark is only for peer routers');
  const route = await request({ host: HOST, port: ports.plain, path: '/', headers: { host: 'app', 'l5d-dtab': '/svc/app => /$/nil' } });
  t.equal(route.status, 502);
  t.equal(route.headers['l5d-retryable'], undefined, 'a name that does not bind is not worth resending');
});

t.test('a backend failing everything: retries stop at the per-request bound and the budget', async (t) => {
  const before = await metric('hostmesh_retries_total', { router: 'read', service: '/svc/app' });
  let backendHits = 0;
  for (let i = 0; i < 30; i++) {
    const r = await via(ports.read, `/always/${i}`);
    t.equal(r.status, 503);
    backendHits += seen.get(`/always/${i}`) ?? 0;
  }
  const retried = (await metric('hostmesh_retries_total', { router: 'read', service: '/svc/app' })) - before;
  t.equal(backendHits, 30 + retried, 'each attempt reached the backend once');
  // Reserve 100 (10 per s x 10 s) plus 20% of the 50 requests so far: about 110, all taken.
  t.ok(retried <= 30 * 10, 'at most maxRetriesPerRequest (10) each');
  t.ok(retried <= 100 + 0.2 * 51 + 1 - 20, `the budget bounds them: ${retried}`);
  t.ok((await metric('hostmesh_retry_budget_exhausted_total', { router: 'read', kind: 'retry' })) > 0, 'and it ran out');
});
