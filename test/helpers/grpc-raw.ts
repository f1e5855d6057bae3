// A gRPC call by hand over node:http2 (no gRPC library, no client deadline): one length-prefixed
// message out, the answer's head and trailers back, for tests that look at what a router relays.

import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';

/** One gRPC message (uncompressed) in its length-prefixed frame. */
export function grpcFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

export interface RawAnswer {
  readonly head: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders;
}

/** POSTs `payload` as one message to `path` on its own session to `target` (host:port, h2c). */
export function rawCall(target: string, path: string, payload: Buffer, headers: OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${target}`);
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (h) => (trailers = h));
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve({ head, trailers });
    });
    stream.resume();
    stream.end(grpcFrame(payload));
  });
}

/** A field of the answer's trailers, or of its head when it was trailers-only (grpc-status, l5d-err). */
export function answerField(r: RawAnswer, name: string): string | undefined {
  const v = r.trailers[name] ?? r.head[name];
  return Array.isArray(v) ? v[0] : v;
}
