// Hostile dtab overrides against the demo's two routers (real sockets, mTLS): nested alternation /
// union chains and deep parentheses in l5d-dtab, l5d-ctx-dtab and /delegator.json are answered at
// once with 400 + l5d-err or a small error tree; the routers keep serving and memory stays flat.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { startDemo, type Demo } from '../../src/demo/demo.js';
import { freePorts } from '../helpers/ports.js';
import type { Reply } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound } from '../helpers/prompt.js';

t.setTimeout(60_000);

const A = '127.0.0.2';
const B = '127.0.0.3';

let demo: Demo;
let ports: { outgoing: number; incoming: number; admin: number };
const logLines: string[] = [];

t.before(async () => {
  const [outgoing, incoming, admin] = (await freePorts(A, 3)) as [number, number, number];
  ports = { outgoing, incoming, admin };
  // Keep every log line (debug and up) to check that hostile requests log no stack traces.
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  demo = await startDemo(pino({ level: 'debug' }, sink), ports);
});
t.teardown(() => demo.close());

/** One request that fails the test if no answer comes within `ms` (the router must not stall). */
function within(ms: number, options: http.RequestOptions & { agent?: http.Agent | false }, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${ms} ms`));
    }, ms);
    const req = http.request({ agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/**
 * `/svc/world => /h0; /h0 => /h1 OP /h1; ...`: each level doubles a naive evaluation. Binding for
 * traffic stops an alternation at its first member that binds, so the attacks on traffic end in
 * `~` (every alternative is tried); explanations show every branch whatever the end.
 */
function chain(levels: number, op: (i: number) => string, leaf = '/#/io.l5d.fs/world'): string {
  const lines = ['/svc/world=>/h0'];
  for (let i = 0; i < levels; i++) lines.push(`/h${i}=>/h${i + 1}${op(i)}/h${i + 1}`);
  lines.push(`/h${levels}=>${leaf}`);
  return lines.join(';');
}

const SHAPES: [string, (i: number) => string][] = [
  ['alternation', () => '|'],
  ['union', () => '&'],
  ['mixed', (i) => (i % 3 === 0 ? '&' : '|')],
  ['weighted union', () => '&0.5*'],
];

/**
 * How long a normal request may take: 10x the same request before the attacks (at least 2 s), so a
 * busy machine, which slows both, cannot trip it, while a router stalled evaluating an exponential
 * dtab (2^20 and more steps) has not answered by then. Set by the first 'before' request.
 */
let normalBoundMs = 0;

async function normalRequestWorks(t: Test, label: string): Promise<void> {
  const started = performance.now();
  const r = await within(normalBoundMs > 0 ? normalBoundMs : 10_000, { host: A, port: ports.outgoing, path: 'http://world/' });
  if (normalBoundMs === 0) normalBoundMs = promptBound(performance.now() - started, 2000);
  t.equal(r.status, 200, `${label}: a normal request is served within 1 s (bound ${normalBoundMs} ms, 10x before the attacks)`);
  t.equal(r.body, 'world (node-b)\n');
}

function heapMB(): number {
  return process.memoryUsage().heapUsed / 1e6;
}

t.test('l5d-dtab chains of 20-25 nested levels: 400 with l5d-err at once, the router keeps serving', async (t) => {
  await normalRequestWorks(t, 'before');
  const heapBefore = heapMB();
  for (const [name, op] of SHAPES) {
    for (const levels of [20, 23, 25]) {
      const dtab = chain(levels, op, '~');
      t.ok(dtab.length < 520, `${name} ${levels}: ${dtab.length} bytes`);
      const r = await within(2000, { host: A, port: ports.outgoing, path: 'http://world/', headers: { 'l5d-dtab': dtab } });
      t.equal(r.status, 400, `${name} ${levels}: 400`);
      t.match(
        decodeURIComponent(String(r.headers['l5d-err'])),
        /dtab override .*binding budget/,
        `${name} ${levels}: l5d-err names the override and the budget`,
      );
      await normalRequestWorks(t, `${name} ${levels}`);
    }
  }
  // The same hostile header again and again: answered from the failed binding, memory stays flat.
  const dtab = chain(25, () => '&');
  for (let i = 0; i < 50; i++) {
    const r = await within(2000, { host: A, port: ports.outgoing, path: 'http://world/', headers: { 'l5d-dtab': dtab } });
    t.equal(r.status, 400);
    if (i === 0 || i === 49)
      t.match(decodeURIComponent(String(r.headers['l5d-err'])), /^dtab override rejected: .*binding budget/, `request ${i + 1}: l5d-err names the override`);
  }
  const grown = heapMB() - heapBefore;
  t.ok(grown < 64, `heap grew ${grown.toFixed(1)} MB (bounded)`);
  t.ok(process.memoryUsage().rss < 1024 * 1e6, `rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
  const m = await within(2000, { host: A, port: ports.admin, path: '/metrics' });
  const refused = parsePrometheus(m.body).find(
    (s) => s.name === 'hostmesh_binding_budget_exceeded_total' && s.labels['router'] === 'outgoing' && s.labels['source'] === 'override',
  );
  t.equal(refused?.value, SHAPES.length * 3 + 50, 'each refusal is counted');
});

