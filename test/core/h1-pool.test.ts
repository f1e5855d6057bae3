// The lean HTTP/1.1 pool (src/core/h1-pool.ts) against servers that write exact bytes: what it
// sends, how it reuses connections, how it meets malformed, stray and slow answers, its timeouts on
// the injected clock, and a property: any header map it accepts reaches Node's parser intact.

import '../helpers/test-keys.js'; // small RSA keys for the certificate made here
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import t from 'tap';
import { H1Pool, type H1PoolOptions, leanClientAvailable } from '../../src/core/h1-pool.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { rawHttpServer } from '../helpers/raw-http-server.js';
import { eventually } from '../helpers/sockets.js';

const OPTS: Omit<H1PoolOptions, 'clock'> = {
  connections: 4,
  keepAliveTimeout: 4_000,
  keepAliveMaxTimeout: 600_000,
  headersTimeout: 1_000,
  bodyTimeout: 1_000,
  connect: { timeout: 1_000 },
};

function pool(port: number, clock?: ManualClock, extra: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool(`http://127.0.0.1:${port}`, { ...OPTS, ...(clock !== undefined ? { clock } : {}), ...extra });
}

async function get(
  p: H1Pool,
  path = '/',
  method: 'GET' | 'HEAD' | 'POST' = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const r = await p.request({ method, path });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}

const OK = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

t.test("this Node's parser binding has the shape the pool is written against", async (t) => {
  t.equal(leanClientAvailable(), true);
});

t.test('one kept-alive connection carries sequential requests; the head is what the contract says', async (t) => {
  const s = await rawHttpServer((_h, sock, n) => sock.write(OK(`r${n}`)));
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  for (let i = 1; i <= 5; i++) t.equal((await get(p, `/x?i=${i}`)).body, `r${i}`);
  t.equal(s.conns.length, 1, 'one connection for five requests');
  const r = await p.request({ method: 'POST', path: '/p', headers: { host: 'svc.example', 'x-a': ['1', '2'], 'x-n': 7 as unknown as string } });
  await r.body.text();
  t.equal(s.heads.at(-1), 'POST /p HTTP/1.1\r\nhost: svc.example\r\nx-a: 1\r\nx-a: 2\r\nx-n: 7\r\ncontent-length: 0\r\n\r\n');
  t.equal(s.heads[0], `GET /x?i=1 HTTP/1.1\r\nhost: 127.0.0.1:${s.port}\r\n\r\n`);
});

