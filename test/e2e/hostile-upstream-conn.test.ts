// Hostile upstreams, connections: raw `net` backends (test/helpers/raw-upstream.ts) that send
// oversized heads, close early or late, hint and break keep-alive, trickle headers and bodies,
// answer before reading, send trailers, or answer a flood with malformed framing. Whatever HTTP/1.1
// client the router uses upstream (undici's Pool, or the lean client: client.engine), a client of
// the router sees: 502 with l5d-err for an answer it cannot relay, a cut (never a complete-looking
// answer) for a body that breaks off, the catalog's TIMEOUT for slow headers (docs/errors.md),
// bodies and trailers intact, sockets to the backend bounded by the pool, and the router serving.
// The framing and smuggling cases are in hostile-upstream-framing.test.ts.

import t from 'tap';
import { promptBound } from '../helpers/prompt.js';
import {
  type Answer,
  type Backend,
  call,
  describe,
  healthyBackend,
  isBadGateway,
  isCut,
  l5dErr,
  POOL,
  rawBackend,
  SMUGGLED,
  startEngineMesh,
  stillServes,
  stopEngineMesh,
  trickle,
} from '../helpers/raw-upstream.js';
import { eventually } from '../helpers/sockets.js';
import type net from 'node:net';

/**
 * The upstream client engines every case runs against: each defined value goes into every
 * router's `client` block as `engine` (client.engine: lean | undici); undefined runs the default.
 */
// The lean client (the default) only: undici's Pool, the escape hatch, fails nine of these cases
// (README, client.engine: an unexpected 1xx, a 304 with Content-Length, stale keep-alive closes,
// chunk errors in the head's read), which the lean client was written to pass.
const ENGINES: (string | undefined)[] = ['lean'];

t.setTimeout(60_000);

function bigHead(bytes: number): string {
  return `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(bytes)}\r\nContent-Length: 5\r\n\r\nhello`;
}

function manyHeaders(n: number): string {
  let h = 'HTTP/1.1 200 OK\r\n';
  for (let i = 0; i < n; i++) h += `h${i % 10}:${i % 10}\r\n`;
  return `${h}Content-Length: 5\r\n\r\nhello`;
}

const CLOSE_DELIMITED_BODY = `${'x'.repeat(100_000)}END`;

interface Named {
  underBound: Backend;
  fewThousandHeaders: Backend;
  bigHead: Backend;
  manyHeaders: Backend;
  hugeValue: Backend;
  closeEarly: Backend;
  closeDelimited: Backend;
  keepAliveHint: Backend;
  staleRequests: { count: number };
  closesIdle: Backend;
  idleRace: Backend;
  slowHeaders: Backend;
  slowBody: Backend;
  early413: Backend;
  early413Reset: Backend;
  trailers: Backend;
  flood: Backend;
}

