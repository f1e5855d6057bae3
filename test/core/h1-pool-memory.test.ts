// What the lean HTTP/1.1 pool (src/core/h1-pool.ts) holds while it connects (issue 28: binding
// 1,000 services makes thousands of connection attempts, most of them refused), and the parts of
// its contract the leaner shape must keep: undici's connection events and their arguments, TLS
// sessions resumed per pool.

import '../helpers/test-keys.js'; // small RSA keys for the certificate made here
import type { EventEmitter } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { H1Pool, type H1PoolOptions, HTTPParser } from '../../src/core/h1-pool.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { liveObjects } from '../helpers/live-objects.js';
import { rawHttpServer } from '../helpers/raw-http-server.js';

const OPTS: H1PoolOptions = {
  connections: 4,
  keepAliveTimeout: 4_000,
  keepAliveMaxTimeout: 600_000,
  headersTimeout: 5_000,
  bodyTimeout: 5_000,
  connect: { timeout: 5_000 },
};

/** A loopback port nothing listens on (connections to it are refused). */
async function refusingPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A request whose handler only counts how it ended. */
function send(p: H1Pool, ended: { errors: Error[] }): void {
  p.dispatch(
    { method: 'GET', path: '/' },
    {
      onConnect() {},
      onHeaders: () => true,
      onData: () => true,
      onComplete() {},
      onError(err: Error) {
        ended.errors.push(err);
      },
    },
  );
}

// First in this file: no other test's sockets are still being let go while it counts.
t.test('a refused attempt is not kept by its request: a handler holding the abort function holds no socket', async (t) => {
  const port = await refusingPort();
  const N = 100;
  const sockets = liveObjects(net.Socket.prototype);
  const pools = Array.from({ length: N }, () => new H1Pool(`http://127.0.0.1:${port}`, OPTS));
  // The router's handler keeps the abort function onConnect gave it until the exchange is over.
  const aborts: ((err?: Error) => void)[] = [];
  const failed = pools.map(
    (p) =>
      new Promise<Error>((resolve) =>
        p.dispatch(
          { method: 'GET', path: '/' },
          {
            onConnect(abort: (err?: Error) => void) {
              aborts.push(abort);
            },
            onHeaders: () => true,
            onData: () => true,
            onComplete() {},
            onError: resolve,
          },
        ),
      ),
  );
  t.ok(liveObjects(net.Socket.prototype) - sockets >= N, 'a socket per attempt while connecting');
  const errors = await Promise.all(failed);
  t.ok(
    errors.every((e) => (e as { code?: string }).code === 'ECONNREFUSED'),
    'every attempt refused',
  );
  await new Promise((r) => setImmediate(r)); // the close handlers have run
  t.equal(aborts.length, N);
  const left = liveObjects(net.Socket.prototype) - sockets;
  t.ok(left <= 0, `${left} sockets left reachable (the old pool kept each through its request)`);
  for (const abort of aborts) abort(); // a late abort of a failed request is nothing
  await Promise.all(pools.map((p) => p.destroy()));
});

t.test('a refused connection attempt makes no answer parser, and a pool keeps no parsed URL', async (t) => {
  const port = await refusingPort();
  const before = { url: liveObjects(URL.prototype), parsers: liveObjects((HTTPParser as { prototype: object }).prototype) };
  const pools = Array.from({ length: 200 }, () => new H1Pool(`http://127.0.0.1:${port}`, OPTS));
  for (const p of pools) p.on('connect', () => undefined); // a listener, as the endpoint stage has
  t.equal(liveObjects(URL.prototype) - before.url, 0, 'no URL object per pool (the old pool kept one each)');
  const ended = { errors: [] as Error[] };
  for (const p of pools) send(p, ended);
  t.equal(ended.errors.length, 0, 'the attempts are still in flight');
  t.equal(liveObjects((HTTPParser as { prototype: object }).prototype) - before.parsers, 0, 'no parser while connecting (the old pool made one per attempt)');
  await Promise.all(pools.map((p) => new Promise((r) => p.once('connectionError', r))));
  t.equal(ended.errors.length, 200, 'every request failed');
  t.ok(
    ended.errors.every((e) => (e as { code?: string }).code === 'ECONNREFUSED'),
    'with the connection error',
  );
  await Promise.all(pools.map((p) => p.destroy()));
});

