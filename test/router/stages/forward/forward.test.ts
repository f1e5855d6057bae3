// The forward stage alone (stages/forward/forward.ts) between a real front server and real node http
// backends on 127.0.0.1: requeues, retries within budget, the retry buffer, deadlines, the relayed head.

import http from 'node:http';
import { clockWithNow } from '../../../../src/core/clock.js';
import t from 'tap';
import { parsePath } from '../../../../src/dtab/parse.js';
import { silentLogger } from '../../../../src/log.js';
import type { Addr, BoundName, Endpoint } from '../../../../src/namer/addr.js';
import { Var } from '../../../../src/namer/var.js';
import { classifier, type ClassifierKind, h2Classifier } from '../../../../src/router/stages/forward/classifier.js';
import type { RequestContext } from '../../../../src/router/context.js';
import type { RequestDeadline } from '../../../../src/router/deadline.js';
import { DrainingPeers } from '../../../../src/router/stages/concrete/draining-peers.js';
import { clientLimits, EndpointPools, endpointKey } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { accrualKey, FailureAccrual } from '../../../../src/router/stages/concrete/failure-accrual.js';
import type { RequeueReason } from '../../../../src/router/stages/forward/requeue.js';
import { type BudgetConfig, Budgets, DEFAULT_BUDGET, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../../../src/router/stages/forward/retries.js';
import type { RoutePlan } from '../../../../src/router/route-plan.js';
import { EndpointStage } from '../../../../src/router/stages/endpoint/endpoint.js';
import { ForwardStage, type TimeoutKind } from '../../../../src/router/stages/forward/forward.js';
import { rescue } from '../../../../src/server/rescue.js';
import { type Reply, request } from '../../../helpers/http.js';
import { listen } from '../../../helpers/mesh.js';
import { ManualClock } from '../../../helpers/manual-clock.js';
import { freePort } from '../../../helpers/ports.js';
import { eventually } from '../../../helpers/sockets.js';
import { routerEvents } from '../../../../src/router/events.js';

const HOST = '127.0.0.1';
const CLIENT = '/#/t/web';
const NONE: BudgetConfig = { ttlSecs: 10, minRetriesPerSec: 0, percentCanRetry: 0 };

/** What one backend answers, in turn (the last one repeats): a status and headers, or 'hang'. */
type Answer = { status: number; headers?: Record<string, string> } | 'hang';

interface Backend {
  endpoint: Endpoint;
  /** Requests seen, with their bodies. */
  seen: { method: string; url: string; body: string; aborted: boolean }[];
}

async function backend(t: { teardown(fn: () => unknown): void }, answers: Answer[]): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const server = http.createServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', body: '', aborted: false };
    seen.push(entry);
    const answer = answers.length > 1 ? (answers.shift() as Answer) : (answers[0] as Answer);
    req.setEncoding('utf8');
    req.on('data', (c: string) => (entry.body += c));
    res.on('close', () => (entry.aborted = !res.writableFinished));
    req.on('end', () => {
      if (answer === 'hang') return;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(`from ${(server.address() as { port: number }).port}\n`);
    });
  });
  await listen(server, HOST);
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { endpoint: { host: HOST, port: (server.address() as { port: number }).port, meta: {} }, seen };
}

interface Options {
  endpoints: Endpoint[];
  classify?: ClassifierKind;
  retries?: Partial<RetryPolicy>;
  requeueBudget?: BudgetConfig;
  attemptTimeoutMs?: number;
  /** The plan trusts router marks (the endpoints are peer routers over mTLS). */
  tls?: boolean;
  deadline?: (now: number) => RequestDeadline;
  /** Failure accrual of the endpoint stage (default: off). */
  accrual?: FailureAccrual;
  /** The context carries the bound client, as Router.#plan sets it (default true). */
  ctxClient?: boolean;
}

