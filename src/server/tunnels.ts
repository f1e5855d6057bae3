// Connections that leave HTTP request/response: Upgrade (WebSocket and others), tunnelled through
// http-proxy to the bound endpoint, and CONNECT to a mesh name, whose tunnel is fed back into the
// listener so the HTTP inside is routed like any other request.

import type http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestContext, Router } from '../router/router.js';
import { endpointKey } from '../router/endpoint-pool.js';
import { toHostmeshError } from './rescue.js';

/** Writes an error as a raw HTTP response on a socket that left the HTTP server (upgrade, CONNECT). */
export function rescueSocket(socket: Duplex, err: unknown, ctx: RequestContext, logger: Logger): void {
  const e = toHostmeshError(err);
  if (e.code === 'INTERNAL') logger.error({ err }, 'internal error on an upgrade or CONNECT');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [e.message];
  if (ctx.service !== undefined) lines.push(`service: ${ctx.service}`);
  if (ctx.dtab !== undefined) lines.push(`dtab: ${ctx.dtab}`);
  const body = lines.join('\n') + '\n';
  const reason = e.status === 403 ? 'Forbidden' : e.status === 400 ? 'Bad Request' : e.status === 503 ? 'Service Unavailable' : e.status === 500 ? 'Internal Server Error' : 'Bad Gateway';
  socket.end(
    `HTTP/1.1 ${e.status} ${reason}\r\nl5d-err: ${encodeURIComponent(e.message)}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export class Tunnels {
  readonly #proxy = httpProxy.createProxyServer({ ws: true, xfwd: false, ignorePath: false, prependPath: false });
  readonly #agents = new Map<Router, https.Agent>();
  readonly #open = new Set<Duplex>();

  constructor(private readonly logger: Logger) {
    // http-proxy reports tunnel failures here; the client socket gets a 502 if it is still usable.
    this.#proxy.on('error', (err, _req, target) => {
      if (target !== undefined && 'writable' in target && !(target as http.ServerResponse).headersSent) {
        rescueSocket(target as Duplex, new HostmeshError('CONNECT_FAILED', `upgrade failed: ${err.message}`), {}, logger);
      }
    });
  }

  /** Open tunnels, so a drain can end them. */
  get open(): number {
    return this.#open.size;
  }

  #track(socket: Duplex): void {
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
  }

  #agent(router: Router): https.Agent | undefined {
    const tls = router.tlsOptions;
    if (tls === undefined) return undefined;
    let agent = this.#agents.get(router);
    if (agent === undefined) {
      agent = new https.Agent({ ...tls, keepAlive: false });
      this.#agents.set(router, agent);
    }
    return agent;
  }

  /** An Upgrade request: route it like any request, then tunnel bytes both ways. */
  async upgrade(router: Router, req: http.IncomingMessage, socket: Duplex, head: Buffer, peerId: string | undefined): Promise<void> {
    this.#track(socket);
    socket.on('error', () => socket.destroy());
    const ctx: RequestContext = {};
    try {
      const r = await router.resolve(req, ctx, peerId);
      // Connection and Upgrade are hop-by-hop but are exactly what this hop must carry on.
      r.headers['connection'] = 'Upgrade';
      r.headers['upgrade'] = req.headers.upgrade ?? '';
      req.headers = r.headers as http.IncomingHttpHeaders;
      req.url = r.target;
      const agent = this.#agent(router);
      const target = { protocol: r.tls ? 'https:' : 'http:', host: r.endpoint.host, port: r.endpoint.port };
      this.#proxy.ws(req, socket, head, { target: target as unknown as string, ...(agent ? { agent } : {}) });
      this.logger.debug({ service: ctx.service, endpoint: endpointKey(r.endpoint) }, 'upgrade tunnelled');
    } catch (err) {
      rescueSocket(socket, err, ctx, this.logger);
    }
  }

  /**
   * CONNECT <name>:80 where /svc/<name> binds: 200, then the tunnel's bytes are parsed by `server`
   * as a new connection, so each request inside is routed (undici's ProxyAgent does this by
   * default). Other ports and names that do not bind: 403 (egress is not the mesh's job yet).
   */
  async connect(router: Router, server: http.Server, req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const ctx: RequestContext = {};
    try {
      const authority = req.url ?? '';
      const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s/]+):([0-9]{1,5})$/.exec(authority);
      if (m === null) throw new HostmeshError('BAD_REQUEST', `CONNECT needs host:port, got '${authority.slice(0, 100)}'`);
      const host = (m[1] as string).toLowerCase();
      ctx.service = host;
      if (m[2] !== '80') throw new HostmeshError('CONNECT_REFUSED', `CONNECT ${authority}: only port 80 of mesh names is tunnelled`);
      if (!(await router.binds(host))) throw new HostmeshError('CONNECT_REFUSED', `CONNECT ${authority}: ${host} is not a mesh name (it does not bind)`);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) socket.unshift(head);
      server.emit('connection', socket);
    } catch (err) {
      rescueSocket(socket, err, ctx, this.logger);
    }
  }

  /** Ends every open tunnel (after a drain's grace period). */
  closeAll(): void {
    for (const s of this.#open) s.destroy();
    this.#open.clear();
    for (const a of this.#agents.values()) a.destroy();
    this.#proxy.close();
  }
}
