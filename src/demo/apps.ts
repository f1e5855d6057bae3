// The demo's sample applications: plain HTTP servers that know nothing of the mesh except
// `http_proxy` (hello calls world through its node's router, as a pod would).

import http from 'node:http';
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
