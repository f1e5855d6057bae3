// The lean HTTP/1.1 server engine (src/server/h1-server.ts) on its own: real sockets on loopback,
// raw client bytes, the server's deadlines on a manual clock. What a client would notice: framing,
// keep-alive, order of pipelined answers, 100-continue, errors, deadlines, back-pressure, and the
// socket handed over for Upgrade and CONNECT with the bytes after the head.

import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { LeanServer, leanServerAvailable } from '../../src/server/h1-server.js';
import { createCa, issueNodeCertificate, type Pem } from '../../src/tls/generate.js';
import { ManualClock } from '../helpers/manual-clock.js';

const HOST = '127.0.0.1';

interface Started {
  readonly base: net.Server;
  readonly port: number;
  readonly clock: ManualClock;
  readonly lean: LeanServer;
}

async function start(
  t: Test,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  o: Partial<{ headersTimeoutMs: number; idleTimeoutMs: number; keepAliveTimeoutMs: number; maxUnanswered: number; tls: boolean }> = {},
): Promise<Started> {
  const base = o.tls === true ? tls.createServer({ key: serverPem().keyPem, cert: serverPem().certPem }) : net.createServer();
  const clock = new ManualClock();
  const lean = new LeanServer(base, o.tls === true, {
    maxHeaderSize: 16 * 1024,
    headersTimeoutMs: o.headersTimeoutMs ?? 20_000,
    keepAliveTimeoutMs: o.keepAliveTimeoutMs ?? 30_000,
    idleTimeoutMs: o.idleTimeoutMs ?? 300_000,
    ...(o.maxUnanswered !== undefined ? { maxUnanswered: o.maxUnanswered } : {}),
    clock,
  });
  base.on('request', handler);
  base.on('timeout', (s: net.Socket) => s.destroy());
  base.on('clientError', (err: NodeJS.ErrnoException, s: net.Socket) => {
    s.end(
      `HTTP/1.1 ${err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400} X\r\nconnection: close\r\ncontent-length: ${(err.code ?? '').length}\r\n\r\n${err.code ?? ''}`,
    );
  });
  await new Promise<void>((r) => base.listen(0, HOST, r));
  t.teardown(() => {
    lean.closeAllConnections();
    base.close();
  });
  return { base, port: (base.address() as net.AddressInfo).port, clock, lean };
}

/** Opens a connection that collects everything it reads; `until` waits for what it has read to match. */
let pem: Pem | undefined;
/** A server certificate made once per file, at test time. */
function serverPem(): Pem {
  pem ??= issueNodeCertificate(createCa({ commonName: 'h1-server test CA', days: 1 }), 'hostmesh', { name: 'n', ip: HOST }, 1);
  return pem;
}

function connect(
  port: number,
  secure = false,
): {
  s: net.Socket;
  text: () => string;
  closed: Promise<void>;
  until: (want: RegExp | ((text: string) => boolean)) => Promise<string>;
} {
  const s = secure ? tls.connect({ port, host: HOST, rejectUnauthorized: false }) : net.connect(port, HOST);
  let out = '';
  let waiters: { ok: (text: string) => boolean; resolve: (x: string) => void }[] = [];
  s.on('data', (d: Buffer) => {
    out += d.toString('latin1');
    const still: typeof waiters = [];
    for (const w of waiters) {
      if (w.ok(out)) w.resolve(out);
      else still.push(w);
    }
    waiters = still;
  });
  s.on('error', () => undefined);
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  return {
    s,
    text: () => out,
    closed,
    until: (want) => {
      const ok = typeof want === 'function' ? want : (text: string) => want.test(text);
      if (ok(out)) return Promise.resolve(out);
      return new Promise<string>((resolve, reject) => {
        waiters.push({ ok, resolve });
        void closed.then(() => (ok(out) ? resolve(out) : reject(new Error(`closed before the answer: ${JSON.stringify(out.slice(-300))}`))));
      });
    },
  };
}

const hello = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '6' });
  res.end('hello\n');
};

t.test('this Node has what the lean server needs', async (t) => {
  t.ok(leanServerAvailable());
});