interface Front {
  port: number;
  clock: { now: number };
  /** The stage's timers (attempt timeouts, deadlines): they fire when the test advances them. */
  timers: ManualClock;
  requeues: RequeueReason[];
  retries: string[];
  sleeps: number[];
  timeouts: TimeoutKind[];
  exhausted: string[];
  draining: DrainingPeers;
  /** Runs during an injected sleep (advance the clock). */
  onSleep: (ms: number) => void;
}

/** A front server that forwards every request through a ForwardStage to `endpoints` (first first). */
async function front(t: { teardown(fn: () => unknown): void }, o: Options): Promise<Front> {
  const pools = new EndpointPools(undefined, { limits: clientLimits({ headersTimeoutMs: 5_000 }) });
  t.teardown(() => pools.close());
  const f: Front = {
    port: 0,
    clock: { now: 1_000_000 },
    timers: new ManualClock(),
    requeues: [],
    retries: [],
    sleeps: [],
    timeouts: [],
    exhausted: [],
    draining: new DrainingPeers({ clock: clockWithNow(() => f.clock.now) }),
    onSleep: () => undefined,
  };
  const now = (): number => f.clock.now;
  const retries: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...o.retries };
  const stage = new ForwardStage({
    endpoints: new EndpointStage({ pools, accrual: o.accrual ?? new FailureAccrual({ policy: { kind: 'none' }, backoff: { kind: 'constant', ms: 0 } }) }),
    // The test's time for deadlines and budgets; timers fire when the test advances f.timers.
    clock: { now, schedule: (ms, fn) => f.timers.schedule(ms, fn) },
    drainingPeers: f.draining,
    service: () => ({ retries, classify: classifier(o.classify), classifyH2: h2Classifier(undefined), retryBudgets: serviceBudgets }),
    client: () => ({ requestAttemptTimeoutMs: o.attemptTimeoutMs, requeueBudgets: clientBudgets }),
    random: () => 0.5,
    sleep: async (ms) => {
      f.sleeps.push(ms);
      f.onSleep(ms);
    },
    events: routerEvents({
      timeout: (k) => f.timeouts.push(k),
      requeue: (r) => f.requeues.push(r),
      retry: (s) => f.retries.push(s),
      budgetExhausted: (k) => f.exhausted.push(k),
    }),
  });
  const serviceBudgets = new Budgets(retries.budget, 10, now);
  const clientBudgets = new Budgets(o.requeueBudget ?? DEFAULT_BUDGET, 10, now);
  const name: BoundName = { id: parsePath(CLIENT), residual: parsePath('/'), addr: new Var<Addr>({ kind: 'bound', endpoints: o.endpoints }) };
  const server = http.createServer((req, res) => {
    const ctx: RequestContext = { direction: 'outbound', service: '/svc/web', ...(o.ctxClient === false ? {} : { client: CLIENT }) };
    if (o.deadline !== undefined) ctx.deadline = o.deadline(f.clock.now);
    const plan: RoutePlan = {
      method: req.method ?? 'GET',
      service: parsePath('/svc/web'),
      name,
      endpoint: o.endpoints[0] as Endpoint,
      another: (exclude) => o.endpoints.find((e) => !exclude.has(endpointKey(e))),
      target: req.url ?? '/',
      headers: { host: 'web', ...(req.headers['content-length'] !== undefined ? { 'content-length': req.headers['content-length'] } : {}) },
      deadline: ctx.deadline,
      tls: o.tls === true,
      tlsOptions: undefined,
      connectTimeoutMs: 10_000,
    };
    stage.forward(req, res, plan, ctx).catch((err: unknown) => rescue(res, err, ctx, silentLogger()));
  });
  await listen(server, HOST);
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  f.port = (server.address() as { port: number }).port;
  return f;
}

const send = (f: Front, method = 'GET', body?: string): Promise<Reply> =>
  request({ host: HOST, port: f.port, method, path: '/p', headers: body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) } }, body);

/** An endpoint nothing listens on: connecting is refused. */
async function refused(): Promise<Endpoint> {
  return { host: HOST, port: await freePort(HOST), meta: {} };
}

