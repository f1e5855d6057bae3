// The demo's sample applications: plain HTTP servers that know nothing of the mesh except
// `http_proxy` (hello calls world through its node's router, as a pod would), and a gRPC greeter.

import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface App {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

async function listen(name: string, host: string, handler: http.RequestListener): Promise<App> {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    name,
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An app that answers every request with `<text>\n`, and shows the mesh identity it was called by. */
export function startTextApp(name: string, host: string, text: string): Promise<App> {
  return listen(name, host, (req, res) => {
    req.resume();
    const body = `${text}\n`;
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-called-by': String(req.headers['l5d-client-id'] ?? ''),
    });
    res.end(body);
  });
}

/**
 * hello: calls `http://world/` through its router (an absolute-form request to the router, which is
 * what an http_proxy client sends), passing the `l5d-ctx-*` headers it received on, as a mesh-aware
 * app should so a caller's `l5d-dtab` override follows the whole call chain.
 */
export function startHelloApp(host: string, nodeName: string, proxy: { host: string; port: number }): Promise<App> {
  return listen('hello', host, (req, res) => {
    req.resume();
    const headers: http.OutgoingHttpHeaders = { host: 'world' };
    for (const [key, value] of Object.entries(req.headers)) {
      if (key.startsWith('l5d-ctx-') && value !== undefined) headers[key] = value;
    }
    const upstream = http.request({ host: proxy.host, port: proxy.port, method: 'GET', path: 'http://world/', headers }, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        const worldBody = Buffer.concat(chunks).toString('utf8').trim();
        const body =
          up.statusCode === 200
            ? `Hello from ${nodeName}, world says: ${worldBody}\n`
            : `Hello from ${nodeName}, but world failed: ${up.statusCode} ${String(up.headers['l5d-err'] ?? '')}\n`;
        res.writeHead(up.statusCode === 200 ? 200 : 502, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(body);
      });
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Hello from ${nodeName}, but the router is unreachable: ${err.message}\n`);
    });
    upstream.end();
  });
}

/** gRPC's length-prefixed message: a compressed flag (0) and the length, big-endian. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Field 1 of a protobuf message as a string (helloworld's HelloRequest.name / HelloReply.message); '' when absent. */
export function protoField1(message: Buffer): string {
  let i = 0;
  while (i < message.length) {
    const key = message[i++] as number;
    if (key === 0x0a) {
      let len = 0;
      for (let shift = 0; i < message.length; shift += 7) {
        const b = message[i++] as number;
        len |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
      }
      return message.subarray(i, i + len).toString('utf8');
    }
    return ''; // only field 1 (wire type 2) is spoken here
  }
  return '';
}

/** A protobuf message of one string field 1. */
export function protoString1(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const len: number[] = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x0a, ...len]), bytes]);
}

/**
 * A gRPC greeter (helloworld.Greeter/SayHello, as gRPC's own example) over h2c, written with
 * node:http2 and gRPC's framing by hand: the reply names the node and who called (l5d-client-id).
 */
export async function startGreeterApp(host: string, nodeName: string): Promise<App> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (headers[':path'] !== '/helloworld.Greeter/SayHello') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
        return;
      }
      const body = Buffer.concat(chunks);
      const name = body.length >= 5 ? protoField1(body.subarray(5, 5 + body.readUInt32BE(1))) : '';
      const caller = String(headers['l5d-client-id'] ?? 'unknown');
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(protoString1(`Hello ${name || 'stranger'}, from the greeter on ${nodeName} (called by ${caller})`)));
    });
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    name: 'greeter',
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}