t.test('keep-alive: 200 requests on one connection, each with Date, Connection and Keep-Alive as Node writes them', async (t) => {
  const { port } = await start(t, hello);
  const c = connect(port);
  for (let i = 0; i < 200; i++) {
    c.s.write(`GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await c.until((text) => text.split('hello\n').length >= i + 2);
  }
  const first = c.text().split('hello\n')[0] ?? '';
  t.match(first, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(first, /\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
  t.match(first, /\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30\r\n/);
  t.notOk(c.s.destroyed, 'the connection is still open');
  c.s.destroy();
});

t.test('framing: chunked by default on HTTP/1.1, with trailers; close-delimited on HTTP/1.0; none for HEAD, 204 and 304', async (t) => {
  const { port } = await start(t, (req, res) => {
    if (req.url === '/trailers') {
      res.writeHead(200, { trailer: 'x-sum' });
      res.write('ab');
      res.addTrailers({ 'x-sum': '42' });
      res.end('cd');
      return;
    }
    if (req.url === '/204') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.url === '/304') {
      res.writeHead(304, { etag: '"1"' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('part1 ');
    res.end('part2');
  });
  const a = connect(port);
  a.s.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  const chunked = await a.until(/0\r\n\r\n$/);
  t.match(chunked, /\r\nTransfer-Encoding: chunked\r\n\r\n6\r\npart1 \r\n5\r\npart2\r\n0\r\n\r\n$/);
  a.s.destroy();

  const b = connect(port);
  b.s.write('GET /trailers HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(await b.until(/x-sum: 42\r\n\r\n$/), /\r\n2\r\nab\r\n2\r\ncd\r\n0\r\nx-sum: 42\r\n\r\n$/, 'trailers follow the last chunk');
  b.s.destroy();

  const c = connect(port);
  c.s.write('GET /old HTTP/1.0\r\n\r\n');
  await c.closed;
  t.match(c.text(), /^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n\r\npart1 part2$/, 'HTTP/1.0: no chunks, the body ends with the connection');
  t.notMatch(c.text(), /Transfer-Encoding/);

  const d = connect(port);
  d.s.write(
    'HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /stream HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  const all = await d.until(/part2\r\n0\r\n\r\n$/);
  const answers = all.split(/(?=HTTP\/1\.1 )/);
  t.equal(answers.length, 4, 'four answers, none of them swallowed by a bodiless one');
  t.notMatch(answers[0] ?? '', /\r\n\r\n./, 'HEAD: no body');
  t.match(answers[1] ?? '', /^HTTP\/1\.1 204 No Content\r\n[^]*\r\n\r\n$/);
  t.notMatch(answers[1] ?? '', /Transfer-Encoding|Content-Length/);
  t.match(answers[2] ?? '', /^HTTP\/1\.1 304 Not Modified\r\n[^]*etag: "1"\r\n[^]*\r\n\r\n$/);
  d.s.destroy();
});

t.test('pipelined requests are answered in order even when a later one is ready first', async (t) => {
  const held: ServerResponse[] = [];
  const { port } = await start(t, (req, res) => {
    if (req.url === '/slow') {
      held.push(res);
      return;
    }
    res.writeHead(200, { 'content-length': String(req.url?.length ?? 0) });
    res.end(req.url);
  });
  const c = connect(port);
  c.s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  // The fast answer is complete but must wait behind the slow one.
  await new Promise((r) => setTimeout(r, 50));
  t.equal(c.text(), '', 'nothing is written before the first answer');
  held[0]?.writeHead(200, { 'content-length': '5' });
  held[0]?.end('/slow');
  const out = await c.until(/\/fast$/);
  t.match(out, /^HTTP\/1\.1 200 OK[^]*\r\n\r\n\/slowHTTP\/1\.1 200 OK[^]*\r\n\r\n\/fast$/);
  c.s.destroy();
});

t.test(
  'pipelining past maxUnanswered: the parser pauses (no request objects for the rest of the read), every request is still answered in order',
  async (t) => {
    const MAX = 4;
    const N = 60;
    const held: ServerResponse[] = [];
    let seen = 0;
    let peak = 0;
    const { port } = await start(
      t,
      (req, res) => {
        seen++;
        req.resume();
        held.push(res);
        peak = Math.max(peak, held.length); // taken and not yet answered by this handler
        res.setHeader('x-n', String(req.url));
      },
      { maxUnanswered: MAX },
    );
    const c = connect(port);
    // One write: the first read brings most of it. A POST with a body sits at the cap's edge, so the
    // pause also falls between a head and its body.
    let bytes = '';
    for (let i = 0; i < N; i++)
      bytes += i === MAX - 1 ? `POST /${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello` : `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
    c.s.write(bytes);
    let answered = 0;
    while (answered < N) {
      // Wait until the server has taken all it may (the cap, or what is left), then answer the oldest.
      const want = Math.min(MAX, N - answered);
      // (Turns of the event loop, up to 10 s on the wall clock: a count of turns runs out on a busy machine.)
      for (const until = Date.now() + 10_000; held.length < want && Date.now() < until; ) await new Promise((r) => setImmediate(r));
      t.ok(held.length <= MAX, `never more than ${MAX} requests taken and unanswered (${held.length})`);
      (held.shift() as ServerResponse).end(`ok ${answered}`);
      answered++;
      if (held.length === 0 && answered < N) await c.until((x) => x.includes(`ok ${answered - 1}`));
    }
    const text = await c.until((x) => x.includes(`ok ${N - 1}`));
    const order = [...text.matchAll(/x-n: \/(\d+)\r\n/g)].map((m) => Number(m[1]));
    t.same(
      order,
      Array.from({ length: N }, (_, i) => i),
      'all answered, in order',
    );
    t.equal(seen, N, 'each request taken once');
    t.ok(peak <= MAX, `at most ${MAX} taken and unanswered at once (peak ${peak})`);
    c.s.destroy();
  },
);

for (const secure of [false, true])
  t.test(
    `property${secure ? ' (TLS)' : ''}: any pipelined mix, any cap, any split into writes: every request answered once, in order, bodies intact, never more than the cap taken`,
    async (t) => {
      const request = fc.oneof(
        fc.record({ kind: fc.constant('get' as const), body: fc.constant('') }),
        fc.record({ kind: fc.constant('length' as const), body: fc.string({ minLength: 0, maxLength: 40 }) }),
        fc.record({ kind: fc.constant('chunked' as const), body: fc.string({ minLength: 1, maxLength: 40 }) }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(request, { minLength: 1, maxLength: 30 }),
          fc.integer({ min: 1, max: 5 }),
          fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 6 }),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
          async (reqs, max, cuts, lazy) => {
            const held: { res: ServerResponse; body: Promise<string> }[] = [];
            let peak = 0;
            const { port, base, lean } = await start(
              t,
              (req, res) => {
                const body = new Promise<string>((resolve) => {
                  let text = '';
                  req.setEncoding('latin1');
                  req.on('data', (c: string) => (text += c));
                  req.on('end', () => resolve(text));
                });
                res.setHeader('x-n', String(req.url));
                held.push({ res, body });
                peak = Math.max(peak, held.length);
              },
              { maxUnanswered: max, tls: secure },
            );
            let bytes = '';
            reqs.forEach((r, i) => {
              const b = Buffer.from(r.body, 'utf8').toString('latin1');
              if (r.kind === 'get') bytes += `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
              else if (r.kind === 'length') bytes += `POST /${i} HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
              else bytes += `POST /${i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`;
            });
            const c = connect(port, secure);
            // The bytes in pieces at the given cut points (one write each, as the network may deliver them).
            let at = 0;
            for (const cut of cuts) {
              const end = Math.min(bytes.length, at + cut);
              if (end > at) c.s.write(Buffer.from(bytes.slice(at, end), 'latin1'));
              at = end;
            }
            if (at < bytes.length) c.s.write(Buffer.from(bytes.slice(at), 'latin1'));
            const bodies: string[] = [];
            for (let answered = 0; answered < reqs.length; answered++) {
              // Turns of the event loop until the request is taken, up to 10 s on the wall clock:
              // on a busy machine the TLS side can take more turns than a count of spins allows.
              for (const until = Date.now() + 10_000; held.length === 0 && Date.now() < until; ) await new Promise((r) => setImmediate(r));
              const next = held.shift();
              if (next === undefined) throw new Error(`request ${answered} never came (${JSON.stringify(c.text().slice(-200))})`);
              bodies.push(await next.body);
              // Some answers wait a turn, so later requests pile up against the cap meanwhile.
              if (lazy[answered % lazy.length] === true) await new Promise((r) => setImmediate(r));
              next.res.end(`ok ${answered}`);
            }
            const text = await c.until((x) => x.includes(`ok ${reqs.length - 1}`));
            c.s.destroy();
            lean.closeAllConnections();
            base.close();
            const order = [...text.matchAll(/x-n: \/(\d+)\r\n/g)].map((m) => Number(m[1]));
            const want = reqs.map((r) => Buffer.from(r.body, 'utf8').toString('latin1'));
            if (JSON.stringify(order) !== JSON.stringify(reqs.map((_, i) => i))) throw new Error(`order ${JSON.stringify(order)}`);
            if (JSON.stringify(bodies) !== JSON.stringify(want)) throw new Error(`bodies ${JSON.stringify(bodies)} != ${JSON.stringify(want)}`);
            if (peak > max) throw new Error(`${peak} taken and unanswered, cap ${max}`);
          },
        ),
        { numRuns: secure ? 30 : 60, seed: 20261207 },
      );
    },
  );

t.test('Expect: 100-continue gets 100 Continue before the answer; another expectation gets 417', async (t) => {
  const bodies: string[] = [];
  const { port } = await start(t, (req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
    });
  });
  const c = connect(port);
  c.s.write('POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  t.equal(await c.until(/\r\n\r\n$/), 'HTTP/1.1 100 Continue\r\n\r\n');
  c.s.write('hello');
  t.match(await c.until(/ok$/), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  t.same(bodies, ['hello']);
  c.s.destroy();
  const d = connect(port);
  d.s.write('POST /up HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 0\r\n\r\n');
  t.match(await d.until(/\r\n\r\n$/), /^HTTP\/1\.1 417 Expectation Failed\r\n/);
  t.same(bodies, ['hello'], 'the handler never saw it');
  d.s.destroy();
});

t.test('a malformed request is a clientError with llhttp code; garbage after a good pipelined request waits for its answer', async (t) => {
  const seen: string[] = [];
  const { base, port } = await start(t, hello);
  base.prependListener('clientError', (err: NodeJS.ErrnoException) => seen.push(err.code ?? ''));
  const a = connect(port);
  a.s.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  await a.closed;
  t.match(a.text(), /^HTTP\/1\.1 400 /);
  t.match(seen[0] ?? '', /^HPE_/);
  const b = connect(port);
  b.s.write('GET /ok HTTP/1.1\r\nHost: x\r\n\r\nBAD\x01 / HTTP/1.1\r\n\r\n');
  await b.closed;
  t.match(b.text(), /^HTTP\/1\.1 200 OK[^]*hello\nHTTP\/1\.1 400 /, 'the good answer first, then the error');
});

t.test('deadlines on the manual clock: a silent new connection gets 408 after headersTimeout; a kept-alive one closes after the keep-alive time', async (t) => {
  const { port, clock } = await start(t, hello, { headersTimeoutMs: 1000, keepAliveTimeoutMs: 5000 });
  const silent = connect(port);
  await new Promise<void>((r) => silent.s.once('connect', () => r()));
  await new Promise((r) => setTimeout(r, 20)); // accepted
  await clock.advance(900);
  t.notOk(silent.s.destroyed, 'before the deadline: open');
  await clock.advance(400);
  await silent.closed;
  t.match(silent.text(), /^HTTP\/1\.1 408 /);

  const kept = connect(port);
  kept.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await kept.until(/hello\n$/);
  await clock.advance(4000);
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(kept.s.destroyed, 'kept alive under the keep-alive time');
  await clock.advance(2000);
  await kept.closed;
  t.equal(kept.text().split('HTTP/1.1').length, 2, 'closed without another answer');

  const slowloris = connect(port);
  slowloris.s.write('GET / HTTP/1.1\r\nHost: x\r\n');
  await new Promise((r) => setTimeout(r, 20));
  await clock.advance(1300);
  await slowloris.closed;
  t.match(slowloris.text(), /^HTTP\/1\.1 408 /, 'a head that never ends gets 408 at the headers deadline');
});

t.test('idle deadline: a request with no byte either way for idleTimeout is closed, one making progress is not', async (t) => {
  let res1: ServerResponse | undefined;
  const { port, clock } = await start(
    t,
    (_req, res) => {
      res1 = res;
      res.writeHead(200);
    },
    { idleTimeoutMs: 3000 },
  );
  const c = connect(port);
  c.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  while (res1 === undefined) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < 5; i++) {
    res1.write('tick');
    await c.until((text) => text.split('tick').length >= i + 2);
    await clock.advance(1000);
  }
  t.notOk(c.s.destroyed, 'writing every second for 5 s: alive');
  await clock.advance(5000);
  await c.closed;
  t.pass('silent past the idle deadline: closed');
});

