// Hostile upstreams, framing: backends that are raw `net` servers writing exact bytes
// (test/helpers/raw-upstream.ts), so each case controls the answer byte for byte. Whatever
// HTTP/1.1 client the router uses upstream (undici's Pool, or the lean client: client.engine), a
// client of the router sees one contract: a malformed answer becomes a 502 with l5d-err (or a cut,
// once its head was relayed), never smuggled bytes served as an answer; the next request on the
// same client keep-alive connection gets its own backend's fresh answer (no desync); a POST whose
// answer was malformed reached an app and is never sent again; and the router keeps serving.
// Timeouts, sizes, closes and floods are in hostile-upstream-conn.test.ts.
//
// Most cases are one hop (client -> node-a's direct router -> backend); the key smuggling shapes
// also run through two routers over mTLS (node-a outgoing -> node-b incoming -> backend), where
// the hostile answer reaches the client through the peer router.

import http from 'node:http';
import t, { type Test } from 'tap';
import {
  type Answer,
  type Backend,
  call,
  describe,
  type EngineMesh,
  healthyBackend,
  isBadGateway,
  isCut,
  rawBackend,
  SMUGGLED,
  startEngineMesh,
  stillServes,
  stopEngineMesh,
} from '../helpers/raw-upstream.js';
import { eventually } from '../helpers/sockets.js';

/**
 * The upstream client engines every case runs against: each defined value goes into every
 * router's `client` block as `engine` (client.engine: lean | undici); undefined runs the default.
 */
// The lean client (the default) only: undici's Pool, the escape hatch, fails nine of these cases
// (README, client.engine: an unexpected 1xx, a 304 with Content-Length, stale keep-alive closes,
// chunk errors in the head's read), which the lean client was written to pass.
const ENGINES: (string | undefined)[] = ['lean'];

t.setTimeout(60_000);

// ---------------------------------------------------------------------------------------------
// The cases.

interface FramingCase {
  readonly name: string;
  /** The backend's whole answer to GET /evil (the connection stays open after it). */
  readonly answer: string;
  /**
   * Whether an answer other than a 502 or a cut is allowed, and which (RFC 9112 lets a recipient
   * accept some shapes: a bare LF line end, a higher minor version, whitespace removed before the
   * colon, obs-fold replaced by spaces, NUL/CR replaced by spaces).
   */
  readonly alsoOk?: (a: Answer) => boolean;
  /** Run through two routers too. */
  readonly twoHop?: boolean;
}

const OK_HELLO = (a: Answer): boolean => a.status === 200 && a.complete && a.body === 'hello';

