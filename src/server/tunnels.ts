// Connections that leave HTTP request/response: Upgrade (WebSocket and others), tunnelled through
// http-proxy to the bound endpoint, and CONNECT to a mesh name, whose tunnel is fed back into the
// listener so the HTTP inside is routed like any other request.

import type http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestContext, Router } from '../router/router.js';
import { endpointKey } from '../router/endpoint-pool.js';
import { endRaw, toHostmeshError } from './rescue.js';
import type { ConnectionState } from '../metrics/metrics.js';

/**
 * Writes an error as a raw HTTP response on a socket that left the HTTP server (upgrade, CONNECT);
 * a client that does not take it loses the socket after `lingerMs`.
 */
export function rescueSocket(socket: Duplex, err: unknown, ctx: RequestContext, logger: Logger, lingerMs: number): void {
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
  endRaw(
    socket,
    `HTTP/1.1 ${e.status} ${reason}\r\nl5d-err: ${encodeURIComponent(e.message)}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    lingerMs,
  );
}

export interface TunnelOptions {
  /** A tunnel with no bytes either way on the client's socket for this long is closed. */
  readonly idleTimeoutMs: number;
  /** How long a refused upgrade or CONNECT client gets to take its error answer. */
  readonly lingerMs: number;
  /** A tunnel was closed by its idle deadline. */
  readonly onDeadline?: (state: ConnectionState) => void;
}

export class Tunnels {
  readonly #proxy = httpProxy.createProxyServer({ ws: true, xfwd: false, ignorePath: false, prependPath: false });
  readonly #agents = new Map<Router, https.Agent>();
  readonly #open = new Set<Duplex>();
  readonly #options: TunnelOptions;
  readonly #idle = new WeakSet<Duplex>();

  constructor(
    private readonly logger: Logger,
    options: TunnelOptions,
  ) {
    this.#options = options;
    // http-proxy reports tunnel failures here; the client socket gets a 502 if it is still usable.
    this.#proxy.on('error', (err, _req, target) => {
      if (target !== undefined && 'writable' in target && !(target as http.ServerResponse).headersSent) {
        rescueSocket(target as Duplex, new HostmeshError('CONNECT_FAILED', `upgrade failed: ${err.message}`), {}, logger, options.lingerMs);
      }
    });
    // http-proxy pipes the two sockets but does not end one when the other is destroyed (only on
    // 'end'): tie their lifetimes, so a tunnel cut at its deadline is cut on the endpoint's side
    // too, and an upgrade abandoned before its 101 does not leave the request to the endpoint.
    this.#proxy.on('proxyReqWs', (proxyReq: http.ClientRequest, _req: http.IncomingMessage, client: Duplex) => {
      const abandon = (): void => void proxyReq.destroy();
      client.once('close', abandon);
      proxyReq.once('upgrade', (_res: http.IncomingMessage, upstream: Duplex) => {
        client.off('close', abandon);
        upstream.once('close', () => client.destroy());
        client.once('close', () => upstream.destroy());
        if (client.destroyed) upstream.destroy();
      });
    });
  }

  /**
   * (Re)arms the idle deadline of a tunnel's client socket. Node's socket timeout counts reads
   * and completed writes, so a tunnel whose client stops reading (its window full) is idle too.
   */
  #deadline(socket: Duplex): void {
    (socket as Socket).setTimeout(this.#options.idleTimeoutMs);
    if (this.#idle.has(socket)) return;
    this.#idle.add(socket);
    socket.on('timeout', () => {
      this.#options.onDeadline?.('tunnel_idle');
      socket.destroy();
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
    // From here on, the HTTP server's timeouts no longer watch this socket: routing and the wait
    // for the endpoint's 101 fall under the tunnel deadline too.
    this.#deadline(socket);
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
      if (socket.destroyed) return; // the deadline passed while routing
      this.#proxy.ws(req, socket, head, { target: target as unknown as string, ...(agent ? { agent } : {}) });
      // http-proxy clears the client socket's timeout as it starts the tunnel: arm it again.
      this.#deadline(socket);
      this.logger.debug({ service: ctx.service, endpoint: endpointKey(r.endpoint) }, 'upgrade tunnelled');
    } catch (err) {
      rescueSocket(socket, err, ctx, this.logger, this.#options.lingerMs);
    }
  }

  /**
   * CONNECT <name>:80 where /svc/<name> binds: 200, then the tunnel's bytes are parsed by `server`
   * as a new connection, so each request inside is routed (undici's ProxyAgent does this by
   * default). Other ports and names that do not bind: 403 (egress is not the mesh's job yet).
   */
  async connect(router: Router, server: http.Server, req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    // Binding the name is bounded by the tunnel deadline; once fed back into the server, the
    // connection inside has the server's own deadlines (headers, idle).
    const onIdle = (): void => {
      this.#options.onDeadline?.('tunnel_idle');
      socket.destroy();
    };
    (socket as Socket).setTimeout(this.#options.idleTimeoutMs);
    socket.once('timeout', onIdle);
    const ctx: RequestContext = {};
    try {
      const authority = req.url ?? '';
      const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s/]+):([0-9]{1,5})$/.exec(authority);
      if (m === null) throw new HostmeshError('BAD_REQUEST', `CONNECT needs host:port, got '${authority.slice(0, 100)}'`);
      const host = (m[1] as string).toLowerCase();
      ctx.service = host;
      if (m[2] !== '80') throw new HostmeshError('CONNECT_REFUSED', `CONNECT ${authority}: only port 80 of mesh names is tunnelled`);
      if (!(await router.binds(host))) throw new HostmeshError('CONNECT_REFUSED', `CONNECT ${authority}: ${host} is not a mesh name (it does not bind)`);
      if (socket.destroyed) return;
      socket.off('timeout', onIdle);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) socket.unshift(head);
      server.emit('connection', socket);
    } catch (err) {
      socket.off('timeout', onIdle);
      rescueSocket(socket, err, ctx, this.logger, this.#options.lingerMs);
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