t.test('a refused connection is requeued at once to another endpoint; the app answers once', async (t) => {
  const dead = await refused();
  const b = await backend(t, [{ status: 200 }]);
  const f = await front(t, { endpoints: [dead, b.endpoint] });
  const r = await send(f);
  t.equal(r.status, 200);
  t.equal(r.body, `from ${b.endpoint.port}\n`);
  t.equal(r.headers['l5d-success-class'], '1.0');
  t.equal(b.seen.length, 1);
  t.same(f.requeues, ['connect_failed']);
  t.same(f.sleeps, [], 'a requeue does not back off');
});

t.test('nothing to requeue on, or no requeue budget: a 502 CONNECT_FAILED naming the address', async (t) => {
  const dead = await refused();
  const alone = await front(t, { endpoints: [dead] });
  const r = await send(alone);
  t.equal(r.status, 502);
  t.equal(decodeURIComponent(r.headers['l5d-err'] as string).startsWith(`cannot reach ${HOST}:${dead.port}:`), true, String(r.headers['l5d-err']));
  t.same(alone.requeues, []);

  const b = await backend(t, [{ status: 200 }]);
  const stingy = await front(t, { endpoints: [dead, b.endpoint], requeueBudget: NONE });
  const s = await send(stingy);
  t.equal(s.status, 502);
  t.match(decodeURIComponent(s.headers['l5d-err'] as string), `cannot reach ${HOST}:${dead.port}`);
  t.same(stingy.exhausted, ['requeue']);
  t.equal(b.seen.length, 0, 'the other endpoint never saw it');
});

t.test('a retryable 503 is retried after the (injected) backoff within the budget', async (t) => {
  const b = await backend(t, [{ status: 503 }, { status: 200 }]);
  const f = await front(t, { endpoints: [b.endpoint], classify: 'io.l5d.http.retryableRead5XX', retries: { backoff: { kind: 'constant', ms: 250 } } });
  const r = await send(f);
  t.equal(r.status, 200);
  t.equal(r.headers['l5d-success-class'], '1.0');
  t.equal(b.seen.length, 2);
  t.same(f.retries, ['/svc/web']);
  t.same(f.sleeps, [250], 'slept the backoff (instantly)');

  const always = await backend(t, [{ status: 503 }]);
  const capped = await front(t, { endpoints: [always.endpoint], classify: 'io.l5d.http.retryableRead5XX', retries: { maxRetriesPerRequest: 2 } });
  const c = await send(capped);
  t.equal(c.status, 503, "past maxRetriesPerRequest the app's last answer is relayed");
  t.equal(c.headers['l5d-success-class'], '0.0');
  t.equal(always.seen.length, 3, 'one attempt and two retries');

  const none = await backend(t, [{ status: 503 }, { status: 200 }]);
  const stingy = await front(t, {
    endpoints: [none.endpoint],
    classify: 'io.l5d.http.retryableRead5XX',
    retries: { budget: NONE },
  });
  const s = await send(stingy);
  t.equal(s.status, 503);
  t.equal(none.seen.length, 1, 'an empty budget: no retry');
  t.same(stingy.exhausted, ['retry']);

  const post = await backend(t, [{ status: 503 }, { status: 200 }]);
  const reads = await front(t, { endpoints: [post.endpoint], classify: 'io.l5d.http.retryableRead5XX' });
  t.equal((await send(reads, 'POST', 'x')).status, 503, 'a POST is not a read: not retried');
  t.equal(post.seen.length, 1);
});

