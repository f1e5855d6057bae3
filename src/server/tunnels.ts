// Connections that leave HTTP request/response: Upgrade (WebSocket and others), tunnelled through
// http-proxy to the bound endpoint, and CONNECT to a mesh name, whose tunnel is fed back into the
// listener so the HTTP inside is routed like any other request.

import http from 'node:http';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Direction, RequestContext } from '../router/context.js';
import type { RoutePlan } from '../router/route-plan.js';
import type { Router } from '../router/router.js';
import type { EntryDecision } from '../router/decision.js';
import type { Endpoint } from '../namer/addr.js';
import { endpointKey } from '../router/endpoint-pool.js';
import { rescueRaw } from './rescue.js';
import type { ListenerEvents } from './events.js';

export interface TunnelOptions {
  /** A tunnel with no bytes either way on the client's socket for this long is closed. */
  readonly idleTimeoutMs: number;
  /** How long a refused upgrade or CONNECT client gets to take its error answer. */
  readonly lingerMs: number;
  /** A tunnel was closed by its idle deadline. */
  /** Where a tunnel closed for its idle deadline is reported (default: nowhere). */
  readonly events?: Pick<ListenerEvents, 'connectionDeadline'> | undefined;
}

export class Tunnels {
  readonly #proxy = httpProxy.createProxyServer({ ws: true, xfwd: false, ignorePath: false, prependPath: false });
  readonly #open = new Set<Duplex>();
  readonly #options: TunnelOptions;
  readonly #idle = new WeakSet<Duplex>();
  /** The upstream request http-proxy made for an upgrade (keyed by the view it was given). */
  readonly #upstreams = new WeakMap<http.IncomingMessage, http.ClientRequest>();