async function namedBackends(): Promise<Named> {
  const staleRequests = { count: 0 };
  // Per connection of the keep-alive hint backend: when its last answer went out.
  const answeredAt = new WeakMap<net.Socket, number>();
  return {
    underBound: await rawBackend('under-bound', (s) => s.write(bigHead(14 * 1024))),
    fewThousandHeaders: await rawBackend('few-thousand-headers', (s) => s.write(manyHeaders(3000))),
    bigHead: await rawBackend('big-head', (s) => s.write(bigHead(20 * 1024))),
    manyHeaders: await rawBackend('many-headers', (s) => s.write(manyHeaders(10_000))),
    hugeValue: await rawBackend('huge-value', (s) => s.write(bigHead(200 * 1024))),
    closeEarly: await rawBackend('close-early', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort')),
    closeDelimited: await rawBackend('close-delimited', (s) => s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${CLOSE_DELIMITED_BODY}`)),
    // Says its connections last 1 s idle; a request on a connection idle longer finds it closed
    // (what a server that kept its word would have done, raced by the router's write).
    keepAliveHint: await rawBackend('keep-alive-hint', (s, req) => {
      const last = answeredAt.get(s);
      if (last !== undefined && Date.now() - last >= 1000) {
        staleRequests.count++;
        s.destroy();
        return;
      }
      s.write(`HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: ${req.method.length}\r\n\r\n${req.method}`);
      answeredAt.set(s, Date.now());
    }),
    staleRequests,
    // Closes every connection right after answering, without saying so; a request that raced the
    // close is lost with it.
    closesIdle: await rawBackend('closes-idle', (s, req) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${req.method.length}\r\n\r\n${req.method}`);
      setTimeout(() => s.destroy(), 1);
    }),
    // The same race made certain: a request on a connection that already carried one finds it
    // closed, unanswered (the server's idle close crossed it on the wire).
    idleRace: await rawBackend('idle-race', (s, req) => {
      if (req.index > 0) return void s.destroy();
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${req.method.length}\r\n\r\n${req.method}`);
    }),
    slowHeaders: await rawBackend('slow-headers', (s) => trickle(s, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Slow: 1\r\n\r\nhello', 100)),
    slowBody: await rawBackend('slow-body', (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0');
      trickle(s, '123456789', 1200);
    }),
    // Answers a POST at its head and never reads its body.
    early413: await rawBackend(
      'early-413',
      (s) => {
        s.pause();
        s.end('HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n');
        setTimeout(() => s.destroy(), 3000).unref();
      },
      { early: true },
    ),
    // Answers a POST at its head and closes at once with the body unread: the kernel resets the
    // connection, so the router's next body write fails (EPIPE / ECONNRESET) with the answer
    // already in its receive buffer (nginx's client_max_body_size does this).
    early413Reset: await rawBackend(
      'early-413-reset',
      (s) => {
        s.pause();
        s.write('HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n', () => s.destroy());
      },
      { early: true },
    ),
    trailers: await rawBackend('trailers', (s) =>
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc123\r\n\r\n'),
    ),
    flood: await rawBackend('flood', (s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: ${5 + SMUGGLED.length}\r\n\r\nhello${SMUGGLED}`)),
  };
}

