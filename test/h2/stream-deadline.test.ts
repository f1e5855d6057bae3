// A streamed gRPC answer still open when the call's deadline (grpc-timeout) passes in the mesh: the
// routers cancel the app's stream and end the client's with DEADLINE_EXCEEDED in its trailers (and
// l5d-err), as the app itself would; not with a bare RST_STREAM, which a client without a timer of
// its own reads as CANCELLED. The client here keeps no timer: node:http2 by hand.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http2, { type ServerHttp2Stream } from 'node:http2';
import t from 'tap';
import { answerField, rawCall } from '../helpers/grpc-raw.js';
import { B, nodesMayCall, startH2Mesh, type H2Mesh } from '../helpers/h2-mesh.js';

let mesh: H2Mesh;
let app: http2.Http2Server;
/** Streams of the app that ended by a reset (the routers cancelled them). */
let cancelled = 0;

/** /held/Stream sends one message and keeps the stream open; /held/Unary answers at once. */
function startApp(): Promise<number> {
  app = http2.createServer();
  app.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) cancelled++;
    });
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    if (headers[':path'] === '/held/Stream') stream.write(Buffer.from([0, 0, 0, 0, 1, 42]));
    else stream.end(Buffer.from([0, 0, 0, 0, 1, 42]));
  });
  return new Promise((resolve) => app.listen(0, B, () => resolve((app.address() as { port: number }).port)));
}

t.before(async () => {
  mesh = await startH2Mesh({ policy: nodesMayCall(['/held']) });
  await mesh.register('held', B, await startApp());
  const until = Date.now() + 10_000;
  while (answerField(await rawCall(mesh.target, '/held/Unary', Buffer.from('probe')), 'grpc-status') !== '0') {
    if (Date.now() > until) throw new Error('the app is not routable');
    await new Promise((r) => setTimeout(r, 50));
  }
});

t.teardown(async () => {
  app?.close();
  await mesh?.close();
});

t.test('a stream open past its grpc-timeout ends with DEADLINE_EXCEEDED in its trailers', async (t) => {
  const before = cancelled;
  const r = await rawCall(mesh.target, '/held/Stream', Buffer.from('x'), { 'grpc-timeout': '200m' });
  t.equal(Number(r.head[':status']), 200, 'the head was relayed first');
  t.equal(r.trailers['grpc-status'], '4', 'DEADLINE_EXCEEDED in the trailers');
  t.match(String(r.trailers['l5d-err']), /deadline/, 'with l5d-err');
  const until = Date.now() + 10_000;
  while (cancelled === before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(cancelled - before, 1, "the app's stream was cancelled");
});
