// Hostile input on the outgoing port, over raw sockets: every malformed request gets a 4xx with
// l5d-err (the HTTP parser's own errors too), smuggling shapes are refused, sizes and timeouts
// are bounded, and after every case the router still serves a normal request.

import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';

t.setTimeout(120_000);

const HOST = '127.0.0.1';
let mesh: Hostmesh;
let port = 0;
let backendHits = 0;
const backendSaw: http.IncomingMessage[] = [];

t.before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-hostile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const backend = http.createServer((req, res) => {
    backendHits++;
    backendSaw.push(req);
    req.resume();
    req.on('end', () => res.end(`ok ${req.method} ${req.url}\n`));
  });
  await new Promise<void>((r) => backend.listen(0, HOST, r));
  t.teardown(() => new Promise<void>((r) => backend.close(() => r())));
  const { port: bport } = backend.address() as net.AddressInfo;
  await writeFile(join(dir, 'world'), `${HOST} ${bport}\n`);
  const [out, admin] = (await freePorts(HOST, 2)) as [number, number];
  port = out;
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
        servers: [{ ip: HOST, port: out, headersTimeoutMs: 1000, idleTimeoutMs: 2000 }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 1000,
    baseDir: dir,
  };
  mesh = await startHostmesh(config, { logger: silentLogger() });
});
t.teardown(() => mesh.close(0));

/** Writes `bytes` (in pieces with pauses if several) and collects the answer until close or 5 s. */
function send(pieces: (string | Buffer)[], waitMs = 5000, keepOpen = false): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (out += c));
    s.on('close', () => resolve(out));
    s.on('error', () => undefined);
    s.on('connect', async () => {
      for (const p of pieces) {
        if (s.destroyed) break;
        s.write(p);
      }
      // Half-close so requests that wait for more input see the end.
      if (!keepOpen) setTimeout(() => s.end(), 300);
    });
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, waitMs).unref();
  });
}

async function stillServes(t: Test): Promise<void> {
  const r = await request({ host: HOST, port, path: 'http://world/health' });
  t.equal(r.status, 200, 'the router still serves');
}

interface Case {
  readonly name: string;
  readonly send: (string | Buffer)[];
  /** Expected status line, e.g. /^HTTP\/1\.1 400/ */
  readonly status: RegExp;
  /** Whether the request must not reach the backend (default true). */
  readonly blocked?: boolean;
  /** Keep the connection open (no half-close): the router must act on its own. */
  readonly keepOpen?: boolean;
}