const FRAMING: FramingCase[] = [
  {
    name: 'Content-Length and Transfer-Encoding: chunked together',
    answer: `HTTP/1.1 200 OK\r\nContent-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    twoHop: true,
  },
  {
    name: 'two different Content-Lengths',
    answer: `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: ${5 + SMUGGLED.length}\r\n\r\nhello${SMUGGLED}`,
    twoHop: true,
  },
  {
    name: 'two different Content-Lengths, the body matching the second',
    // RFC 9112 6.3: differing lengths are an unrecoverable error; a proxy answers 502.
    answer: `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!`,
  },
  {
    name: 'two equal Content-Lengths',
    answer: `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
    // RFC 9110 8.6: a recipient may take a list of one repeated value as that value.
    alsoOk: OK_HELLO,
  },
  {
    name: 'Content-Length and chunked together, the length matching the decoded body',
    answer: `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
    // RFC 9112 6.3: Transfer-Encoding wins and a proxy may relay the decoded body without the
    // Content-Length ("ought to be handled as an error" is a should); the bytes after it are never an answer.
    alsoOk: OK_HELLO,
  },
  { name: 'a Content-Length list of two values', answer: `HTTP/1.1 200 OK\r\nContent-Length: 5, ${5 + SMUGGLED.length}\r\n\r\nhello${SMUGGLED}` },
  { name: 'a signed Content-Length (+5)', answer: `HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello${SMUGGLED}` },
  { name: 'a negative Content-Length', answer: `HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello${SMUGGLED}` },
  { name: 'a non-numeric Content-Length', answer: `HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello${SMUGGLED}` },
  {
    name: 'Transfer-Encoding: chunked, identity',
    answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  },
  {
    // Not a framing error: llhttp removes the chunks and leaves the gzip bytes, which relayed
    // re-chunked would reach the client as if they were the content. Refused before the head.
    name: 'Transfer-Encoding: gzip, chunked',
    answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    twoHop: true,
  },
  { name: 'Transfer-Encoding: gzip (read until close)', answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello` },
  { name: 'Transfer-Encoding: xchunked', answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${SMUGGLED}` },
  {
    name: 'Transfer-Encoding: chunked twice',
    answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
    // A sender must not chunk twice (RFC 9112 7); llhttp decodes once. The router re-frames what
    // it relays, so "hello" whole is safe; the smuggled bytes after it must still never be served.
    alsoOk: OK_HELLO,
  },
  {
    name: 'a bad chunk size (zz)',
    answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
    twoHop: true,
  },
  {
    name: 'a chunk size overflowing 64 bits',
    answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  },
  {
    name: 'a chunk extension with a bare LF',
    answer: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  },
  {
    name: 'obs-fold in a response header',
    answer: `HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello`,
    // RFC 9112 5.2: a proxy either answers 502 or replaces the fold with spaces.
    alsoOk: (a) => OK_HELLO(a) && /^a +b$/.test(String(a.headers['x-folded'])),
  },
  {
    name: 'an obs-fold continuing Content-Length',
    answer: `HTTP/1.1 200 OK\r\nContent-Length: 5\r\n ${SMUGGLED.length}\r\n\r\nhello${SMUGGLED}`,
  },
  {
    name: 'bare LF line endings',
    answer: `HTTP/1.1 200 OK\nContent-Length: 5\nX-Lf: 1\n\nhello`,
    // RFC 9112 2.2: a recipient MAY accept a bare LF as a line end.
    alsoOk: OK_HELLO,
  },
  {
    name: 'a bare LF hiding a second Content-Length',
    answer: `HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: ${5 + SMUGGLED.length}\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED}`,
  },
  {
    name: 'NUL inside a header value',
    answer: `HTTP/1.1 200 OK\r\nX-Nul: a\0b\r\nContent-Length: 5\r\n\r\nhello`,
    // RFC 9110 5.5: reject, or replace the NUL with SP.
    alsoOk: (a) => OK_HELLO(a) && a.headers['x-nul'] === 'a b',
  },
  {
    name: 'CR inside a header value',
    answer: `HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\nContent-Length: 5\r\n\r\nhello`,
    alsoOk: (a) => OK_HELLO(a) && a.headers['x-cr'] === 'a b',
  },
  {
    name: 'a space between a header name and the colon',
    answer: `HTTP/1.1 200 OK\r\nContent-Length : ${5 + SMUGGLED.length}\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED}`,
    twoHop: true,
  },
  {
    name: 'HTTP/1.2 status line',
    answer: `HTTP/1.2 200 OK\r\nContent-Length: 5\r\n\r\nhello`,
    // RFC 9112 2.3: a higher minor version may be processed as 1.1.
    alsoOk: OK_HELLO,
  },
  {
    name: 'HTTP/2.0 status line on an HTTP/1.1 connection',
    answer: `HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello`,
    // llhttp (both engines' parser) takes 2.0 in an HTTP/1 head; the framing is still HTTP/1's, so
    // relaying it re-framed is safe.
    alsoOk: OK_HELLO,
  },
  // llhttp also parses RTSP and ICE heads (RFC 9112 2.3 names only HTTP). Node's parser binding
  // does not say which protocol a head named, so the lean client, like Node's own http client,
  // relays such an answer as HTTP/1.1: its framing is still HTTP's (Content-Length here), so nothing
  // desyncs, which the fresh request after it checks. Refusing it (502) is as good.
  { name: 'an RTSP/1.0 status line', answer: `RTSP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello`, alsoOk: OK_HELLO },
  { name: 'an ICE/1.0 status line', answer: `ICE/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello`, alsoOk: OK_HELLO },
  { name: 'a garbage status line', answer: `HELLO THERE\r\nContent-Length: 5\r\n\r\nhello` },
  { name: 'status and reason swapped', answer: `HTTP/1.1 OK 200\r\nContent-Length: 5\r\n\r\nhello` },
  { name: 'status code 1000', answer: `HTTP/1.1 1000 Big\r\nContent-Length: 5\r\n\r\nhello` },
  { name: 'status code 99', answer: `HTTP/1.1 99 Small\r\nContent-Length: 5\r\n\r\nhello` },
  {
    name: 'status code 600',
    answer: `HTTP/1.1 600 Beyond\r\nContent-Length: 5\r\n\r\nhello`,
    alsoOk: (a) => a.status === 600 && a.complete && a.body === 'hello',
  },
  { name: 'a header line without a colon', answer: `HTTP/1.1 200 OK\r\nX-No-Colon\r\nContent-Length: 5\r\n\r\nhello` },
  { name: 'a head ending in a bare LF then CRLF', answer: `HTTP/1.1 200 OK\r\nX-A: a\n\r\nhello` },
];

/**
 * GET /evil then GET /good on one client keep-alive connection (a new one if the router closed
 * it): the first is refused or cut, never the smuggled answer; the second is the backend's own.
 */
async function framingCase(t: Test, m: EngineMesh, c: FramingCase, backend: Backend, twoHop: boolean): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const evil = await call(m, backend.name, '/evil', { agent, twoHop, guardMs: 4000 });
    const allowed = isBadGateway(evil) || isCut(evil) || (c.alsoOk?.(evil) ?? false);
    t.ok(allowed, `refused with 502 and l5d-err, or cut (got ${describe(evil)})`);
    t.notOk(evil.complete && evil.status === 200 && evil.headers['x-smuggled'] !== undefined, 'the smuggled head is never served');
    t.notOk(evil.complete && evil.body === 'SMUGGLED', 'nor its body as the answer');
    const good = await call(m, backend.name, '/good', { agent, twoHop, guardMs: 4000 });
    t.equal(good.status, 200, `the next request on the same client connection gets an answer (${describe(good)}, reused ${good.reused})`);
    t.equal(good.body, 'fresh', 'its own backend answer, not bytes left from the malformed one');
    t.equal(good.headers['x-fresh'], '1');
    await stillServes(t, m, twoHop);
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Backends for the cases beyond the table, made once per engine.

interface Named {
  extraBytes: Backend;
  lateExtraBytes: Backend;
  lateWritten: { at: number };
  upgrade101: Backend;
  earlyHints: Backend;
  unexpectedContinue: Backend;
  manyContinues: Backend;
  head: Backend;
  headStray: Backend;
  noContent: Backend;
  notModified: Backend;
  notModifiedClean: Backend;
  /** Two endpoints of one service, both answering malformed: a POST must reach only one. */
  postTwice: [Backend, Backend];
}

const TWO_LENGTHS = `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: ${5 + SMUGGLED.length}\r\n\r\nhello${SMUGGLED}`;

async function namedBackends(): Promise<Named> {
  const lateWritten = { at: 0 };
  return {
    extraBytes: await rawBackend('extra-bytes', (s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${SMUGGLED}`)),
    lateExtraBytes: await rawBackend('late-extra-bytes', (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => s.write(SMUGGLED, () => (lateWritten.at = Date.now())), 50);
    }),
    lateWritten,
    upgrade101: await rawBackend('upgrade-101', (s) =>
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: Upgrade\r\n\r\nSMUGGLED raw tunnel bytes'),
    ),
    earlyHints: await rawBackend('early-hints', (s) =>
      s.write(
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload\r\n\r\n' +
          'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: 1\r\n\r\nfinal',
      ),
    ),
    unexpectedContinue: await rawBackend('unexpected-continue', (s) =>
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: 1\r\n\r\nfinal'),
    ),
    manyContinues: await rawBackend('many-continues', (s) =>
      s.write(`${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(1000)}HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: 1\r\n\r\nfinal`),
    ),
    head: await rawBackend('head', (s, req) => {
      if (req.method === 'HEAD') s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Head: 1\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    }),
    // A misbehaving server that sends a body to HEAD: those bytes are no answer to anything.
    headStray: await rawBackend('head-stray', (s, req) => {
      if (req.method === 'HEAD') s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    }),
    noContent: await rawBackend('no-content', (s) => s.write(`HTTP/1.1 204 No Content\r\n\r\n${SMUGGLED}`)),
    notModified: await rawBackend('not-modified', (s) => s.write(`HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\nETag: "v1"\r\n\r\n${SMUGGLED}`)),
    // Valid (RFC 9110 8.6): a 304's Content-Length is the selected representation's, with no body.
    notModifiedClean: await rawBackend('not-modified-clean', (s) => s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\nETag: "v1"\r\n\r\n')),
    postTwice: [await rawBackend('post-twice', (s) => s.write(TWO_LENGTHS)), await rawBackend('post-twice', (s) => s.write(TWO_LENGTHS))],
  };
}