  constructor(
    private readonly logger: Logger,
    options: TunnelOptions,
  ) {
    this.#options = options;
    // http-proxy pipes the two sockets but does not end one when the other is destroyed (only on
    // 'end'): tie their lifetimes, so a tunnel cut at its deadline is cut on the endpoint's side
    // too, and an upgrade abandoned before its 101 does not leave the request to the endpoint.
    this.#proxy.on('proxyReqWs', (proxyReq: http.ClientRequest, req: http.IncomingMessage, client: Duplex) => {
      this.#upstreams.set(req, proxyReq);
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
      this.#options.events?.connectionDeadline('tunnel_idle');
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

  /**
   * An Upgrade request: decided like any request (`decide`: the listener's entry step), routed,
   * then tunnelled bytes both ways.
   */
  async upgrade(
    router: Router,
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    direction: Direction,
    decide: () => EntryDecision | Promise<EntryDecision>,
  ): Promise<void> {
    this.#track(socket);
    socket.on('error', () => socket.destroy());
    // From here on, the HTTP server's timeouts no longer watch this socket: routing and the wait
    // for the endpoint's 101 fall under the tunnel deadline too.
    this.#deadline(socket);
    const ctx: RequestContext = { direction };
    try {
      const plan = await router.plan(req, ctx, await decide());
      if (socket.destroyed) return; // the deadline passed while routing
      const attempts = router.upgradeAttempts(plan, ctx);
      let expired: HostmeshError | undefined;
      let upstream: Duplex | undefined;
      // The deadline (or the attempt timeout) bounds connecting and the wait for the answer.
      const onExpired = (err: HostmeshError): void => {
        expired = err;
        upstream?.destroy();
        rescueRaw(socket, err, ctx, this.logger, this.#options.lingerMs);
      };
      socket.once('close', () => attempts.abandon());
      // Connected here, not by http-proxy, which ends the client's socket on a connect error: a
      // refused connection reached no app and is requeued on the name's next endpoint.
      let endpoint = plan.endpoint;
      for (;;) {
        attempts.begin(endpoint, onExpired);
        try {
          upstream = await this.#connectTo(plan, endpoint, socket);
          break;
        } catch (err) {
          if (expired !== undefined || socket.destroyed) return;
          const next = attempts.failed((err as { code?: string }).code ?? '');
          if (next === undefined) throw new HostmeshError('CONNECT_FAILED', `upgrade failed: ${(err as Error).message}`, { cause: err });
          endpoint = next;
        }
      }
      const connected = upstream as Duplex;
      if (expired !== undefined || socket.destroyed) {
        connected.destroy();
        return;
      }
      const agent = new http.Agent({ keepAlive: false });
      agent.createConnection = () => connected as Socket;
      // The socket is already TLS when it must be: the request is written on it as plain HTTP.
      const target = { protocol: 'http:', host: endpoint.host, port: endpoint.port };
      const upstreamReq = upstreamRequest(req, plan);
      this.#proxy.ws(upstreamReq, socket, head, { target: target as unknown as string, agent }, (err: Error) => {
        attempts.answered(false);
        if (expired === undefined)
          rescueRaw(socket, new HostmeshError('CONNECT_FAILED', `upgrade failed: ${err.message}`), ctx, this.logger, this.#options.lingerMs);
      });
      const proxyReq = this.#upstreams.get(upstreamReq);
      proxyReq?.once('response', (res: http.IncomingMessage) => attempts.answered((res.statusCode ?? 502) < 500));
      proxyReq?.once('upgrade', () => attempts.answered(true));
      // http-proxy clears the client socket's timeout as it starts the tunnel: arm it again.
      this.#deadline(socket);
      this.logger.debug({ service: ctx.service, endpoint: endpointKey(endpoint) }, 'upgrade tunnelled');
    } catch (err) {
      // A routing failure's delegation path is worked out here, on the error path only.
      rescueRaw(socket, router.explainFailure(err, ctx), ctx, this.logger, this.#options.lingerMs);
    }
  }

  /**
   * A connection to an endpoint: TLS with the client's options (a peer router, a per-prefix TLS
   * client), else TCP. Bounded like the request path's connections: client.connectTimeoutMs, then
   * UND_ERR_CONNECT_TIMEOUT, requeued like a refusal. Given up at once when the client's socket
   * closes (its tunnel deadline, an error), so a blackholed endpoint holds no socket past either.
   */
  #connectTo(plan: RoutePlan, endpoint: Endpoint, client: Duplex): Promise<Duplex> {
    const tlsOptions = plan.tlsOptions;
    return new Promise((resolve, reject) => {
      const s =
        tlsOptions === undefined
          ? net.connect({ host: endpoint.host, port: endpoint.port })
          : tls.connect({ ...tlsOptions, host: endpoint.host, port: endpoint.port });
      const ready = tlsOptions === undefined ? 'connect' : 'secureConnect';
      const settle = (): void => {
        clearTimeout(timer);
        client.off('close', onClientGone);
        s.off(ready, onReady);
        s.off('error', onError);
      };
      const onError = (err: Error): void => {
        settle();
        s.destroy();
        reject(err);
      };
      const onReady = (): void => {
        settle();
        s.on('error', () => s.destroy()); // later errors end the tunnel (http-proxy's own handlers report them)
        resolve(s);
      };
      const onClientGone = (): void => onError(Object.assign(new Error('the client went away while connecting'), { code: 'UND_ERR_ABORTED' }));
      const timer = setTimeout(
        () => onError(Object.assign(new Error(`timed out connecting to ${endpointKey(endpoint)}`), { code: 'UND_ERR_CONNECT_TIMEOUT' })),
        plan.connectTimeoutMs,
      );
      timer.unref();
      s.once('error', onError);
      s.once(ready, onReady);
      client.once('close', onClientGone);
    });
  }

  /**
   * CONNECT <name>:80 where /svc/<name> binds: 200, then the tunnel's bytes are parsed by `server`
   * as a new connection, so each request inside is routed (undici's ProxyAgent does this by
   * default). Other ports and names that do not bind: 403 (egress is not the mesh's job yet).
   */
  async connect(
    router: Router,
    server: http.Server,
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    direction: Direction,
    decide: () => EntryDecision | Promise<EntryDecision>,
  ): Promise<void> {
    socket.on('error', () => socket.destroy());
    // Binding the name is bounded by the tunnel deadline; once fed back into the server, the
    // connection inside has the server's own deadlines (headers, idle).
    const onIdle = (): void => {
      this.#options.events?.connectionDeadline('tunnel_idle');
      socket.destroy();
    };
    (socket as Socket).setTimeout(this.#options.idleTimeoutMs);
    socket.once('timeout', onIdle);
    const ctx: RequestContext = { direction };
    try {
      // The CONNECT itself passes the entry step (a refused caller opens no tunnel); each request
      // inside the tunnel is decided again by the listener, as the `connect-inner` path.
      const decision = await decide();
      if (decision.caller !== undefined) ctx.caller = decision.caller;
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