t.test('a body is sent again only while it fits the retry buffer', async (t) => {
  const small = await backend(t, [{ status: 503 }, { status: 200 }]);
  const f = await front(t, { endpoints: [small.endpoint], classify: 'io.l5d.http.retryableIdempotent5XX', retries: { requestBufferBytes: 64 } });
  t.equal((await send(f, 'PUT', 'a small body')).status, 200);
  t.same(
    small.seen.map((s) => s.body),
    ['a small body', 'a small body'],
    'the retry carried the same body',
  );

  const big = await backend(t, [{ status: 503 }, { status: 200 }]);
  const g = await front(t, { endpoints: [big.endpoint], classify: 'io.l5d.http.retryableIdempotent5XX', retries: { requestBufferBytes: 64 } });
  const body = 'x'.repeat(1000);
  const r = await send(g, 'PUT', body);
  t.equal(r.status, 503, 'past the buffer the 503 is relayed, not retried');
  t.equal(big.seen.length, 1);
  t.equal(big.seen[0]?.body.length, 1000, 'the one attempt had the whole body');
  t.same(g.retries, []);
});

t.test('deadlines on the injected clock: past before the first attempt, or passed during backoff', async (t) => {
  const b = await backend(t, [{ status: 200 }]);
  const past = await front(t, { endpoints: [b.endpoint], deadline: (now) => ({ at: now - 1, source: 'total', wire: { timestamp: now, deadline: now - 1 } }) });
  const r = await send(past);
  t.equal(r.status, 503);
  t.match(decodeURIComponent(r.headers['l5d-err'] as string), /total timeout/);
  t.equal(b.seen.length, 0, 'never sent');
  t.same(past.timeouts, ['total']);

  const flaky = await backend(t, [{ status: 503 }, { status: 200 }]);
  const f = await front(t, {
    endpoints: [flaky.endpoint],
    classify: 'io.l5d.http.retryableRead5XX',
    retries: { backoff: { kind: 'constant', ms: 500 } },
    deadline: (now) => ({ at: now + 300, source: 'header', wire: { timestamp: now, deadline: now + 300 } }),
  });
  f.onSleep = (ms) => (f.clock.now += ms);
  const s = await send(f);
  t.equal(s.status, 503);
  t.match(decodeURIComponent(s.headers['l5d-err'] as string), /l5d-ctx-deadline/, "the caller's deadline, not the app's 503");
  t.same(f.sleeps, [300], 'the backoff is cut to the time left');
  t.equal(flaky.seen.length, 1, 'no attempt after the deadline');
  t.same(f.timeouts, ['deadline']);
});

t.test('an attempt past requestAttemptTimeoutMs is cancelled and retried as a 503 would be', async (t) => {
  const b = await backend(t, ['hang', { status: 200 }]);
  const f = await front(t, { endpoints: [b.endpoint], classify: 'io.l5d.http.retryableRead5XX', attemptTimeoutMs: 150 });
  const pending = send(f);
  t.ok(await eventually(() => b.seen.length === 1, 10_000), 'the first attempt reached the app');
  await f.timers.advance(149);
  t.equal(b.seen[0]?.aborted, false, 'not cancelled 1 ms before the attempt timeout');
  await f.timers.advance(1);
  const r = await pending;
  t.equal(r.status, 200);
  t.equal(b.seen.length, 2);
  t.ok(await eventually(() => b.seen[0]?.aborted === true, 10_000), 'the app saw the timed-out request go away');
  t.same(f.timeouts, ['attempt']);

  const stuck = await backend(t, ['hang']);
  const g = await front(t, { endpoints: [stuck.endpoint], attemptTimeoutMs: 150 });
  const stuckReply = send(g);
  t.ok(await eventually(() => stuck.seen.length === 1, 10_000), 'the attempt reached the app');
  await g.timers.advance(150);
  const s = await stuckReply;
  t.equal(s.status, 503, 'not retryable for this classifier: a 503 TIMEOUT');
  t.match(decodeURIComponent(s.headers['l5d-err'] as string), /attempt timeout \(client\.requestAttemptTimeoutMs 150 ms\)/);
  t.equal(stuck.seen.length, 1);
});

