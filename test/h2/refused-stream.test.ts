// An app that rotates its connection (GOAWAY naming the streams it will not process, as gRPC
// servers do at max_connection_age) or refuses a stream (RST_STREAM REFUSED_STREAM): such a
// stream never reached it (RFC 9113 8.7), so the router sends it again on a new session to the
// same endpoint, as gRPC clients retry such streams themselves. The app is the service's only
// endpoint and retries of answers are off: only that resend can save the call.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import t from 'tap';
import { answerField, rawCall } from '../helpers/grpc-raw.js';
import { B, nodesMayCall, startH2Mesh, type H2Mesh } from '../helpers/h2-mesh.js';

let mesh: H2Mesh;
let app: http2.Http2Server;
/**
 * What the app does with the next stream: answer it; refuse it; or hold it until another stream
 * arrives, then send GOAWAY naming the held one as the last it processes (the newer one is never
 * processed) and answer the held one.
 */
let next: 'answer' | 'refuse' | 'rotate' = 'answer';
let held: ServerHttp2Stream | undefined;
/** Streams the app answered. */
let answered = 0;

function answer(stream: ServerHttp2Stream): void {
  answered++;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(Buffer.from([0, 0, 0, 0, 2, 111, 107]));
}

function startApp(): Promise<number> {
  app = http2.createServer();
  app.on('stream', (stream: ServerHttp2Stream) => {
    stream.on('error', () => undefined); // a refused stream ends with one
    if (held !== undefined) {
      const first = held;
      held = undefined;
      (stream.session as ServerHttp2Session).goaway(http2.constants.NGHTTP2_NO_ERROR, first.id);
      answer(first);
      return;
    }
    const how = next;
    next = 'answer';
    if (how === 'rotate') held = stream;
    else if (how === 'refuse') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else answer(stream);
  });
  return new Promise((resolve) => app.listen(0, B, () => resolve((app.address() as { port: number }).port)));
}

/** One gRPC call through the mesh: its grpc-status and l5d-err. */
async function call(): Promise<{ status: string | undefined; err: string | undefined }> {
  const r = await rawCall(mesh.target, '/refusing/Call', Buffer.from('hi'));
  return { status: answerField(r, 'grpc-status'), err: answerField(r, 'l5d-err') };
}

t.before(async () => {
  mesh = await startH2Mesh({ policy: nodesMayCall(['/refusing']), service: { responseClassifier: { kind: 'io.l5d.h2.grpc.neverRetryable' } } });
  await mesh.register('refusing', B, await startApp());
  const until = Date.now() + 10_000;
  while ((await call()).status !== '0') {
    if (Date.now() > until) throw new Error('the app is not routable');
    await new Promise((r) => setTimeout(r, 50));
  }
});

t.teardown(async () => {
  app?.close();
  await mesh?.close();
});

t.test('a stream above the GOAWAY of an app rotating its connection is sent again on a new one', async (t) => {
  const before = answered;
  next = 'rotate';
  const first = call();
  // The second call's stream reaches the app while the first is held on the same session.
  const second = call();
  t.same(await first, { status: '0', err: undefined }, 'the call the app held and answered');
  t.same(await second, { status: '0', err: undefined }, 'the call above its GOAWAY succeeds');
  t.equal(answered - before, 2, 'the app processed each once');
});

t.test('a stream the app refused (REFUSED_STREAM) is sent again', async (t) => {
  const before = answered;
  next = 'refuse';
  t.same(await call(), { status: '0', err: undefined });
  t.equal(answered - before, 1);
});

t.test('the router serves on afterwards', async (t) => {
  for (let i = 0; i < 3; i++) t.equal((await call()).status, '0');
});
