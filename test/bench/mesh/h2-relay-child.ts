// The plain HTTP/2 relay pair of `npm run bench:grpc`, in a process of its own so /proc charges it
// alone: hop 1 takes h2c (prior knowledge) as an app's outgoing router would and sends every stream
// over ONE h2 session with mutual TLS (ALPN h2, client certificate verified) to hop 2, which sends
// it on one h2c session to the app. No routing, no limits, no metrics: the floor any pair of Node
// HTTP/2 proxies with mTLS between them pays, the same shape as hostmesh's two h2 routers.
// Usage: node h2-relay-child.js APP_HOST APP_PORT CA CERT KEY; prints {"target":"host:port"} once
// listening; exits when stdin closes.

import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

const [appHost = '', appPort = '', caFile = '', certFile = '', keyFile = ''] = process.argv.slice(2);
const HOP1 = '127.0.0.2';
const HOP2 = '127.0.0.3';

/** Pipes each stream of `server` to a stream of `upstream`: head, DATA both ways, trailers, resets. */
function relayTo(server: http2.Http2Server | http2.Http2SecureServer, upstream: () => http2.ClientHttp2Session): void {
  server.on('stream', (stream, headers) => {
    const h: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (k !== ':scheme' && k !== ':authority' && v !== undefined) h[k] = v;
    const up = upstream().request(h);
    stream.pipe(up);
    up.on('response', (rh, flags) => {
      const out: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(rh)) if (v !== undefined && (!k.startsWith(':') || k === ':status')) out[k] = v;
      if ((flags & 0x1) !== 0 || up.endAfterHeaders) {
        stream.respond(out, { endStream: true });
        return;
      }
      stream.respond(out, { waitForTrailers: true });
      let trailers: http2.OutgoingHttpHeaders = {};
      up.on('trailers', (t) => (trailers = t as http2.OutgoingHttpHeaders));
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      up.pipe(stream);
    });
    up.on('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.on('error', () => up.close(http2.constants.NGHTTP2_CANCEL));
  });
}

/** One session to `authority`, made again when it closes. */
function sessionTo(authority: string, options: http2.SecureClientSessionOptions = {}): () => http2.ClientHttp2Session {
  let s: http2.ClientHttp2Session | undefined;
  return () => {
    if (s === undefined || s.closed || s.destroyed) {
      s = http2.connect(authority, options);
      s.on('error', () => undefined);
    }
    return s;
  };
}

const ca = readFileSync(caFile);
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);

const hop2 = http2.createSecureServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true });
relayTo(hop2, sessionTo(`http://${appHost}:${appPort}`));
await new Promise<void>((r) => hop2.listen(0, HOP2, r));
const hop2Port = (hop2.address() as AddressInfo).port;

const hop1 = http2.createServer();
relayTo(hop1, sessionTo(`https://${HOP2}:${hop2Port}`, { ca, cert, key, servername: 'hostmesh' }));
await new Promise<void>((r) => hop1.listen(0, HOP1, r));

process.stdout.write(`${JSON.stringify({ target: `${HOP1}:${(hop1.address() as AddressInfo).port}` })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
