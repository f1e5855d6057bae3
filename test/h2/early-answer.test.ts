// An app that answers before it has read the whole request (HTTP 413, a gRPC status sent before the
// client stream ends) and then resets its stream without error, as Node's http2 server and gRPC's
// C-core do. Through both h2 routers, with node:http2 clients that upload until told to stop: the
// client gets the answer and its stream is closed (RST_STREAM NO_ERROR, RFC 9113 8.1) instead of
// waiting on a window that never opens; request data still arriving for an upstream stream the app
// closed does not bring the router down; nothing stays in flight.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import t from 'tap';
import { A, B, nodesMayCall, startH2Mesh, type H2Mesh } from '../helpers/h2-mesh.js';
import { request } from '../helpers/http.js';

const POLICY = nodesMayCall(['/early']);
/** A ceiling against a hang, not a deadline: every wait ends as soon as its condition holds. */
const SETTLE_MS = 20_000;

/** What the app sends on /early/queued once its window is full: more than the client's window. */
const QUEUED_BODY = 30_000;

let mesh: H2Mesh;
let app: http2.Http2Server;

/**
 * The app never reads a request body (its window, 1,000 bytes, fills and stays full). /early/http
 * answers 413 at once, /early/grpc a trailers-only FAILED_PRECONDITION, /early/queued 200 with a
 * body once its window is full (so the router has request data queued for it). Node's server then
 * resets each stream with NO_ERROR, since the app never read it.
 */
function startApp(): Promise<number> {
  app = http2.createServer({ settings: { initialWindowSize: 1000 } });
  app.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const path = headers[':path'] ?? '';
    if (path === '/early/http') {
      stream.respond({ ':status': 413, 'content-type': 'text/plain' });
      stream.end('too large\n');
    } else if (path === '/early/grpc') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '9', 'grpc-message': 'early' }, { endStream: true });
    } else {
      const full = (): void => {
        if (stream.destroyed) return;
        if (stream.state.localWindowSize !== 0) {
          setImmediate(full);
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        stream.end(Buffer.alloc(QUEUED_BODY, 7));
      };
      full();
    }
  });
  return new Promise((resolve) => app.listen(0, B, () => resolve((app.address() as { port: number }).port)));
}

/** Resolves with `what` once `p` settles, or rejects past the ceiling. */
function settled<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const ceiling = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${SETTLE_MS} ms`)), SETTLE_MS);
  });
  return Promise.race([p, ceiling]).finally(() => clearTimeout(timer));
}

interface Exchange {
  readonly stream: ClientHttp2Stream;
  readonly head: Promise<IncomingHttpHeaders>;
  /** The body and the reset code once the stream has closed. */
  readonly closed: Promise<{ body: Buffer; rstCode: number }>;
}

function post(session: ClientHttp2Session, path: string, grpc: boolean): Exchange {
  const headers = {
    ':method': 'POST',
    ':path': path,
    'content-type': grpc ? 'application/grpc' : 'application/octet-stream',
    ...(grpc ? { te: 'trailers' } : {}),
  };
  const stream = session.request(headers, { endStream: false });
  stream.on('error', () => undefined); // the outcome is read from 'close'
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const head = new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
  const closed = new Promise<{ body: Buffer; rstCode: number }>((resolve) =>
    stream.once('close', () => resolve({ body: Buffer.concat(chunks), rstCode: stream.rstCode ?? -1 })),
  );
  return { stream, head, closed };
}

/** Uploads `bytes` with back-pressure and never ends the request: only the router can end this stream. */
function upload(stream: ClientHttp2Stream, bytes: number): void {
  const chunk = Buffer.alloc(16 * 1024, 1);
  let sent = 0;
  const more = (): void => {
    while (sent < bytes && !stream.destroyed) {
      sent += chunk.length;
      if (!stream.write(chunk)) {
        stream.once('drain', more);
        return;
      }
    }
  };
  more();
}

async function inFlight(ip: string, router: string): Promise<number> {
  const r = await request({ host: ip, port: mesh.ports.admin, path: '/metrics' });
  const line = r.body.split('\n').find((l) => l.startsWith(`hostmesh_requests_in_flight{router="${router}"}`));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

/** Waits until neither router has a request in flight (the gauge is updated once an exchange is over). */
async function nothingInFlight(): Promise<void> {
  const until = Date.now() + SETTLE_MS;
  for (;;) {
    const a = await inFlight(A, 'h2-outgoing');
    const b = await inFlight(B, 'h2-incoming');
    if (a === 0 && b === 0) return;
    if (Date.now() > until) throw new Error(`requests in flight: outgoing ${a}, incoming ${b}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function connect(settings: http2.Settings = {}): ClientHttp2Session {
  const session = http2.connect(`http://${mesh.target}`, { settings });
  session.on('error', () => undefined);
  return session;
}

t.before(async () => {
  mesh = await startH2Mesh({ policy: POLICY });
  await mesh.register('early', B, await startApp());
  const session = connect();
  try {
    const until = Date.now() + 10_000;
    for (;;) {
      const x = post(session, '/early/http', false);
      x.stream.end();
      const head = await x.head;
      await x.closed;
      if (Number(head[':status']) === 413) break;
      if (Date.now() > until) throw new Error(`the app is not routable: ${String(head[':status'])}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    session.close();
  }
});

t.teardown(async () => {
  app?.close();
  await mesh?.close();
});

t.test('an HTTP answer before the upload ends: the client gets it, then its stream is closed without error', async (t) => {
  const session = connect();
  t.teardown(() => session.close());
  const x = post(session, '/early/http', false);
  upload(x.stream, 4 * 1024 * 1024);
  t.equal((await settled(x.head, 'the answer head'))[':status'], 413);
  const end = await settled(x.closed, 'the stream closed');
  t.equal(end.body.toString(), 'too large\n', 'the whole answer');
  t.equal(end.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'RST_STREAM NO_ERROR: stop sending, nothing failed');
  await settled(nothingInFlight(), 'both routers idle');
});

t.test('a gRPC status before the client stream ends: the client reads it, then its stream is closed without error', async (t) => {
  const session = connect();
  t.teardown(() => session.close());
  const x = post(session, '/early/grpc', true);
  upload(x.stream, 4 * 1024 * 1024);
  const head = await settled(x.head, 'the trailers-only answer');
  t.equal(head['grpc-status'], '9');
  t.equal(head['grpc-message'], 'early');
  const end = await settled(x.closed, 'the stream closed');
  t.equal(end.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  await settled(nothingInFlight(), 'both routers idle');
});

t.test('request data for an upstream stream the app has closed is dropped; the router stays up', async (t) => {
  // The client's small window holds the answer at the router while the client sends more.
  const session = connect({ initialWindowSize: 1000 });
  t.teardown(() => session.close());
  const x = post(session, '/early/queued', false);
  x.stream.write(Buffer.alloc(5000, 1)); // more than the app's window: the rest is queued at the router
  x.stream.pause(); // read nothing yet
  t.equal((await settled(x.head, 'the answer head'))[':status'], 200);
  x.stream.write(Buffer.alloc(1000, 2)); // arrives after the app closed its stream
  x.stream.resume();
  const end = await settled(x.closed, 'the stream closed');
  t.equal(end.body.length, QUEUED_BODY, 'the whole answer');
  t.equal(end.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  await settled(nothingInFlight(), 'both routers idle');
  const again = connect();
  t.teardown(() => again.close());
  const next = post(again, '/early/http', false);
  next.stream.end();
  t.equal((await settled(next.head, 'a later request'))[':status'], 413, 'the router serves the next request');
  await settled(next.closed, 'its stream closed');
});
