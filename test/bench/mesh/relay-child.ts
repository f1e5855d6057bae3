// One hop of a two-hop relay (issue 28's design prototypes), in its own process so /proc charges it
// alone. Hop A takes plaintext HTTP/1.1 from the client and forwards it to hop B over mutual TLS;
// hop B forwards it in plaintext to the backend. No routing, no limits, no metrics: the floor each
// forwarding design sets. The design is argv[2]:
//   undici    http(s).Server -> undici Pool.request() and a Readable piped to the response (the
//             plain Node relay of issue 28's table; what the router does)
//   h2mux     as undici, but A -> B is ONE multiplexed HTTP/2 session (mTLS, ALPN h2) carrying
//             every HTTP/1 request as a stream (design 1); B answers each stream from its Pool
//   coalesce  as undici, plus write coalescing (design 3): every TLS socket corks on its first
//             write of an event-loop turn and uncorks in setImmediate, and responses up to 64 KiB
//             are collected and answered with one res.end(body) (head + body in one write)
//   dispatch  undici's dispatch() with a handler writing straight to the ServerResponse (design 4):
//             raw header arrays, no Readable, no promise per request
//   h2dispatch  h2mux's A -> B session, with dispatch() at B (designs 1 + 4)
//   raw       a lean HTTP/1.1 core on raw sockets (design 2, raw-relay.ts): net.Server / tls.Server
//             in, Node's llhttp binding for requests and responses, its own pool of kept-alive
//             connections out (TLS with the client certificate from A), head + small body in one write
//   rawc      raw, with each socket's reads handed to its parser in C++ (parser.consume(), as Node's
//             http server does): no Buffer, Readable push or 'data' event per read
// Role `plain` (the cores table): one hop, plaintext in and plaintext to NEXT (the backend), design
// `undici` only.
// RELAY_WORKERS=N (the cores table): a node:cluster primary forks N workers that share the
// listening port (the primary accepts and hands connections round-robin, Node's default on
// Linux); the primary sends {ready, pids} once every worker listens.
// Usage: node relay-child.js DESIGN a|b|plain LISTEN_IP LISTEN_PORT NEXT_IP NEXT_PORT CA CERT KEY
// Sends 'ready' over IPC once listening; exits on SIGTERM.

import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { rawServer } from './raw-relay.js';

const [design = '', role, listenIp = '', listenArg, nextIp = '', nextArg, caFile = '', certFile = '', keyFile = ''] = process.argv.slice(2);
const listenPort = Number(listenArg);
const nextPort = Number(nextArg);
const ca = readFileSync(caFile);
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host']);
const SMALL = 65_536;

/** Cork a socket on its first write of an event-loop turn; uncork after the turn's I/O callbacks. */
function corkPerTurn(socket: net.Socket): void {
  const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write(...args);
  }) as typeof socket.write;
}

function headersOut(h: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && !HOP.has(k)) out[k] = v;
  }
  return out;
}

/** Raw [k, v, k, v, ...] response headers without hop-by-hop ones. */
function rawOut(raw: Buffer[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = String(raw[i]);
    if (!HOP.has(k.toLowerCase())) out.push(k, String(raw[i + 1]));
  }
  return out;
}

