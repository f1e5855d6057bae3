// An adversarial review of the lean HTTP/1.1 pool (src/core/h1-pool.ts), the states its other
// tests do not reach: a timeout on a reused connection, a request aborted (or a handler failing)
// while its answer is being parsed, a request body that fails or closes before its connection is
// ready, and what a closed connection leaves behind. Each test drives the pool the way the router
// does (dispatch with an undici handler, as upstream-answer.ts), on real loopback sockets, with
// time on a ManualClock; it waits on events (a server reading a head, a handler's last call).

import net from 'node:net';
import { Readable } from 'node:stream';
import t from 'tap';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1PoolOptions } from '../../src/core/h1-pool.js';
import { ReplayableBody } from '../../src/router/stages/forward/retry-body.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { rawHttpServer } from '../helpers/raw-http-server.js';

const OPTS: Omit<H1PoolOptions, 'clock'> = {
  connections: 4,
  keepAliveTimeout: 4_000,
  keepAliveMaxTimeout: 600_000,
  headersTimeout: 1_000,
  bodyTimeout: 1_000,
  connect: { timeout: 1_000 },
};

const OK = (body: string): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));
async function rounds(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await immediate();
}

function pool(port: number, clock?: ManualClock, extra: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool(`http://127.0.0.1:${port}`, { ...OPTS, ...(clock !== undefined ? { clock } : {}), ...extra });
}

interface Outcome {
  status: number;
  body: string;
  /** onComplete was called. */
  complete: boolean;
  /** onError's error, if it was called. */
  error: (Error & { code?: string }) | undefined;
  /** The handler has had a last call (onComplete or onError). */
  settled: boolean;
}

/**
 * One request through the dispatch API, with a handler like the router's (upstream-answer.ts).
 * `onData` runs inside the handler's onData, with the abort the pool gave onConnect.
 */
function send(
  p: H1Pool,
  opts: Dispatcher.DispatchOptions,
  hooks: { onData?: (chunk: Buffer, abort: (err?: Error) => void) => void } = {},
): { o: Outcome; done: Promise<Outcome> } {
  const o: Outcome = { status: 0, body: '', complete: false, error: undefined, settled: false };
  let abort: (err?: Error) => void = () => undefined;
  const done = new Promise<Outcome>((resolve) => {
    const handler = {
      onConnect: (a: (err?: Error) => void) => {
        abort = a;
      },
      onHeaders: (status: number) => {
        if (status >= 200) o.status = status;
        return true;
      },
      onData: (chunk: Buffer) => {
        o.body += chunk.toString('latin1');
        hooks.onData?.(chunk, abort); // may throw: the pool must take that as the request's failure
        return true;
      },
      onComplete: () => {
        o.complete = true;
        o.settled = true;
        resolve(o);
      },
      onError: (err: Error) => {
        o.error = err;
        o.settled = true;
        resolve(o);
      },
    };
    p.dispatch(opts, handler as unknown as Dispatcher.DispatchHandler);
  });
  return { o, done };
}

/** Runs `during` with process-level uncaught exceptions collected instead of thrown (restored after). */
async function uncaught(during: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const catcher = (err: Error): void => {
    seen.push(err);
  };
  process.on('uncaughtException', catcher);
  try {
    await during();
  } finally {
    process.off('uncaughtException', catcher);
    for (const l of saved) process.on('uncaughtException', l);
  }
  return seen;
}