t.test('a refused connection attempt in flight holds under 4 KB of heap (with 17 closures and a parser each: 4.6-5 KB)', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const port = await refusingPort();
  const N = 2000;
  const pools = Array.from({ length: N }, () => new H1Pool(`http://127.0.0.1:${port}`, OPTS));
  const ended = { errors: [] as Error[] };
  const warm = new H1Pool(`http://127.0.0.1:${port}`, OPTS); // the code paths warmed: their shapes and code are not counted
  const warmed = new Promise((r) => warm.once('connectionError', r));
  send(warm, ended);
  await warmed;
  gc();
  gc();
  const heap = process.memoryUsage().heapUsed;
  for (const p of pools) send(p, ended);
  gc();
  gc();
  const per = (process.memoryUsage().heapUsed - heap) / N;
  t.equal(ended.errors.length, 1, 'measured while in flight');
  t.ok(per < 4_000, `${per.toFixed(0)} bytes per attempt in flight (socket, connection, timer, request)`);
  await Promise.all(pools.map((p) => (p.connections > 0 ? new Promise((r) => p.once('connectionError', r)) : undefined)));
  t.equal(ended.errors.length, N + 1, 'every attempt ended');
  t.ok(
    pools.every((p) => p.connections === 0),
    'no connection left in any pool',
  );
});

t.test("connection events carry undici's arguments: the origin as a URL, the pool, and why it closed", async (t) => {
  const s = await rawHttpServer((_h, sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
  const p = new H1Pool(`http://127.0.0.1:${s.port}`, OPTS);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const events: [string, unknown[]][] = [];
  for (const e of ['connect', 'disconnect', 'connectionError']) (p as EventEmitter).on(e, (...args: unknown[]) => events.push([e, args]));
  const r = await p.request({ method: 'GET', path: '/' });
  t.equal(await r.body.text(), 'ok');
  while (events.length < 2) await new Promise((r) => p.once('disconnect', r));
  const [connect, disconnect] = events;
  t.equal(connect?.[0], 'connect');
  t.ok(connect?.[1][0] instanceof URL, 'a URL');
  t.equal((connect?.[1][0] as URL).href, `http://127.0.0.1:${s.port}/`);
  t.same(connect?.[1][1], [p], 'the pool as the target');
  t.equal(disconnect?.[0], 'disconnect');
  t.equal((disconnect?.[1][0] as URL).origin, `http://127.0.0.1:${s.port}`);
  t.same(disconnect?.[1][1], [p]);
  t.ok(disconnect?.[1][2] instanceof Error, 'with an error');

  const port = await refusingPort();
  const q = new H1Pool(`http://[::ffff:127.0.0.1]:${port}`, OPTS);
  const failed = new Promise<unknown[]>((r) => q.once('connectionError', (...args: unknown[]) => r(args)));
  const ended = { errors: [] as Error[] };
  send(q, ended);
  const [origin, targets, err] = await failed;
  t.equal((origin as URL).href, `http://[::ffff:7f00:1]:${port}/`, 'the origin as a URL, IPv6 included');
  t.same(targets, [q]);
  t.equal((err as { code?: string }).code, 'ECONNREFUSED');
  await q.destroy();
});

t.test("a pool's second TLS connection resumes the first one's session", async (t) => {
  const ca = createCa({ commonName: 'h1 memory test CA' });
  const leaf = issueCertificate(ca, { commonName: 'backend', dnsNames: ['backend'] });
  const reused: boolean[] = [];
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
    res.setHeader('connection', 'close');
    res.end('ok');
  });
  server.on('request', (req) => reused.push((req.socket as import('node:tls').TLSSocket).isSessionReused()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = new H1Pool(`https://127.0.0.1:${(server.address() as net.AddressInfo).port}`, {
    ...OPTS,
    connect: { timeout: 5_000, ca: ca.certPem, servername: 'backend' },
  });
  t.teardown(async () => {
    await p.destroy();
    server.close();
  });
  for (let i = 0; i < 2; i++) {
    const closed = new Promise((r) => p.once('disconnect', r));
    const r = await p.request({ method: 'GET', path: '/' });
    t.equal(await r.body.text(), 'ok');
    await closed; // the answer closed its connection: the next request makes a new one
  }
  t.same(reused, [false, true], 'the first handshake is full, the second resumes its session');
});