t.test('a streamed body goes chunked, a declared one as is; a body longer than declared is refused', async (t) => {
  const server = http.createServer((req, res) => {
    let n = '';
    req.on('data', (d: Buffer) => {
      n += d.toString();
    });
    req.on('end', () => res.end(`${req.headers['transfer-encoding'] ?? '-'} ${req.headers['content-length'] ?? '-'} ${n}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = pool((server.address() as net.AddressInfo).port);
  t.teardown(async () => {
    await p.destroy();
    server.close();
  });
  const chunked = await p.request({ method: 'POST', path: '/', body: Readable.from([Buffer.from('ab'), Buffer.from('cd')]) });
  t.equal(await chunked.body.text(), 'chunked - abcd');
  const fixed = await p.request({ method: 'PUT', path: '/', headers: { 'content-length': '4' }, body: Readable.from([Buffer.from('wxyz')]) });
  t.equal(await fixed.body.text(), '- 4 wxyz');
  await t.rejects(p.request({ method: 'PUT', path: '/', headers: { 'content-length': '2' }, body: Readable.from([Buffer.from('toolong')]) }), {
    code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  });
  t.equal((await p.request({ method: 'POST', path: '/', body: 'plain' }).then((r) => r.body.text())).trim(), '- 5 plain');
});

t.test('what would split a request is refused before a byte is written', async (t) => {
  const s = await rawHttpServer((_h, sock) => sock.write(OK('x')));
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const bad: [string, Parameters<H1Pool['request']>[0]][] = [
    ['CRLF in a value', { method: 'GET', path: '/', headers: { 'x-a': 'a\r\nx-b: smuggled' } }],
    ['LF in a value', { method: 'GET', path: '/', headers: { 'x-a': 'a\nb' } }],
    ['NUL in a value', { method: 'GET', path: '/', headers: { 'x-a': 'a\0b' } }],
    ['a name with a space', { method: 'GET', path: '/', headers: { 'x a': 'b' } }],
    ['a name with a colon', { method: 'GET', path: '/', headers: { 'x:a': 'b' } }],
    ['a space in the target', { method: 'GET', path: '/a b HTTP/1.1\r\nx: y' }],
    ['a method with a space', { method: 'GET / HTTP/1.1\r\n' as 'GET', path: '/' }],
    ['transfer-encoding of its own', { method: 'POST', path: '/', headers: { 'transfer-encoding': 'chunked' } }],
    ['connection of its own', { method: 'GET', path: '/', headers: { connection: 'upgrade' } }],
    ['a bad content-length', { method: 'GET', path: '/', headers: { 'content-length': '-1' } }],
  ];
  for (const [what, opts] of bad) await t.rejects(p.request(opts), { code: /UND_ERR_(INVALID_ARG|NOT_SUPPORTED)/ }, what);
  t.equal(s.heads.length, 0, 'nothing reached the server');
  t.equal((await get(p)).body, 'x', 'the pool still works');
});

t.test('malformed answers fail the request and drop the connection; the next request gets its own answer', async (t) => {
  const cases: [string, string][] = [
    ['Content-Length with chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
    ['two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
    ['a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\nx'],
    ['a bare LF', 'HTTP/1.1 200 OK\nContent-Length: 1\n\nx'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 1\r\n\r\nx'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\nx'],
    ['garbage', 'SMTP ready\r\n\r\n'],
    ['a 20 KiB head', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 1\r\n\r\nx`],
    ['an unasked 101', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n'],
    ['33 informational answers', `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(33)}${OK('x')}`],
  ];
  for (const [what, bytes] of cases) {
    const s = await rawHttpServer((h, sock) => sock.write(h.includes('/good') ? OK('good') : bytes));
    const p = pool(s.port);
    const err = await get(p, '/bad').then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    t.ok(err !== undefined && err.code !== 'UND_ERR_HEADERS_TIMEOUT', `${what}: refused at once (${err?.code})`);
    t.ok(await eventually(() => s.open() === 0, 2_000), `${what}: the connection is dropped`);
    t.equal((await get(p, '/good')).body, 'good', `${what}: a fresh request gets its own answer`);
    await p.destroy();
    await s.close();
  }
});

t.test('bytes after a complete answer are never handed to the next request', async (t) => {
  const s = await rawHttpServer((_h, sock, n) => sock.write(n === 1 ? `${OK('first')}${OK('SMUGGLED')}` : OK(`own${n}`)));
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  t.equal((await get(p)).body, 'first');
  t.equal((await get(p)).body, 'own2');
  t.equal(s.conns.length, 2, 'the connection with stray bytes was not reused');
});

t.test('informational answers, HEAD, 204 and 304 are framed as RFC 9112 says', async (t) => {
  const s = await rawHttpServer((h, sock) => {
    if (h.startsWith('HEAD')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
    else if (h.includes('/info')) sock.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${OK('final')}`);
    else if (h.includes('/204')) sock.write('HTTP/1.1 204 No Content\r\n\r\n');
    else sock.write(OK('plain'));
  });
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const head = await get(p, '/', 'HEAD');
  t.same([head.status, head.body, head.headers['content-length']], [200, '', '1000']);
  t.same(await get(p, '/info').then((r) => [r.status, r.body]), [200, 'final']);
  t.same(await get(p, '/204').then((r) => [r.status, r.body]), [204, '']);
  t.equal((await get(p, '/')).body, 'plain');
  t.equal(s.conns.length, 1, 'every answer left the connection reusable');
});

t.test('a close-delimited body is read to the end; a short Content-Length body is a failure', async (t) => {
  const s = await rawHttpServer((h, sock) => {
    if (h.includes('/eof')) sock.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
    else sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort');
  });
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  t.equal((await get(p, '/eof')).body, 'until close');
  const r = await p.request({ method: 'GET', path: '/short' });
  await t.rejects(r.body.text(), 'the cut body is an error, never a complete answer');
});

t.test('an early answer (before the body was sent) is delivered, and its connection is not reused', async (t) => {
  const s = await rawHttpServer((_h, sock) => sock.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n'));
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const body = new Readable({ read() {} });
  body.push('partial');
  const r = await p.request({ method: 'POST', path: '/', body });
  t.equal(r.statusCode, 413);
  await r.body.text();
  t.ok(await eventually(() => s.open() === 0, 2_000), 'the half-sent connection is closed');
  body.destroy();
});

t.test('timeouts run on the injected clock: headers, body idle (not while the reader holds back), keep-alive, Keep-Alive hints', async (t) => {
  const clock = new ManualClock();
  const s = await rawHttpServer((h, sock) => {
    if (h.includes('/silent')) return;
    if (h.includes('/stall')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    else if (h.includes('/hint')) sock.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nh');
    else sock.write(OK('ok'));
  });
  const p = pool(s.port, clock);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const silent = p.request({ method: 'GET', path: '/silent' }).then(
    () => undefined,
    (err: { code?: string }) => err.code,
  );
  await eventually(() => s.heads.length === 1, 30_000); // the request reached the server (a precondition: bounded, not timed)
  await clock.advance(999);
  t.equal(s.open(), 1, 'not before the headers timeout');
  await clock.advance(2);
  t.equal(await silent, 'UND_ERR_HEADERS_TIMEOUT');

  const stalled = await p.request({ method: 'GET', path: '/stall' });
  const cut = stalled.body.text().then(
    () => undefined,
    (err: { code?: string }) => err.code,
  );
  await clock.advance(1_001);
  t.equal(await cut, 'UND_ERR_BODY_TIMEOUT');

  // Kept alive: closed after keepAliveTimeout idle, not before.
  t.equal((await get(p, '/a')).body, 'ok');
  await clock.advance(3_999);
  t.equal(s.open(), 1);
  await clock.advance(2);
  t.ok(await eventually(() => s.open() === 0, 2_000), 'closed after the idle time');

  // timeout=5 less the 2 s margin: 3 s.
  t.equal((await get(p, '/hint')).body, 'h');
  await clock.advance(3_001);
  t.ok(await eventually(() => s.open() === 0, 2_000), 'closed after the hint less its margin');
});

t.test('a reader that holds the body back stops the socket reads; the body timeout waits for it', async (t) => {
  const clock = new ManualClock();
  const big = 'x'.repeat(4 * 1024 * 1024);
  const s = await rawHttpServer((_h, sock) => sock.write(OK(big)));
  const p = pool(s.port, clock);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const r = await p.request({ method: 'GET', path: '/' });
  await new Promise((res) => setTimeout(res, 50)); // let the socket fill while nobody reads
  await clock.advance(5_000);
  const text = await r.body.text();
  t.equal(text.length, big.length, 'the whole body arrives once read, no body timeout while held back');
});

t.test('connect timeout on the clock; a refused connect is ECONNREFUSED', async (t) => {
  const clock = new ManualClock();
  // A TCP server that never answers a TLS handshake.
  const mute = net.createServer(() => undefined);
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const port = (mute.address() as net.AddressInfo).port;
  const p = new H1Pool(`https://127.0.0.1:${port}`, { ...OPTS, clock, connect: { timeout: 500, rejectUnauthorized: false } });
  t.teardown(async () => {
    await p.destroy();
    mute.close();
  });
  const pending = p.request({ method: 'GET', path: '/' }).then(
    () => undefined,
    (err: { code?: string }) => err.code,
  );
  await new Promise((res) => setTimeout(res, 20));
  await clock.advance(501);
  t.equal(await pending, 'UND_ERR_CONNECT_TIMEOUT');
  mute.close();
  const refused = pool(port);
  await t.rejects(get(refused), { code: 'ECONNREFUSED' });
  await refused.destroy();
});

t.test('an abort mid-answer closes the connection and fails the request once', async (t) => {
  const s = await rawHttpServer((_h, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
  const p = pool(s.port);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const ac = new AbortController();
  const r = await p.request({ method: 'GET', path: '/', signal: ac.signal });
  ac.abort();
  await t.rejects(r.body.text());
  t.ok(await eventually(() => s.open() === 0, 2_000), 'the upstream connection is dropped');
  t.equal(p.connections, 0);
});

t.test('minSize: the first connections idle for the floor time, the rest for the idle time', async (t) => {
  const clock = new ManualClock();
  let held: net.Socket[] = [];
  const s = await rawHttpServer((_h, sock) => {
    held.push(sock);
    if (held.length === 3) {
      for (const h of held) h.write(OK('ok'));
      held = [];
    }
  });
  const p = pool(s.port, clock, { minSize: 1, floorKeepAlive: 600_000 });
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  await Promise.all([get(p), get(p), get(p)]);
  t.equal(s.open(), 3);
  await clock.advance(4_001);
  t.ok(await eventually(() => s.open() === 1, 2_000), 'the floor connection stays');
  await clock.advance(600_000);
  t.ok(await eventually(() => s.open() === 0, 2_000), 'and closes after the floor time');
});

t.test('close() lets the request in flight finish, then closes; new requests are refused', async (t) => {
  let answer: (() => void) | undefined;
  const s = await rawHttpServer((_h, sock) => {
    answer = () => sock.write(OK('late'));
  });
  const p = pool(s.port);
  t.teardown(() => s.close());
  const inFlight = get(p);
  await eventually(() => answer !== undefined, 30_000); // the request reached the server (a precondition: bounded, not timed)
  const closed = p.close();
  await t.rejects(get(p), { code: 'UND_ERR_CLOSED' });
  answer?.();
  t.equal((await inFlight).body, 'late');
  await closed;
  t.equal(p.connections, 0);
});

t.test('property: any header map the pool accepts reaches Node’s parser unchanged', async (t) => {
  let last: http.IncomingHttpHeaders = {};
  const server = http.createServer((req, res) => {
    last = req.headers;
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = pool((server.address() as net.AddressInfo).port);
  t.teardown(async () => {
    await p.destroy();
    server.close();
  });
  const name = fc
    .stringMatching(/^[a-z][a-z0-9!#$%&'*+.^_`|~-]{0,15}$/)
    .filter(
      (n) => !['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection'].includes(n),
    );
  const value = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 20 });
  await fc.assert(
    fc.asyncProperty(fc.dictionary(name, value, { maxKeys: 6 }), async (headers) => {
      let accepted = true;
      try {
        const r = await p.request({ method: 'GET', path: '/', headers });
        await r.body.text();
      } catch (err) {
        accepted = false;
        if ((err as { code?: string }).code !== 'UND_ERR_INVALID_ARG') throw err;
      }
      const clean = Object.values(headers).every((v) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v));
      if (accepted !== clean) return false;
      if (!accepted) return true;
      for (const [k, v] of Object.entries(headers)) if (last[k] !== v.replace(/^[\t ]+|[\t ]+$/g, '')) return false;
      return true;
    }),
    { numRuns: 150 },
  );
});

t.test('a request aborted during its TLS handshake leaves the connection to the next request: one handshake, not one per request', async (t) => {
  const ca = createCa({ commonName: 'h1 test CA' });
  const leaf = issueCertificate(ca, { commonName: 'backend', dnsNames: ['backend'] });
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const tlsPort = (server.address() as net.AddressInfo).port;
  // A TCP hop that holds each connection until released: the handshake waits there.
  const held: (() => void)[] = [];
  let accepted = 0;
  const gate = net.createServer((c) => {
    accepted++;
    c.pause();
    held.push(() => {
      const up = net.connect(tlsPort, '127.0.0.1');
      c.pipe(up).pipe(c);
      c.resume();
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
  });
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
  const p = new H1Pool(`https://127.0.0.1:${(gate.address() as net.AddressInfo).port}`, {
    ...OPTS,
    connect: { timeout: 5_000, ca: ca.certPem, servername: 'backend' },
  });
  t.teardown(async () => {
    await p.destroy();
    gate.close();
    server.close();
  });
  const ac = new AbortController();
  const first = p.request({ method: 'GET', path: '/', signal: ac.signal }).then(
    () => 'answered',
    (err: { name?: string }) => err.name,
  );
  t.ok(await eventually(() => accepted === 1, 2_000), 'the handshake is under way');
  ac.abort();
  t.equal(await first, 'AbortError', 'the aborted request fails at once');
  t.equal(p.connections, 1, 'its connection stays, still connecting');
  const second = get(p);
  held.shift()?.();
  t.equal((await second).body, 'ok', 'the next request rides the same connection once it is up');
  t.equal(accepted, 1, 'one connection, one handshake');
});