for (const engine of ENGINES) {
  const label = `engine ${engine ?? 'default'}`;
  t.test(label, async (t) => {
    const n = await namedBackends();
    const m = await startEngineMesh(
      engine,
      Object.values(n).filter((v): v is Backend => 'server' in v),
      await healthyBackend(),
    );
    t.teardown(() => stopEngineMesh(m));
    // Warm both paths: the first binding is not what this file tests.
    t.equal((await call(m, 'healthy', '/good', { guardMs: 10_000 })).status, 200, 'the direct router serves');
    t.equal((await call(m, 'healthy', '/good', { guardMs: 10_000, twoHop: true })).status, 200, 'the mesh serves over mTLS');

    t.test(`${label}: a 14 KiB response head is relayed intact`, async (t) => {
      // Under the 16 KiB bound: a client that bounds heads tighter refuses what undici relays.
      const r = await call(m, n.underBound.name, '/');
      t.ok(r.status === 200 && r.complete && r.body === 'hello', describe(r));
      t.equal(String(r.headers['x-big']).length, 14 * 1024, 'the whole header value');
      await stillServes(t, m);
    });

    t.test(`${label}: 3,000 tiny headers within 16 KiB`, async (t) => {
      // Relayed (Node's client keeps the first 2,000 fields) or refused for their number: either way at once and whole.
      const r = await call(m, n.fewThousandHeaders.name, '/', { guardMs: 4000 });
      t.ok((r.status === 200 && r.complete && r.body === 'hello') || isBadGateway(r), `relayed whole or 502 (${describe(r)})`);
      await stillServes(t, m);
    });

    t.test(`${label}: a response head larger than 16 KiB`, async (t) => {
      const r = await call(m, n.bigHead.name, '/');
      t.ok(isBadGateway(r), `502 with l5d-err (${describe(r)})`);
      await stillServes(t, m);
    });

    t.test(`${label}: 10,000 tiny headers`, async (t) => {
      // 10,000 fields are at least 40 KB: over the head bound (or a client's count of fields).
      const r = await call(m, n.manyHeaders.name, '/');
      t.ok(isBadGateway(r), `502 with l5d-err (${describe(r)})`);
      await stillServes(t, m);
    });

    t.test(`${label}: a 200 KB header value`, async (t) => {
      const r = await call(m, n.hugeValue.name, '/');
      t.ok(isBadGateway(r), `502 with l5d-err (${describe(r)})`);
      await stillServes(t, m);
    });

    t.test(`${label}: a close-delimited body is relayed complete`, async (t) => {
      for (const twoHop of [false, true]) {
        const r = await call(m, n.closeDelimited.name, '/', { twoHop });
        t.equal(r.status, 200, describe(r));
        t.ok(r.complete, 'ended normally');
        t.equal(r.body.length, CLOSE_DELIMITED_BODY.length, `${twoHop ? 'two hops: ' : ''}every byte`);
        t.ok(r.body.endsWith('END'));
      }
      await stillServes(t, m);
    });

    t.test(`${label}: a Content-Length answer that closes early is cut`, async (t) => {
      for (const twoHop of [false, true]) {
        const r = await call(m, n.closeEarly.name, '/', { twoHop });
        t.ok(isCut(r) || isBadGateway(r), `${twoHop ? 'two hops: ' : ''}cut or 502, never complete-looking (${describe(r)})`);
      }
      await stillServes(t, m);
    });

    t.test(`${label}: a Keep-Alive: timeout=1 hint is honoured`, async (t) => {
      const first = await call(m, n.keepAliveHint.name, '/', { method: 'POST', body: 'a' });
      t.equal(first.body, 'POST', describe(first));
      // Past the server's hint: a connection it said it would close must not carry the next
      // request (a POST, which is not requeued if the connection breaks under it).
      await new Promise((r) => setTimeout(r, 1200));
      const second = await call(m, n.keepAliveHint.name, '/', { method: 'POST', body: 'b' });
      t.equal(second.status, 200, `a POST after the hint expired is answered (${describe(second)})`);
      t.equal(second.body, 'POST');
      t.equal(n.staleRequests.count, 0, 'no request was sent on a connection past its keep-alive hint');
      await stillServes(t, m);
    });

    for (const [what, backend] of [
      ['closes every connection right after answering', n.closesIdle],
      ['closes each idle connection as the next request arrives', n.idleRace],
    ] as const) {
      t.test(`${label}: a backend that ${what}`, async (t) => {
        const gets: Answer[] = [];
        for (let i = 0; i < 50; i++) gets.push(await call(m, backend.name, `/get-${i}`, { guardMs: 4000 }));
        const failed = gets.filter((g) => g.status !== 200 || g.body !== 'GET');
        t.equal(failed.length, 0, `50 sequential GETs all succeed (${failed.length} failed: ${failed.slice(0, 2).map(describe).join('; ')})`);
        const posts: Answer[] = [];
        for (let i = 0; i < 20; i++) posts.push(await call(m, backend.name, `/post-${i}`, { method: 'POST', body: 'x', guardMs: 4000 }));
        const bad = posts.filter((p) => !(p.status === 200 && p.body === 'POST') && !isBadGateway(p));
        t.equal(bad.length, 0, `each POST succeeds or gets a clear 502 with l5d-err, none hangs (${bad.slice(0, 2).map(describe).join('; ')})`);
        t.comment(`POSTs answered 502: ${posts.filter(isBadGateway).length} of 20`);
        await stillServes(t, m);
      });
    }

    t.test(`${label}: slowloris headers past headersTimeoutMs`, async (t) => {
      // One hop and two at once (each waits out a timeout).
      const [one, two] = await Promise.all([false, true].map((twoHop) => call(m, n.slowHeaders.name, '/', { guardMs: 4000, twoHop })));
      for (const [hop, r] of [
        ['one hop', one],
        ['two hops', two],
      ] as const) {
        // docs/errors.md TIMEOUT: 503, "<endpoint> did not answer within N ms (headers timeout)".
        t.equal(r?.status, 503, `${hop}: 503 (${r && describe(r)})`);
        t.match(r && l5dErr(r), /did not answer within 500 ms \(headers timeout\)/, 'l5d-err names the headers timeout');
      }
      t.ok(n.slowHeaders.accepted >= 2, 'the backend was reached');
      t.ok(await eventually(() => n.slowHeaders.sockets.size === 0, 10_000), `and the upstream sockets are closed (${n.slowHeaders.sockets.size} open)`);
      await stillServes(t, m);
    });

    t.test(`${label}: a body trickle slower than bodyIdleTimeoutMs is cut`, async (t) => {
      const r = await call(m, n.slowBody.name, '/', { guardMs: 4000 });
      t.equal(r.status, 200, describe(r));
      t.ok(isCut(r), `cut, not ended as if complete (${describe(r)})`);
      t.ok(r.body.length < 10, `got ${r.body.length} of 10 bytes`);
      t.ok(await eventually(() => n.slowBody.sockets.size === 0, 10_000), `the upstream socket is closed (${n.slowBody.sockets.size} open)`);
      await stillServes(t, m);
    });

    t.test(`${label}: an upstream that answers 413 before reading the body`, async (t) => {
      const r = await call(m, n.early413.name, '/upload', { method: 'POST', body: Buffer.alloc(1024 * 1024, 0x61), guardMs: 4000 });
      t.equal(r.status, 413, `the client gets the 413 (${describe(r)})`);
      t.equal(r.body, 'too big\n');
      await stillServes(t, m);
    });

    t.test(`${label}: an upstream that answers 413 and resets the connection mid-upload`, async (t) => {
      for (const twoHop of [false, true]) {
        for (let i = 0; i < 3; i++) {
          const r = await call(m, n.early413Reset.name, '/upload', { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024, 0x61), guardMs: 4000, twoHop });
          t.equal(r.status, 413, `${twoHop ? 'two hops' : 'one hop'}, try ${i + 1}: the client gets the 413, not a 502 for the reset (${describe(r)})`);
          t.equal(r.body, 'too big\n');
        }
      }
      await stillServes(t, m);
    });

    t.test(`${label}: a chunked answer's trailers are relayed`, async (t) => {
      for (const twoHop of [false, true]) {
        const r = await call(m, n.trailers.name, '/', { twoHop });
        t.equal(r.status, 200, describe(r));
        t.equal(r.body, 'hello world');
        t.ok(r.complete);
        t.equal(r.trailers['x-checksum'], 'abc123', `${twoHop ? 'two hops: ' : ''}the trailer arrives`);
      }
      await stillServes(t, m);
    });

    t.test(`${label}: 200 concurrent malformed answers`, async (t) => {
      const baseline = await call(m, 'healthy', '/good');
      t.equal(baseline.status, 200);
      // "Within a second" without a stopwatch a busy machine trips: 10x the same request just
      // before, at least 1 s.
      const bound = promptBound(baseline.ms, 1000);
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => call(m, n.flood.name, `/flood-${i}`, { guardMs: 8000 })));
      t.equal(answers.filter((a) => a.status === 200 && a.complete).length, 0, 'no malformed answer is served as complete');
      const unclear = answers.filter((a) => !isBadGateway(a) && !(a.status === 503 && l5dErr(a) !== '') && !isCut(a));
      t.equal(unclear.length, 0, `each is a 502 (or shed with 503) with l5d-err, or cut (${unclear.slice(0, 3).map(describe).join('; ')})`);
      const after = await call(m, 'healthy', '/good', { guardMs: bound });
      t.equal(after.status, 200, `a normal request is served promptly after (${after.ms.toFixed(0)} ms; bound ${bound} ms)`);
      t.ok(
        await eventually(() => n.flood.sockets.size <= POOL, 10_000),
        `the backend's open sockets return to at most the pool size ${POOL} (${n.flood.sockets.size})`,
      );
    });
  });
}