t.test('request body back-pressure: a handler that does not read stops the socket being read; reading resumes it', async (t) => {
  let req1: IncomingMessage | undefined;
  const { port } = await start(t, (req, res) => {
    req1 = req;
    req.on('end', () => res.end('done'));
  });
  const c = connect(port);
  const total = 64 * 1024 * 1024;
  c.s.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
  const chunk = Buffer.alloc(1024 * 1024, 7);
  let sent = 0;
  const pump = async (): Promise<void> => {
    while (sent < total && !c.s.destroyed) {
      sent += chunk.length;
      if (!c.s.write(chunk)) await new Promise((r) => c.s.once('drain', r));
    }
  };
  void pump();
  while (req1 === undefined) await new Promise((r) => setTimeout(r, 5));
  // Settle: the client's writes stop once the server stopped reading.
  let last = -1;
  while (last !== sent) {
    last = sent;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(sent < total / 2, `the client could send only ${(sent / 1048576).toFixed(0)} MiB of 64 before the server stopped reading`);
  t.ok(req1.readableLength <= 1024 * 1024, `the request holds at most one read (${req1.readableLength} bytes)`);
  req1.resume();
  await c.until(/done$/);
  t.equal(sent, total, 'reading resumed: the whole body went through');
  c.s.destroy();
});

t.test('a client gone mid-body: the request is aborted and the response closes', async (t) => {
  let aborted = false;
  let closed = false;
  let req1: IncomingMessage | undefined;
  const { port } = await start(t, (req, res) => {
    req1 = req;
    req.on('error', () => undefined);
    req.on('aborted', () => (aborted = true));
    res.on('close', () => (closed = true));
    req.resume();
  });
  const c = connect(port);
  c.s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
  while (req1 === undefined) await new Promise((r) => setTimeout(r, 5));
  c.s.destroy();
  while (!closed) await new Promise((r) => setTimeout(r, 5));
  t.ok(aborted, "the request's stream says it was aborted");
  t.ok(closed, "the response's close came");
});

t.test('Upgrade and CONNECT hand the socket over with the bytes after the head', async (t) => {
  const { base, port } = await start(t, hello);
  const got: { event: string; url: string; head: string }[] = [];
  for (const event of ['upgrade', 'connect']) {
    base.on(event, (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      got.push({ event, url: req.url ?? '', head: head.toString('latin1') });
      socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\ntunnel');
    });
  }
  const a = connect(port);
  a.s.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\nfirst-frame');
  await a.closed;
  const b = connect(port);
  b.s.write('CONNECT world:80 HTTP/1.1\r\nHost: world:80\r\n\r\nGET / HTTP/1.1\r\n');
  await b.closed;
  t.same(got, [
    { event: 'upgrade', url: '/chat', head: 'first-frame' },
    { event: 'connect', url: 'world:80', head: 'GET / HTTP/1.1\r\n' },
  ]);
});

t.test('closeIdleConnections closes connections between requests only', async (t) => {
  let held: ServerResponse | undefined;
  const { port, lean } = await start(t, (req, res) => {
    if (req.url === '/hold') held = res;
    else hello(req, res);
  });
  const idle = connect(port);
  idle.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await idle.until(/hello\n$/);
  const busy = connect(port);
  busy.s.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  while (held === undefined) await new Promise((r) => setTimeout(r, 5));
  lean.closeIdleConnections();
  await idle.closed;
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(busy.s.destroyed, 'a connection with a request in progress stays');
  held.end('late');
  t.match(await busy.until(/late/), /late/);
  busy.s.destroy();
});