t.test('a headers timeout on a reused connection fails the request: it is not sent again on a new one', async (t) => {
  const clock = new ManualClock();
  // The first request is answered; the second is read and never answered (a slow app).
  const s = await rawHttpServer((_h, sock, n) => {
    if (n === 1) sock.write(OK('first'));
  });
  const p = pool(s.port, clock);
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  t.equal((await send(p, { method: 'GET', path: '/first' }).done).body, 'first');
  const slow = send(p, { method: 'GET', path: '/slow' });
  await s.head(2); // on the kept-alive connection
  await clock.advance(1_001);
  // Whichever comes first: the request fails (as it must), or the server reads it a second time.
  const what = await Promise.race([slow.done.then(() => 'failed'), s.head(3).then(() => 'sent again')]);
  t.equal(what, 'failed', 'the timed-out request is not resent (the app does its work twice, the caller waits twice the timeout)');
  t.equal(slow.o.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
  t.equal(s.heads.length, 2, 'the server read the request once');
});

t.test('a request aborted while its answer is parsed does not hand its closing connection to the next request', async (t) => {
  const s = await rawHttpServer((h, sock) => sock.write(OK(h.startsWith('POST') ? 'posted' : 'hello')));
  const p = pool(s.port, undefined, { connections: 1 });
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  // The answer (head, body and end, one read) is aborted from the handler's onData, as the
  // router's UpstreamAnswer does past DISCARD_BYTES; the next request waits for the connection.
  const first = send(p, { method: 'GET', path: '/' }, { onData: (_c, abort) => abort() });
  const second = send(p, { method: 'POST', path: '/p', body: 'x' });
  const a = await first.done;
  t.equal(a.error?.code, 'UND_ERR_ABORTED', 'the aborted request hears its abort');
  t.equal(a.complete, false);
  const b = await second.done;
  t.equal(b.error?.message, undefined, 'the next request is not written into the destroyed socket ("other side closed")');
  t.equal(b.body, 'posted');
  t.equal(s.heads.length, 2, 'the server read both requests');
});

t.test('a handler whose onData throws hears onError (never onComplete), and its connection is not reused', async (t) => {
  const s = await rawHttpServer((h, sock) => sock.write(OK(h.startsWith('POST') ? 'posted' : 'hello')));
  const p = pool(s.port, undefined, { connections: 1 });
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const first = send(
    p,
    { method: 'GET', path: '/' },
    {
      onData: () => {
        throw new Error('handler failed');
      },
    },
  );
  const second = send(p, { method: 'POST', path: '/p', body: 'x' });
  const a = await first.done;
  t.equal(a.error?.message, 'handler failed', 'the handler is told its own failure');
  t.equal(a.complete, false, 'a failed answer never looks complete');
  const b = await second.done;
  t.equal(b.error?.message, undefined, 'the next request gets a live connection');
  t.equal(b.body, 'posted');
});

t.test('a request body that fails while its TLS connection is being made is no uncaught exception', async (t) => {
  const clock = new ManualClock();
  // A TCP server that never answers the TLS handshake: the connection stays in the making
  // (a peer router's node that accepts slowly; connect timeouts are 10 s in the router).
  const held: net.Socket[] = [];
  let accepted: () => void = () => undefined;
  const acceptedOnce = new Promise<void>((r) => {
    accepted = r;
  });
  const mute = net.createServer((s) => {
    held.push(s);
    s.on('error', () => undefined);
    accepted();
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const port = (mute.address() as net.AddressInfo).port;
  const p = new H1Pool(`https://127.0.0.1:${port}`, { ...OPTS, clock, connect: { timeout: 1_000, rejectUnauthorized: false } });
  t.teardown(async () => {
    await p.destroy();
    for (const s of held) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  });
  // The router's way: the client's body through a ReplayableBody, one attempt stream per dispatch.
  const client = new Readable({ read() {} });
  client.push('the start of an upload');
  const body = new ReplayableBody(client, 65_536).attempt();
  const r = send(p, { method: 'POST', path: '/upload', body });
  await acceptedOnce;
  const seen = await uncaught(async () => {
    // The client resets mid-body: Node's server destroys the request with ECONNRESET "aborted".
    client.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    await rounds(5);
  });
  t.same(
    seen.map((e) => e.message),
    [],
    'the attempt stream had an error listener (none: the router process dies of an uncaught exception)',
  );
  await clock.advance(1_001); // at the latest, the connect timeout ends it
  const o = await r.done;
  t.ok(o.error !== undefined, 'the request failed');
});

t.test('a request whose body closed while it waited for a connection fails when its turn comes; it never hangs', async (t) => {
  const clock = new ManualClock();
  let answerFirst: () => void = () => undefined;
  const s = await rawHttpServer((_h, sock, n) => {
    if (n === 1) answerFirst = () => sock.write(OK('first'));
    else sock.write(OK('next'));
  });
  const p = pool(s.port, clock, { connections: 1 });
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  const first = send(p, { method: 'GET', path: '/first' });
  await s.head(1);
  const body = new Readable({ read() {} });
  const second = send(p, { method: 'POST', path: '/b', body }); // waits: one connection, busy
  body.destroy(); // its client left (no error: destroyed by its owner)
  await rounds(3);
  answerFirst();
  t.equal((await first.done).body, 'first');
  for (let i = 0; i < 10; i++) await clock.advance(1_000); // ten headers timeouts
  t.ok(second.o.settled, 'the request failed instead of waiting forever (its headers timeout re-arms while its body is "not done")');
  t.equal(s.heads.length, 1, 'nothing of it reached the server');
});

t.test('a closed connection leaves no timer behind to hold it until its deadline', async (t) => {
  const clock = new ManualClock();
  // Every answer closes its connection (an HTTP/1.0-style app): one connection per request.
  const s = await rawHttpServer((_h, sock) => sock.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok'));
  const p = pool(s.port, clock);
  let disconnects = 0;
  let allClosed: () => void = () => undefined;
  const closed = new Promise<void>((r) => {
    allClosed = r;
  });
  p.on('disconnect', () => {
    if (++disconnects === 3) allClosed();
  });
  t.teardown(async () => {
    await p.destroy();
    await s.close();
  });
  for (let i = 0; i < 3; i++) t.equal((await send(p, { method: 'GET', path: `/${i}` }).done).body, 'ok');
  await closed;
  t.equal(p.connections, 0);
  // Each armed clock call keeps its Conn, socket and parser reachable until it fires: with the
  // router's defaults 10-60 s after the close (600 s for a minSize connection).
  t.equal(clock.pending, 0, 'no clock call is left for a closed connection');
});