/** GET `path` then GET /good on one client keep-alive connection: the second is its backend's own answer. */
async function thenFresh(t: Test, m: EngineMesh, backend: Backend, first: (agent: http.Agent) => Promise<Answer>, twoHop = false): Promise<Answer> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await first(agent);
    const next = await call(m, backend.name, '/good', { agent, twoHop });
    t.equal(next.body, 'fresh', `${twoHop ? 'two hops: ' : ''}the next request gets its own fresh answer (${describe(next)}, reused ${next.reused})`);
    t.equal(next.headers['x-smuggled'], undefined, 'never the bytes left on the upstream connection');
    return a;
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------

for (const engine of ENGINES) {
  const label = `engine ${engine ?? 'default'}`;
  t.test(label, async (t) => {
    const framing = new Map<FramingCase, Backend>();
    for (const [i, c] of FRAMING.entries()) framing.set(c, await rawBackend(`framing-${i}`, (s) => s.write(c.answer)));
    const n = await namedBackends();
    const backends = [
      ...framing.values(),
      ...Object.values(n)
        .flat()
        .filter((v): v is Backend => 'server' in v),
    ];
    const m = await startEngineMesh(engine, backends, await healthyBackend());
    t.teardown(() => stopEngineMesh(m));
    // Warm both paths: the first binding is not what this file tests.
    t.equal((await call(m, 'healthy', '/good', { guardMs: 10_000 })).status, 200, 'the direct router serves');
    t.equal((await call(m, 'healthy', '/good', { guardMs: 10_000, twoHop: true })).status, 200, 'the mesh serves over mTLS');

    for (const c of FRAMING) {
      const backend = framing.get(c) as Backend;
      t.test(`${label}: ${c.name}`, (t) => framingCase(t, m, c, backend, false));
      if (c.twoHop) t.test(`${label}: ${c.name}, through two routers over mTLS`, (t) => framingCase(t, m, c, backend, true));
    }

    t.test(`${label}: a POST answered malformed reached an app: it is not sent again`, async (t) => {
      const r = await call(m, 'post-twice', '/order', { method: 'POST', body: 'buy 1' });
      t.ok(isBadGateway(r) || isCut(r), `502 with l5d-err, or cut (${describe(r)})`);
      const posts = n.postTwice.reduce((sum, b) => sum + b.seen.filter((q) => q.path === '/order').length, 0);
      t.equal(posts, 1, 'the service saw the POST once (requeued only what no app received)');
      await stillServes(t, m);
    });

    t.test(`${label}: a second unsolicited response after a complete one`, async (t) => {
      for (const twoHop of [false, true]) {
        const first = await thenFresh(t, m, n.extraBytes, (agent) => call(m, n.extraBytes.name, '/first', { agent, twoHop }), twoHop);
        t.ok(
          (first.status === 200 && first.complete && first.body === 'ok') || isBadGateway(first),
          `the first answer is relayed or refused (${describe(first)})`,
        );
      }
      await stillServes(t, m);
    });

    t.test(`${label}: an unsolicited response written to an idle upstream connection`, async (t) => {
      await thenFresh(t, m, n.lateExtraBytes, async (agent) => {
        const first = await call(m, n.lateExtraBytes.name, '/first', { agent });
        t.ok(first.status === 200 && first.body === 'ok', `the first answer is relayed (${describe(first)})`);
        // The extra bytes reach the router's idle connection before the next request is sent: a
        // client cannot tell bytes still in flight from an answer, only bytes that arrived idle.
        t.ok(await eventually(() => n.lateWritten.at > 0, 10_000), 'the backend wrote its extra response');
        await new Promise((r) => setTimeout(r, 100));
        return first;
      });
      await stillServes(t, m);
    });

    t.test(`${label}: an unsolicited 101 Switching Protocols to a plain GET`, async (t) => {
      const r = await thenFresh(t, m, n.upgrade101, (agent) => call(m, n.upgrade101.name, '/', { agent }));
      t.ok(isBadGateway(r), `502 with l5d-err, no tunnel (${describe(r)})`);
      t.notOk(r.body.includes('SMUGGLED'), 'the bytes after the 101 reach no one');
      await stillServes(t, m);
    });

    t.test(`${label}: 103 Early Hints with headers before the final answer`, async (t) => {
      const r = await call(m, n.earlyHints.name, '/');
      t.ok(r.status === 200 && r.complete && r.body === 'final', `the final answer is relayed intact (${describe(r)})`);
      t.equal(r.headers['x-final'], '1');
      await stillServes(t, m);
    });

    t.test(`${label}: an unexpected 100 Continue before the final answer of a GET`, async (t) => {
      // RFC 9110 15.2: a client MUST parse 1xx answers it did not expect; a user agent MAY ignore them.
      const r = await call(m, n.unexpectedContinue.name, '/');
      t.ok(r.status === 200 && r.complete && r.body === 'final', `the final answer is relayed intact (${describe(r)})`);
      t.equal(r.headers['x-final'], '1');
      await stillServes(t, m);
    });

    t.test(`${label}: 1,000 100-continue heads before the final answer`, async (t) => {
      const r = await call(m, n.manyContinues.name, '/', { guardMs: 4000 });
      t.ok((r.status === 200 && r.complete && r.body === 'final') || isBadGateway(r), `relayed intact after them, or 502, without hanging (${describe(r)})`);
      await stillServes(t, m);
    });

    t.test(`${label}: HEAD answered with Content-Length and no body, then a GET`, async (t) => {
      const head = await thenFresh(t, m, n.head, async (agent) => {
        const h = await call(m, n.head.name, '/', { method: 'HEAD', agent });
        const get = await call(m, n.head.name, '/', { agent });
        t.equal(get.body, 'hello', `the GET after it is answered whole (${describe(get)})`);
        return h;
      });
      t.equal(head.status, 200, describe(head));
      t.ok(head.complete);
      t.equal(head.headers['content-length'], '5', 'HEAD keeps Content-Length');
      t.equal(head.headers['x-head'], '1');
      t.equal(head.body, '');
      const [h, g] = n.head.seen;
      // Reusing the connection after a HEAD is the client's choice (undici closes it); if it does,
      // the GET above shows it expected no body.
      t.comment(`the GET went on ${h?.conn === g?.conn ? 'the same' : 'a new'} upstream connection`);
      await stillServes(t, m);
    });

    t.test(`${label}: HEAD answered with a body (a misbehaving server)`, async (t) => {
      const head = await thenFresh(t, m, n.headStray, (agent) => call(m, n.headStray.name, '/', { method: 'HEAD', agent }));
      t.ok((head.status === 200 && head.complete && head.body === '') || isBadGateway(head), `HEAD without a body, or 502 (${describe(head)})`);
      await stillServes(t, m);
    });

    t.test(`${label}: 304 with a Content-Length and no body, then a GET`, async (t) => {
      const r = await thenFresh(t, m, n.notModifiedClean, (agent) => call(m, n.notModifiedClean.name, '/', { agent }));
      t.ok(r.status === 304 && r.complete && r.body === '', `the 304 is relayed, without a body (${describe(r)})`);
      t.equal(r.headers.etag, '"v1"');
      await stillServes(t, m);
    });

    for (const [what, backend, status] of [
      ['204', n.noContent, 204],
      ['304', n.notModified, 304],
    ] as const) {
      t.test(`${label}: ${what} answered with stray body bytes`, async (t) => {
        const r = await thenFresh(t, m, backend, (agent) => call(m, backend.name, '/', { agent }));
        t.ok((r.status === status && r.complete && r.body === '') || isBadGateway(r), `${what} without a body, or 502 (${describe(r)})`);
        await stillServes(t, m);
      });
    }
  });
}
