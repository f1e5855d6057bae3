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
import type { Direction, RequestContext } from '../router/context.js';
import type { RoutePlan } from '../router/route-plan.js';
import type { Router } from '../router/router.js';
import { endpointKey } from '../router/endpoint-pool.js';
import { rescueRaw } from './rescue.js';
import type { ConnectionState } from '../metrics/metrics.js';

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
        rescueRaw(target as Duplex, new HostmeshError('CONNECT_FAILED', `upgrade failed: ${err.message}`), {}, logger, options.lingerMs);
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
  async upgrade(router: Router, req: http.IncomingMessage, socket: Duplex, head: Buffer, direction: Direction, peerId: string | undefined): Promise<void> {
    this.#track(socket);
    socket.on('error', () => socket.destroy());
    // From here on, the HTTP server's timeouts no longer watch this socket: routing and the wait
    // for the endpoint's 101 fall under the tunnel deadline too.
    this.#deadline(socket);
    const ctx: RequestContext = { direction };
    try {
      const plan = await router.plan(req, ctx, peerId);
      const agent = this.#agent(router);
      const target = { protocol: plan.tls ? 'https:' : 'http:', host: plan.endpoint.host, port: plan.endpoint.port };
      if (socket.destroyed) return; // the deadline passed while routing
      this.#proxy.ws(upstreamRequest(req, plan), socket, head, { target: target as unknown as string, ...(agent ? { agent } : {}) });
      // http-proxy clears the client socket's timeout as it starts the tunnel: arm it again.
      this.#deadline(socket);
      this.logger.debug({ service: ctx.service, endpoint: endpointKey(plan.endpoint) }, 'upgrade tunnelled');
    } catch (err) {
      // A routing failure's delegation path is worked out here, on the error path only.
      rescueRaw(socket, router.explainFailure(err, ctx), ctx, this.logger, this.#options.lingerMs);
    }
  }

  /**
   * CONNECT <name>:80 where /svc/<name> binds: 200, then the tunnel's bytes are parsed by `server`
   * as a new connection, so each request inside is routed (undici's ProxyAgent does this by
   * default). Other ports and names that do not bind: 403 (egress is not the mesh's job yet).
   */
  async connect(router: Router, server: http.Server, req: http.IncomingMessage, socket: Duplex, head: Buffer, direction: Direction): Promise<void> {
    socket.on('error', () => socket.destroy());
    // Binding the name is bounded by the tunnel deadline; once fed back into the server, the
    // connection inside has the server's own deadlines (headers, idle).
    const onIdle = (): void => {
      this.#options.onDeadline?.('tunnel_idle');
      socket.destroy();
    };
    (socket as Socket).setTimeout(this.#options.idleTimeoutMs);
    socket.once('timeout', onIdle);
    const ctx: RequestContext = { direction };
    try {
      const authority = req.url ?? '';
      const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s/]+):([0-9]{1,5})$/.exec(authority);
      if (m === null) throw HostmeshError.of('BAD_REQUEST', 'connectTarget', { authority: authority.slice(0, 100) });
      const host = (m[1] as string).toLowerCase();
      ctx.service = host;
      if (m[2] !== '80') throw HostmeshError.of('CONNECT_REFUSED', 'port', { authority });
      if (!(await router.binds(host))) throw HostmeshError.of('CONNECT_REFUSED', 'unbound', { authority, host });
      if (socket.destroyed) return;
      socket.off('timeout', onIdle);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) socket.unshift(head);
      server.emit('connection', socket);
    } catch (err) {
      socket.off('timeout', onIdle);
      rescueRaw(socket, err, ctx, this.logger, this.#options.lingerMs);
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

/**
 * What http-proxy reads to make the upstream upgrade request (method, target, headers, and the
 * socket for its addresses): the plan's target and headers, leaving the client's request as it
 * arrived. Connection and Upgrade are hop-by-hop but are exactly what this hop must carry on.
 */
function upstreamRequest(req: http.IncomingMessage, plan: RoutePlan): http.IncomingMessage {
  const headers = { ...plan.headers, connection: 'Upgrade', upgrade: req.headers.upgrade ?? '' } as http.IncomingHttpHeaders;
  const view = { method: req.method, url: plan.target, httpVersion: req.httpVersion, headers, socket: req.socket, connection: req.socket };
  return view as unknown as http.IncomingMessage;
}
