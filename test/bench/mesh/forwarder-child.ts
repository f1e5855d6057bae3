// One minimal plaintext forwarder, in its own process so /proc charges it alone; the kind is
// argv[2]: `undici-request` (Pool.request + pipe, what the router does), `undici-dispatch`
// (undici's low-level dispatch with a handler writing straight to the response),
// `node-http` (http.request over a keep-alive Agent). (http-proxy, once measured here, is no longer
// a dependency: Upgrades go through undici too.)
// Usage: node forwarder-child.js KIND LISTEN_PORT BACKEND_PORT

import http from 'node:http';
import { Pool } from 'undici';

const [kind, listenArg, backendArg] = process.argv.slice(2);
const listen = Number(listenArg);
const backendPort = Number(backendArg);
const origin = `http://127.0.0.4:${backendPort}`;
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function forwardHeaders(h: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && !HOP.has(k)) out[k] = v;
  }
  return out;
}

let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
if (kind === 'undici-request') {
  const pool = new Pool(origin, { connections: 64 });
  handler = (req, res) => {
    pool
      .request({ method: 'GET', path: req.url ?? '/', headers: forwardHeaders(req.headers) })
      .then((up) => {
        const out: Record<string, string | string[]> = {};
        for (const k in up.headers) if (!HOP.has(k)) out[k] = up.headers[k] as string;
        res.writeHead(up.statusCode, out);
        up.body.pipe(res);
      })
      .catch(() => res.destroy());
  };
} else if (kind === 'undici-dispatch') {
  const pool = new Pool(origin, { connections: 64 });
  handler = (req, res) => {
    pool.dispatch(
      { method: 'GET', path: req.url ?? '/', headers: forwardHeaders(req.headers) },
      {
        onConnect() {},
        onError: () => res.destroy(),
        onHeaders(status, raw, resume) {
          const out: [string, string][] = [];
          for (let i = 0; i < raw.length; i += 2) {
            const k = String(raw[i]);
            if (!HOP.has(k.toLowerCase())) out.push([k, String(raw[i + 1])]);
          }
          res.writeHead(status, out.flat());
          res.on('drain', resume);
          return true;
        },
        onData: (chunk) => res.write(chunk),
        onComplete: () => res.end(),
      },
    );
  };
} else if (kind === 'node-http') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  handler = (req, res) => {
    const up = http.request({ host: '127.0.0.4', port: backendPort, path: req.url, method: 'GET', headers: forwardHeaders(req.headers), agent }, (r) => {
      const out: Record<string, string | string[]> = {};
      for (const k in r.headers) if (!HOP.has(k)) out[k] = r.headers[k] as string;
      res.writeHead(r.statusCode ?? 502, out);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end();
  };
} else {
  throw new Error(`unknown forwarder ${kind}`);
}
http.createServer(handler).listen(listen, '127.0.0.6', () => process.send?.('ready'));