t.test('the relayed head drops the router marks and adds l5d-success-class; only a TLS plan honours the requeue mark', async (t) => {
  const marks = { 'l5d-hostmesh-requeue': 'not-delivered', 'l5d-hostmesh-draining': '1', 'x-app': 'kept' };
  const app = await backend(t, [{ status: 503, headers: marks }, { status: 200 }]);
  const other = await backend(t, [{ status: 200 }]);
  const plain = await front(t, { endpoints: [app.endpoint, other.endpoint] });
  const r = await send(plain);
  t.equal(r.status, 503, "an app's forged mark is not a requeue");
  t.equal(r.headers['x-app'], 'kept');
  t.equal(r.headers['l5d-success-class'], '0.0');
  t.notOk('l5d-hostmesh-requeue' in r.headers, 'the requeue mark is not relayed');
  t.notOk('l5d-hostmesh-draining' in r.headers, 'nor the draining mark');
  t.equal(other.seen.length, 0);
  t.same(plain.requeues, []);
  t.notOk(plain.draining.draining(endpointKey(app.endpoint)), 'nor is a plaintext endpoint marked draining');

  const peer = await backend(t, [{ status: 503, headers: marks }]);
  const next = await backend(t, [{ status: 200, headers: { 'x-node': 'next' } }]);
  const mesh = await front(t, { endpoints: [peer.endpoint, next.endpoint], tls: true });
  const m = await send(mesh);
  t.equal(m.status, 200, 'a peer router said not delivered: requeued to the next node');
  t.equal(m.headers['x-node'], 'next');
  t.equal(m.headers['l5d-success-class'], '1.0');
  t.same(mesh.requeues, ['not_delivered']);
  t.ok(mesh.draining.draining(endpointKey(peer.endpoint)), "the peer's draining mark is kept for the balancer");
});

t.test("the relayed head keeps the answer's fields in order, repeats as separate lines, and drops those its Connection names", async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, [
      'Set-Cookie',
      'a=1',
      'X-App',
      'kept',
      'Connection',
      'keep-alive, X-Internal',
      'X-Internal',
      'secret',
      'Set-Cookie',
      'b=2',
      'Keep-Alive',
      'timeout=5',
    ]);
    res.end('ok');
  });
  await listen(server, HOST);
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  const f = await front(t, { endpoints: [{ host: HOST, port: (server.address() as { port: number }).port, meta: {} }] });
  const raw = await new Promise<string[]>((resolve, reject) => {
    http
      .get({ host: HOST, port: f.port, path: '/p', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.rawHeaders));
      })
      .on('error', reject);
  });
  const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const values = (name: string): string[] => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === name);
  t.same(values('set-cookie'), ['a=1', 'b=2'], 'both cookies, in order, each its own line');
  t.same(values('x-app'), ['kept']);
  t.same(values('x-internal'), [], "named by the answer's Connection: hop-by-hop, not relayed");
  t.same(values('keep-alive'), [], 'hop-by-hop');
  t.ok(names.indexOf('set-cookie') < names.indexOf('x-app'), "the answer's order");
  t.same(values('l5d-success-class'), ['1.0'], "this hop's class only, never the next hop's as well");
});

t.test("failure accrual counts an attempt against the plan's bound client, whatever the context says", async (t) => {
  const dead = await refused();
  const accrual = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 1 }, backoff: { kind: 'constant', ms: 60_000 } },
    { clock: clockWithNow(() => 0) },
  );
  const f = await front(t, { endpoints: [dead], accrual, ctxClient: false });
  t.equal((await send(f)).status, 502);
  t.equal(accrual.state(accrualKey(CLIENT, endpointKey(dead))), 'dead', "the refused endpoint is dead for the plan's client");
});

t.test('with the context naming the client (as the router does), a refused endpoint is marked dead for it', async (t) => {
  const dead = await refused();
  const accrual = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 1 }, backoff: { kind: 'constant', ms: 60_000 } },
    { clock: clockWithNow(() => 0) },
  );
  const f = await front(t, { endpoints: [dead], accrual });
  t.equal((await send(f)).status, 502);
  t.equal(accrual.state(accrualKey(CLIENT, endpointKey(dead))), 'dead');
});