// The peer is checked as `hostmesh` whatever the request's Host (undici takes the SNI from it).
const tlsClient = {
  ca,
  cert,
  key,
  servername: 'hostmesh',
  checkServerIdentity: (_host: string, c: tls.PeerCertificate) => tls.checkServerIdentity('hostmesh', c),
};
const tlsServer = { ca, cert, key, requestCert: true, rejectUnauthorized: true };
// The pool towards the next hop: B over mTLS for hop A, the backend in plaintext for hop B.
function nextPool(corked: boolean): Pool {
  if (role === 'b' || role === 'plain') return new Pool(`http://${nextIp}:${nextPort}`, { connections: 64 });
  const connector = buildConnector({ ...tlsClient });
  return new Pool(`https://${nextIp}:${nextPort}`, {
    connections: 64,
    connect: corked
      ? (opts, cb) =>
          connector(opts, (err, socket) => {
            if (err !== null || socket === null) return cb(err ?? new Error('no socket'), null);
            corkPerTurn(socket as net.Socket);
            cb(null, socket);
          })
      : { ...tlsClient },
  });
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function viaRequest(pool: Pool, collect: boolean): Handler {
  return (req, res) => {
    const headers = headersOut(req.headers);
    headers['host'] = req.headers.host ?? 'world';
    pool
      .request({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers })
      .then(async (up) => {
        const out = headersOut(up.headers);
        const len = Number(up.headers['content-length']);
        if (collect && len <= SMALL) {
          const chunks: Buffer[] = [];
          for await (const c of up.body) chunks.push(c as Buffer);
          res.writeHead(up.statusCode, out);
          res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
          return;
        }
        res.writeHead(up.statusCode, out);
        up.body.pipe(res);
      })
      .catch(() => res.destroy());
  };
}

function viaDispatch(pool: Pool): Handler {
  return (req, res) => {
    const headers = headersOut(req.headers);
    headers['host'] = req.headers.host ?? 'world';
    // Returning false from onData pauses undici until resume(), called on the next 'drain'
    // (armed at every pause: a large body pauses many times).
    let resume = (): void => undefined;
    pool.dispatch(
      { method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers },
      {
        onConnect() {},
        onError: () => res.destroy(),
        onHeaders(status, raw, r) {
          res.writeHead(status, rawOut(raw));
          resume = r;
          return true;
        },
        onData: (chunk) => {
          if (res.write(chunk)) return true;
          res.once('drain', resume);
          return false;
        },
        onComplete: () => res.end(),
      },
    );
  };
}

// Hop A over one h2 session: each HTTP/1 request becomes a stream.
function viaH2(): Handler {
  let session: http2.ClientHttp2Session | undefined;
  const connect = (): http2.ClientHttp2Session => {
    if (session !== undefined && !session.closed && !session.destroyed) return session;
    const s = http2.connect(`https://${nextIp}:${nextPort}`, { ...tlsClient, settings: { maxConcurrentStreams: 1000 } });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };
  return (req, res) => {
    const h: http2.OutgoingHttpHeaders = headersOut(req.headers);
    h[':method'] = req.method ?? 'GET';
    h[':path'] = req.url ?? '/';
    h[':authority'] = req.headers.host ?? 'world';
    h[':scheme'] = 'https';
    const stream = connect().request(h, { endStream: req.method === 'GET' || req.method === 'HEAD' });
    if (!(req.method === 'GET' || req.method === 'HEAD')) req.pipe(stream);
    stream.on('error', () => res.destroy());
    stream.on('response', (rh) => {
      const out: Record<string, string | string[]> = {};
      for (const k in rh) if (k[0] !== ':') out[k] = rh[k] as string | string[];
      res.writeHead(Number(rh[':status']), out);
      stream.pipe(res);
    });
  };
}

// Hop B's h2 side: each stream answered from the backend pool.
function h2Server(pool: Pool, dispatch: boolean): http2.Http2SecureServer {
  const server = http2.createSecureServer({ ...tlsServer, settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, h) => {
    const headers: Record<string, string | string[]> = {};
    for (const k in h) if (k[0] !== ':' && !HOP.has(k)) headers[k] = h[k] as string | string[];
    headers['host'] = String(h[':authority'] ?? 'world');
    const method = String(h[':method']) as Dispatcher.HttpMethod;
    const path = String(h[':path']);
    stream.on('error', () => undefined);
    if (dispatch) {
      let resume = (): void => undefined;
      pool.dispatch(
        { method, path, headers },
        {
          onConnect() {},
          onError: () => stream.destroy(),
          onHeaders(status, raw, r) {
            const out: http2.OutgoingHttpHeaders = { ':status': status };
            for (let i = 0; i < raw.length; i += 2) {
              const k = String(raw[i]).toLowerCase();
              if (!HOP.has(k)) out[k] = String(raw[i + 1]);
            }
            stream.respond(out);
            resume = r;
            return true;
          },
          onData: (chunk) => {
            if (stream.write(chunk)) return true;
            stream.once('drain', resume);
            return false;
          },
          onComplete: () => stream.end(),
        },
      );
      return;
    }
    pool
      .request({ method, path, headers })
      .then((up) => {
        const out: http2.OutgoingHttpHeaders = { ':status': up.statusCode };
        for (const k in up.headers) if (!HOP.has(k)) out[k] = up.headers[k];
        stream.respond(out);
        up.body.pipe(stream);
      })
      .catch(() => stream.destroy());
  });
  return server;
}

const workers = Number(process.env['RELAY_WORKERS'] ?? 0);
if (workers > 0 && cluster.isPrimary) {
  // The primary only forks and hands connections over; the workers relay.
  const forked = Array.from({ length: workers }, () => cluster.fork());
  let listening = 0;
  for (const w of forked)
    w.once('listening', () => {
      if (++listening === workers) process.send?.({ ready: true, pids: forked.map((f) => f.process.pid ?? 0) });
    });
  process.once('SIGTERM', () => {
    for (const w of forked) w.process.kill('SIGTERM');
    process.exit(0);
  });
} else serve();

function serve(): void {
  let server: net.Server;
  const h2Link = design === 'h2mux' || design === 'h2dispatch';
  if ((design === 'raw' || design === 'rawc') && role !== 'plain') {
    // A: plaintext in, TLS with the client certificate out; B: mutual TLS in, plaintext out.
    let session: Buffer | undefined; // resumed on the next connection, as undici does
    const connect =
      role === 'a'
        ? (): net.Socket => {
            const s = tls.connect({ host: nextIp, port: nextPort, ...tlsClient, ...(session !== undefined ? { session } : {}) });
            s.on('session', (t: Buffer) => (session = t));
            s.setNoDelay(true);
            return s;
          }
        : (): net.Socket => net.connect({ host: nextIp, port: nextPort, noDelay: true });
    server = rawServer({ secureIn: role === 'b' ? tlsServer : undefined, connect, secureOut: role === 'a', connections: 64, consume: design === 'rawc' });
  } else if (role === 'plain') {
    if (design !== 'undici') throw new Error(`role plain runs design undici only, not ${design}`);
    server = http.createServer({ keepAliveTimeout: 60_000 }, viaRequest(nextPool(false), false));
  } else if (role === 'a') {
    const handler =
      design === 'undici'
        ? viaRequest(nextPool(false), false)
        : design === 'coalesce'
          ? viaRequest(nextPool(true), true)
          : design === 'dispatch'
            ? viaDispatch(nextPool(false))
            : h2Link
              ? viaH2()
              : undefined;
    if (handler === undefined) throw new Error(`unknown design ${design}`);
    server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
  } else {
    const pool = nextPool(false);
    if (h2Link) server = h2Server(pool, design === 'h2dispatch');
    else {
      const handler =
        design === 'undici' ? viaRequest(pool, false) : design === 'coalesce' ? viaRequest(pool, true) : design === 'dispatch' ? viaDispatch(pool) : undefined;
      if (handler === undefined) throw new Error(`unknown design ${design}`);
      const s = https.createServer({ ...tlsServer, keepAliveTimeout: 60_000 }, handler);
      if (design === 'coalesce') s.on('secureConnection', (socket: tls.TLSSocket) => corkPerTurn(socket));
      server = s;
    }
  }
  server.listen(listenPort, listenIp, () => process.send?.('ready'));
  // A normal exit on SIGTERM, so `--cpu-prof` (BENCH_PROFILE=1) writes its profile.
  process.once('SIGTERM', () => process.exit(0));
}
