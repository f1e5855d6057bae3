// Header abuse against two routers that send a name back and forth (a loop only the hop guard
// stops): padding that once pushed Via out, the router's own headers at the next hop, TRACE, h2c.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound, timed, within } from '../helpers/prompt.js';
import { A, B, startMesh } from '../helpers/mesh.js';

t.setTimeout(60_000);

const HOST = '127.0.0.1';
let mesh: Hostmesh;
let outgoing = 0;
let bounce = 0;
let admin = 0;
let backendHits = 0;
const backendSaw: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

t.before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-hostile-headers-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const backend = http.createServer((req, res) => {
    backendHits++;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      backendSaw.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.end(`ok ${req.method} ${req.url} ${body}\n`);
    });
  });
  // An application that keeps few headers, as many servers do: what the router adds must survive.
  backend.maxHeadersCount = 20;
  await new Promise<void>((r) => backend.listen(0, HOST, r));
  t.teardown(() => new Promise<void>((r) => backend.close(() => r())));
  const { port: bport } = backend.address() as net.AddressInfo;
  await writeFile(join(dir, 'world'), `${HOST} ${bport}\n`);
  [outgoing, bounce, admin] = (await freePorts(HOST, 3)) as [number, number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      {
        // `loop` goes to the bounce router, which sends everything back here: only the hop guard
        // (or the header limit) ends such a request.
        protocol: 'http',
        label: 'outgoing',
        dtab: `/svc => /#/io.l5d.fs; /svc/loop => /$/inet/${HOST}/${bounce};`,
        identifier: [],
        transformers: [],
        servers: [{ ip: HOST, port: outgoing, headersTimeoutMs: 1000, idleTimeoutMs: 3000 }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
      {
        protocol: 'http',
        label: 'bounce',
        dtab: `/svc => /$/inet/${HOST}/${outgoing};`,
        identifier: [],
        transformers: [],
        servers: [{ ip: HOST, port: bounce, headersTimeoutMs: 1000, idleTimeoutMs: 3000, maxHeaders: 100 }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 0,
    baseDir: dir,
  };
  mesh = await startHostmesh(config, { logger: silentLogger() });
  // The normal request on each port, warm, before any attack: what "served within 1 s" is measured against.
  for (const port of [outgoing, bounce]) {
    await normal(port);
    const base = await timed(() => normal(port));
    if (base.value.status !== 200) throw new Error(`a normal request before the attacks: ${base.value.status}`);
    baselineMs.set(port, base.ms);
  }
});
t.teardown(() => mesh.close(0));

/** Writes `text` on a raw connection; resolves with what came back when `done` says so, at close, or after `waitMs`. */
function raw(text: string, port: number, waitMs = 5000, done: (out: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST, () => s.write(text));
    let out = '';
    const finish = (): void => {
      s.destroy();
      resolve(out);
    };
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      out += c;
      if (done(out)) finish();
    });
    s.on('close', finish);
    s.on('error', () => undefined);
    setTimeout(finish, waitMs).unref();
  });
}

/** One whole response (headers and a content-length body) has arrived. */
function answered(out: string): boolean {
  const end = out.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length: *([0-9]+)/i.exec(out.slice(0, end));
  return length === null || out.length - end - 4 >= Number(length[1]);
}

function padding(n: number): string {
  let text = '';
  for (let i = 0; i < n; i++) text += `X-Pad-${i}: 1\r\n`;
  return text;
}

/** A normal request through `port`: its status and body (status 0 and the error when it failed). */
function normal(port: number): Promise<{ status: number; body: string }> {
  return request({ host: HOST, port, path: 'http://world/health' }).catch((err: Error) => ({ status: 0, body: err.message }));
}

/** The normal request on each port before any attack, in ms. */
const baselineMs = new Map<number, number>();