const H = 'Host: world\r\n';
const cases: Case[] = [
  { name: 'binary garbage', send: [Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10])], status: /^HTTP\/1\.1 400/ },
  { name: 'not HTTP at all', send: ['HELLO THERE\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'request line without a version', send: ['GET /\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'bad method characters', send: [`G@T / HTTP/1.1\r\n${H}\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'unknown HTTP version', send: [`GET / HTTP/7.3\r\n${H}\r\n`], status: /^HTTP\/1\.1 (400|505)/ },
  { name: 'space in the target', send: [`GET /a b HTTP/1.1\r\n${H}\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'CL.TE smuggling', send: [`POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`], status: /^HTTP\/1\.1 400/ },
  { name: 'two different Content-Lengths', send: [`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`], status: /^HTTP\/1\.1 400/ },
  { name: 'Content-Length list', send: [`POST / HTTP/1.1\r\n${H}Content-Length: 3, 5\r\n\r\nabcde`], status: /^HTTP\/1\.1 400/ },
  { name: 'negative Content-Length', send: [`POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'non-numeric Content-Length', send: [`POST / HTTP/1.1\r\n${H}Content-Length: ten\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'Transfer-Encoding not ending in chunked', send: [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`], status: /^HTTP\/1\.1 400/ },
  { name: 'obfuscated Transfer-Encoding', send: [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  {
    name: 'bad chunk size',
    send: [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`],
    status: /^HTTP\/1\.1 400/,
    blocked: false,
  },
  {
    name: 'chunk size overflow',
    send: [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx\r\n0\r\n\r\n`],
    status: /^HTTP\/1\.1 400/,
    blocked: false,
  },
  { name: 'obs-fold header continuation', send: [`GET / HTTP/1.1\r\n${H}X-Folded: a\r\n  b\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'space before the header colon', send: [`GET / HTTP/1.1\r\n${H}X-Bad : v\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'header name with a space', send: [`GET / HTTP/1.1\r\n${H}Bad Header: v\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'NUL in a header value', send: [`GET / HTTP/1.1\r\n${H}X-Nul: a\u0000b\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'one 20 KiB header', send: [`GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`], status: /^HTTP\/1\.1 431/ },
  { name: '10,000 headers', send: [`GET / HTTP/1.1\r\n${H}${'X-A: b\r\n'.repeat(10_000)}\r\n`], status: /^HTTP\/1\.1 431/ },
  { name: 'a 20 KiB URL', send: [`GET /${'u'.repeat(20 * 1024)} HTTP/1.1\r\n${H}\r\n`], status: /^HTTP\/1\.1 (414|431)/ },
  { name: 'Host with a space', send: ['GET / HTTP/1.1\r\nHost: wor ld\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'Host with a control character', send: ['GET / HTTP/1.1\r\nHost: wor\u0001ld\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'Host port above 65535', send: ['GET / HTTP/1.1\r\nHost: world:99999\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'Host with a path', send: ['GET / HTTP/1.1\r\nHost: world/x\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'empty Host', send: ['GET / HTTP/1.1\r\nHost: \r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'HTTP/1.1 without Host', send: ['GET / HTTP/1.1\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'HTTP/1.0 without Host', send: ['GET / HTTP/1.0\r\n\r\n'], status: /^HTTP\/1\.[01] 400/ },
  { name: 'https scheme in absolute-form', send: [`GET https://world/ HTTP/1.1\r\n${H}\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'ftp scheme in absolute-form', send: ['GET ftp://world/file HTTP/1.1\r\nHost: world\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'userinfo in absolute-form', send: ['GET http://user:pw@world/ HTTP/1.1\r\nHost: world\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'absolute-form with a bad port', send: ['GET http://world:70000/ HTTP/1.1\r\nHost: world\r\n\r\n'], status: /^HTTP\/1\.1 400/ },
  { name: 'a bad l5d-dtab', send: [`GET / HTTP/1.1\r\n${H}l5d-dtab: /svc => (\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  { name: 'a bad l5d-ctx-dtab', send: [`GET / HTTP/1.1\r\n${H}l5d-ctx-dtab: /svc =>> /x\r\n\r\n`], status: /^HTTP\/1\.1 400/ },
  {
    name: 'a Via loop (65 hops)',
    send: [`GET / HTTP/1.1\r\n${H}Via: ${Array.from({ length: 65 }, () => '1.1 hostmesh').join(', ')}\r\n\r\n`],
    status: /^HTTP\/1\.1 400/,
  },
  { name: 'slowloris: headers never finish', send: ['GET / HTTP/1.1\r\n', 'Host: wor'], status: /^HTTP\/1\.1 408/, keepOpen: true },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const before = backendHits;
    const out = await send(c.send, 5000, c.keepOpen);
    t.match(out, c.status, `answer: ${JSON.stringify(out.split('\r\n')[0])}`);
    if (/^HTTP\/1\.[01] 4/.test(out)) t.match(out, /\r\nl5d-err: [^\r\n]+\r\n/i, 'the 4xx carries l5d-err');
    if (c.blocked !== false) t.equal(backendHits, before, 'nothing reached the backend');
    await stillServes(t);
  });
}

t.test('TRACE with Max-Forwards: 0 is answered by the router', async (t) => {
  const before = backendHits;
  const out = await send([`TRACE /x HTTP/1.1\r\n${H}Max-Forwards: 0\r\nX-Probe: 1\r\nCookie: secret\r\n\r\n`]);
  t.match(out, /^HTTP\/1\.1 200/);
  t.match(out, /content-type: message\/http/i);
  t.match(out, /TRACE \/x HTTP\/1\.1\r\nHost: world\r\nMax-Forwards: 0\r\nX-Probe: 1\r\n/);
  t.notMatch(out, /secret/, 'credentials are not echoed');
  t.equal(backendHits, before, 'never forwarded');
});

t.test('1,000 pipelined requests on one connection all get answers, in order', async (t) => {
  const n = 1000;
  const reqs = Array.from({ length: n }, (_, i) => `GET /p${i} HTTP/1.1\r\n${H}\r\n`).join('');
  const out = await new Promise<string>((resolve) => {
    const s = net.connect(port, HOST, () => s.write(reqs));
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      text += c;
      if (text.includes(`ok GET /p${n - 1}\n`)) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('close', () => resolve(text));
  });
  const bodies = [...out.matchAll(/ok GET \/p(\d+)\n/g)].map((m) => Number(m[1]));
  t.equal(bodies.length, n, 'every request answered');
  t.same(
    bodies,
    Array.from({ length: n }, (_, i) => i),
    'in order',
  );
  await stillServes(t);
});

t.test('many idle connections are closed by the idle timeout and do not block others', async (t) => {
  const sockets = await Promise.all(
    Array.from(
      { length: 300 },
      () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(port, HOST, () => resolve(s));
          s.on('error', () => undefined);
          s.resume(); // read what the router says (its 408) so the socket can finish closing
        }),
    ),
  );
  await stillServes(t);
  // The listener's idle timeout is 2 s here: poll until every idle socket was closed (ceiling 15 s).
  const deadline = Date.now() + 15_000;
  while (sockets.some((s) => !s.destroyed) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(
    sockets.every((s) => s.destroyed),
    'all 300 idle connections were closed by the router',
  );
  sockets.forEach((s) => s.destroy());
  await stillServes(t);
});

t.test('a body that stalls mid-way is cut by the idle timeout; others are served meanwhile', async (t) => {
  const out = send([`POST / HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\nonly part`], 15_000);
  await stillServes(t);
  const text = await out;
  t.notMatch(text, /^HTTP\/1\.1 200/, 'the stalled request did not succeed');
});