t.test('a router dtab within budget still binds through an override that uses a few alternations', async (t) => {
  const r = await within(2000, { host: A, port: ports.outgoing, path: 'http://world/', headers: { 'l5d-dtab': chain(4, () => '|') } });
  t.equal(r.status, 200, 'a small doubled chain (2^4) is fine');
  const deep = await within(2000, { host: A, port: ports.outgoing, path: 'http://world/', headers: { 'l5d-dtab': chain(25, () => '|') } });
  t.equal(deep.status, 200, 'alternations stop at their first member that binds: 25 levels are 25 steps');
  t.equal(r.body, 'world (node-b)\n');
});

t.test('the same chain in l5d-ctx-dtab at the incoming router (mTLS peer): 400, router keeps serving', async (t) => {
  const dir = join(demo.dir, 'certs');
  const agent = new (await import('node:https')).Agent({
    ca: await readFile(join(dir, 'ca.pem')),
    cert: await readFile(join(dir, 'node-a.pem')),
    key: await readFile(join(dir, 'node-a.key')),
    servername: 'hostmesh',
    checkServerIdentity: () => undefined,
    maxSockets: 1,
  });
  t.teardown(() => agent.destroy());
  const https = await import('node:https');
  const viaB = (headers: http.OutgoingHttpHeaders): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 2000 ms')), 2000);
      https
        .get({ host: B, port: ports.incoming, path: '/', headers: { host: 'world', ...headers }, agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
          });
        })
        .on('error', reject);
    });
  for (const [name, op] of SHAPES) {
    const r = await viaB({ 'l5d-ctx-dtab': chain(25, op, '~') });
    t.equal(r.status, 400, `${name}: 400 at the incoming router`);
    t.match(decodeURIComponent(String(r.headers['l5d-err'])), /binding budget/);
    const ok = await viaB({});
    t.equal(ok.status, 200, `${name}: node-b still serves its peer`);
  }
  await normalRequestWorks(t, 'after the ctx attack');
});

t.test('7,000 nested parentheses in an override: 400 parse error, no stack trace logged', async (t) => {
  const before = logLines.length;
  for (const header of ['l5d-dtab', 'l5d-ctx-dtab']) {
    const dtab = `/svc/world=>${'('.repeat(7000)}/#/io.l5d.fs/world${')'.repeat(7000)}`;
    const r = await within(2000, { host: A, port: ports.outgoing, path: 'http://world/', headers: { [header]: dtab } });
    t.equal(r.status, 400, `${header}: 400`);
    t.match(decodeURIComponent(String(r.headers['l5d-err'])), new RegExp(`bad ${header}: at most \\d+ nested parentheses expected`));
    t.ok(String(r.headers['l5d-err']).length < 1000, 'l5d-err stays short');
    await normalRequestWorks(t, header);
  }
  const logged = logLines.slice(before);
  t.notOk(
    logged.some((l) => /RangeError|Maximum call stack|"stack"/.test(l)),
    'no stack trace in the log',
  );
  t.notOk(
    logged.some((l) => (JSON.parse(l) as { level: number }).level >= 50),
    'nothing logged as an error',
  );
});