/**
 * A normal request is answered within 1 s (the user's view of "the router is fine"), measured so
 * a busy machine cannot trip it: within 10x the same request before the attacks, at least 2 s. A
 * request the hop loop still starves (a router spinning on it) has no answer then.
 */
async function servesWithin1s(t: Test, port = outgoing): Promise<void> {
  const bound = promptBound(baselineMs.get(port) ?? 0, 2000);
  const r = await within(normal(port), bound, { status: 0, body: `no answer within ${bound} ms` });
  t.equal(r.status, 200, `a normal request is served within 1 s (bound ${bound} ms, 10x before the attacks)`);
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const r = await request({ host: HOST, port: admin, path: '/metrics' });
  return parsePrometheus(r.body)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

t.test('a plain loop ends at the hop guard with 400 PROXY_LOOP', async (t) => {
  const out = await raw('GET / HTTP/1.1\r\nHost: loop\r\n\r\n', outgoing, 10_000, answered);
  t.match(out, /^HTTP\/1\.1 400 /, 'the loop is answered');
  t.match(decodeURIComponent(/\r\nl5d-err: ([^\r\n]+)/i.exec(out)?.[1] ?? ''), /proxy loop/);
  await servesWithin1s(t);
});

// 499 padding headers + Host is exactly the default limit (500): accepted at the first hop, where
// the router once appended Via after them, so the next hop (Node keeps 500) dropped it and the
// hop count restarted at every hop. 505 is over the limit at the first hop.
for (const n of [499, 505, 1200]) {
  t.test(`${n} padding headers cannot reset the hop count: a 4xx, not an endless loop`, async (t) => {
    const before = await metric('hostmesh_requests_total', { router: 'bounce' });
    const sockets = (): number => mesh.routers.flatMap((r) => r.listeners).reduce((x, l) => x + l.connections, 0);
    const socketsBefore = sockets();
    const out = await raw(`GET / HTTP/1.1\r\nHost: loop\r\n${padding(n)}\r\n`, outgoing, 5000, answered);
    t.match(out, /^HTTP\/1\.1 4[0-9][0-9] /, `answered: ${JSON.stringify(out.split('\r\n')[0])}`);
    t.match(out, /\r\nl5d-err: [^\r\n]+\r\n/i, 'with l5d-err');
    if (n > 499) t.match(out, /^HTTP\/1\.1 431 /, 'over the limit at the first hop: 431');
    await servesWithin1s(t);
    // The loop is over: nothing is in flight, and the bounce router saw at most a few hops.
    const routers = mesh.routers.map((r) => r.router);
    const deadline = Date.now() + 2000;
    while (routers.some((r) => r.inFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.same(
      routers.map((r) => r.inFlight),
      [0, 0],
      'nothing left in flight',
    );
    t.ok((await metric('hostmesh_requests_total', { router: 'bounce' })) - before <= 2, 'the request made at most one trip round the loop');
    t.ok(sockets() - socketsBefore <= 2, `the routers hold at most 2 sockets more (${sockets() - socketsBefore})`);
  });
}

t.test('more headers than the limit is a 431 with l5d-err, counted; the limit is a server key', async (t) => {
  const before = await metric('hostmesh_header_limit_refusals_total', { router: 'bounce' });
  // The bounce router's server keeps 100 (maxHeaders: 100): 101 is refused, 100 is routed.
  const refused = await raw(`GET /h HTTP/1.1\r\nHost: world\r\n${padding(100)}\r\n`, bounce, 5000, answered);
  t.match(refused, /^HTTP\/1\.1 431 /);
  t.match(decodeURIComponent(/\r\nl5d-err: ([^\r\n]+)/i.exec(refused)?.[1] ?? ''), /more than 100 header fields/);
  t.equal((await metric('hostmesh_header_limit_refusals_total', { router: 'bounce' })) - before, 1, 'counted once');
  const ok = await raw(`GET /h HTTP/1.1\r\nHost: world\r\n${padding(99)}\r\n`, bounce, 5000, answered);
  t.match(ok, /^HTTP\/1\.1 200 /, '100 header fields are routed');
  await servesWithin1s(t, bounce);
});

t.test("the router's own headers lead the request, so a next hop that keeps few headers still sees them", async (t) => {
  backendSaw.length = 0;
  const r = await request({
    host: HOST,
    port: outgoing,
    path: 'http://world/own',
    headers: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-pad-${i}`, '1'])),
  });
  t.equal(r.status, 200);
  const seen = backendSaw.at(-1)?.headers ?? {};
  t.equal(seen.host, 'world', 'Host first');
  t.match(seen.via, /hostmesh/, 'Via survives the padding');
  t.equal(seen['l5d-dst-service'], '/svc/world');
  t.equal(seen['l5d-dst-client'], '/#/io.l5d.fs/world');
  t.match(seen['l5d-reqid'], /^[0-9a-f]{16}$/);
});

t.test('an upgrade request with too many headers is refused with 431 too', async (t) => {
  const out = await raw(`GET /ws HTTP/1.1\r\nHost: world\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${padding(600)}\r\n`, outgoing, 5000, answered);
  t.match(out, /^HTTP\/1\.1 431 /);
  t.match(out, /\r\nl5d-err: [^\r\n]+\r\n/i);
  await servesWithin1s(t);
});

t.test('TRACE does not echo credential-like headers', async (t) => {
  const before = backendHits;
  const secrets = {
    'X-Api-Key': 'k-api',
    'X-Auth-Token': 'k-token',
    'X-Amz-Security-Token': 'k-amz',
    'X-Session-Id': 'k-session',
    'X-Client-Secret': 'k-secret',
    'X-Db-Password': 'k-password',
    'X-Passwd': 'k-passwd',
    'X-Credential': 'k-cred',
    'X-CSRF-Token': 'k-csrf',
    Authorization: 'Bearer k-bearer',
    'Proxy-Authorization': 'Basic k-proxy',
    Cookie: 'sid=k-cookie',
    'X-Forwarded-Client-Cert': 'k-xfcc',
    ApiKey: 'k-apikey',
  };
  const lines = Object.entries(secrets)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const out = await raw(`TRACE /t HTTP/1.1\r\nHost: world\r\nMax-Forwards: 0\r\nX-Probe: visible\r\n${lines}\r\n`, outgoing, 5000, answered);
  t.match(out, /^HTTP\/1\.1 200 /);
  t.match(out, /\r\nX-Probe: visible\r\n/, 'ordinary headers are echoed');
  t.notMatch(out, /k-[a-z]+/, 'no credential is echoed');
  t.equal(backendHits, before, 'answered by the router');
});

const H2C = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

t.test('Upgrade: h2c is ignored: the request is served over HTTP/1.1 at once (RFC 9113 3.1, RFC 9110 7.8)', async (t) => {
  backendSaw.length = 0;
  // Two requests on one connection: the first offers h2c, the second is ordinary keep-alive.
  const both = (out: string): boolean => (out.match(/ok GET \/h2c-/g) ?? []).length >= 2;
  const out = await raw(`GET /h2c-1 HTTP/1.1\r\nHost: world\r\n${H2C}\r\nGET /h2c-2 HTTP/1.1\r\nHost: world\r\n\r\n`, outgoing, 3000, both);
  t.match(out, /^HTTP\/1\.1 200 /, 'answered as HTTP/1.1, not 101');
  t.ok(both(out), 'both requests answered on the connection, well before any idle timeout');
  const first = backendSaw.find((s) => s.url === '/h2c-1');
  t.ok(first, 'the application got the request');
  t.equal(first?.headers.upgrade, undefined, 'no Upgrade sent on');
  t.equal(first?.headers['http2-settings'], undefined, 'no HTTP2-Settings sent on');
  await servesWithin1s(t);
});

t.test('Upgrade: h2c on a POST keeps the body', async (t) => {
  backendSaw.length = 0;
  const out = await raw(`POST /h2c-body HTTP/1.1\r\nHost: world\r\n${H2C}Content-Length: 5\r\n\r\nhello`, outgoing, 3000, answered);
  t.match(out, /^HTTP\/1\.1 200 /);
  t.equal(backendSaw.find((s) => s.url === '/h2c-body')?.body, 'hello');
});

t.test('Upgrade: h2c without Connection: Upgrade is an ordinary request; HTTP2-Settings is not sent on', async (t) => {
  backendSaw.length = 0;
  const out = await raw(
    'GET /h2c-noconn HTTP/1.1\r\nHost: world\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    outgoing,
    3000,
    answered,
  );
  t.match(out, /^HTTP\/1\.1 200 /);
  const seen = backendSaw.find((s) => s.url === '/h2c-noconn')?.headers ?? {};
  t.equal(seen.upgrade, undefined);
  t.equal(seen['http2-settings'], undefined);
});

t.test('HTTP/2 with prior knowledge is answered at once with a 4xx (not an idle hang)', async (t) => {
  const out = await raw('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', outgoing, 3000, answered);
  t.match(out, /^HTTP\/1\.1 (400|505) /);
  await servesWithin1s(t);
});

t.test('maxHeaders is validated and carried from YAML to the server', async (t) => {
  const yaml = (n: number): string =>
    `routers:\n  - protocol: http\n    dtab: /svc => /$/inet/127.0.0.1/1;\n    servers:\n      - port: 4140\n        maxHeaders: ${n}\n`;
  t.equal(parseConfig(yaml(64), 'c.yaml').config.routers[0]?.servers[0]?.maxHeaders, 64);
  t.throws(() => parseConfig(yaml(8), 'c.yaml'), ConfigError, "too small to carry the router's own headers");
  t.throws(() => parseConfig(yaml(100_000), 'c.yaml'), ConfigError, 'above the bound');
  t.equal(
    parseConfig(yaml(500).replace(/ +maxHeaders: 500\n/, ''), 'c.yaml').config.routers[0]?.servers[0]?.maxHeaders,
    undefined,
    'unset: the default (500) applies',
  );
});

t.test('h2c through the two-node mesh, and straight to the mTLS incoming port, is served over HTTP/1.1', async (t) => {
  const m = await startMesh();
  t.teardown(() => m.close());
  const viaMesh = await new Promise<string>((resolve) => {
    const s = net.connect(m.ports.outgoing, A, () => s.write(`GET / HTTP/1.1\r\nHost: world\r\n${H2C}\r\n`));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      out += c;
      if (answered(out)) s.destroy();
    });
    s.on('close', () => resolve(out));
    setTimeout(() => s.destroy(), 3000).unref();
  });
  t.match(viaMesh, /^HTTP\/1\.1 200 [^]*world \(node-b\)/, 'node-a -> mTLS -> node-b -> world');
  const dir = join(m.demo.dir, 'certs');
  const [ca, cert, key] = await Promise.all(['ca.pem', 'node-a.pem', 'node-a.key'].map((f) => readFile(join(dir, f))));
  const direct = await new Promise<string>((resolve) => {
    const s = tls.connect({ host: B, port: m.ports.incoming, servername: 'hostmesh', ca, cert, key, checkServerIdentity: () => undefined }, () =>
      s.write(`GET / HTTP/1.1\r\nHost: world\r\n${H2C}\r\nGET /again HTTP/1.1\r\nHost: world\r\n\r\n`),
    );
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      out += c;
      if ((out.match(/world \(node-b\)/g) ?? []).length >= 2) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
    setTimeout(() => s.destroy(), 3000).unref();
  });
  t.equal((direct.match(/HTTP\/1\.1 200 /g) ?? []).length, 2, 'both requests answered on the TLS connection');
});