t.test('/delegator.json with a hostile dtab (GET and POST): a small error tree, at once', async (t) => {
  const base = { host: A, port: ports.admin };
  for (const [name, op] of SHAPES) {
    const dtab = chain(25, op);
    const q = new URLSearchParams({ router: 'outgoing', path: '/svc/world', dtab });
    const g = await within(2000, { ...base, path: `/delegator.json?${q}` });
    t.equal(g.status, 200, `${name} GET`);
    t.ok(g.body.length < 2000, `${name} GET: ${g.body.length} bytes of JSON`);
    t.match(JSON.parse(g.body), { type: 'exception', message: /binding budget/ });
    const p = await within(
      2000,
      { ...base, path: '/delegator.json', method: 'POST', headers: { 'content-type': 'application/json' } },
      JSON.stringify({ router: 'outgoing', path: '/svc/world', dtab }),
    );
    t.equal(p.status, 200, `${name} POST`);
    t.ok(p.body.length < 2000, `${name} POST: ${p.body.length} bytes`);
    t.match(JSON.parse(p.body), { type: 'exception', message: /binding budget/ });
  }
  // The largest doubling chain within the budget (11 levels, ~8,200 nodes) is explained, compactly.
  const big = await within(5000, {
    ...base,
    path: `/delegator.json?${new URLSearchParams({ router: 'outgoing', path: '/svc/world', dtab: chain(11, () => '|') })}`,
  });
  t.equal(big.status, 200);
  t.ok(big.body.length < 3e6, `11 levels: ${big.body.length} bytes of JSON`);
  t.equal(JSON.parse(big.body).type, 'alt');
  // Long labels (a POST body carries up to 64 KB): within the node budget, over the text budget.
  const long = 'x'.repeat(2000);
  const lines = ['/svc/world=>/h0' + long];
  for (let i = 0; i < 8; i++) lines.push(`/h${i}${long}=>/h${i + 1}${long}|/h${i + 1}${long}`);
  lines.push(`/h8${long}=>/#/io.l5d.fs/world`);
  const l = await within(
    5000,
    { ...base, path: '/delegator.json', method: 'POST', headers: { 'content-type': 'application/json' } },
    JSON.stringify({ router: 'outgoing', path: '/svc/world', dtab: lines.join(';') }),
  );
  t.equal(l.status, 200);
  t.ok(l.body.length < 2000, `long labels: ${l.body.length} bytes`);
  t.match(JSON.parse(l.body), { type: 'exception', message: /its explanation would pass/ });
  // (As a query string 7,000 parentheses pass Node's 16 KB header limit: the POST form carries them.)
  const deep = JSON.stringify({ router: 'outgoing', path: '/svc/world', dtab: `/svc=>${'('.repeat(7000)}/a${')'.repeat(7000)}` });
  const d = await within(2000, { ...base, path: '/delegator.json', method: 'POST', headers: { 'content-type': 'application/json' } }, deep);
  t.equal(d.status, 400, 'deep parentheses: 400');
  t.match(d.body, /nested parentheses/);
  const ok = await within(2000, { ...base, path: `/delegator.json?router=outgoing&path=/svc/world` });
  t.equal(ok.status, 200);
  t.match(JSON.parse(ok.body), { type: 'delegate', delegate: { type: 'leaf' } }, 'a normal explanation is unchanged');
  await normalRequestWorks(t, 'after the delegator attack');
});
