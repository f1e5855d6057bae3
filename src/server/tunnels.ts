// Connections that leave HTTP request/response: Upgrade (WebSocket and others), forwarded by the
// router's forward stage on the same endpoint pools as requests (router/stages/forward/forward-upgrade.ts),
// and CONNECT to a mesh name, whose tunnel is fed back into the listener so the HTTP inside is
// routed (and forwarded) like any other request.

import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Direction, RequestContext } from '../router/context.js';
import type { Router } from '../router/router.js';
import type { EntryDecision } from '../router/decision.js';
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
  readonly #open = new Set<Duplex>();
  readonly #options: TunnelOptions;
  readonly #idle = new WeakSet<Duplex>();

  constructor(
    private readonly logger: Logger,
    options: TunnelOptions,
  ) {
    this.#options = options;
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
      // The request's deadline (or the attempt timeout) bounds connecting and the wait for the answer.
      await router.upgrade({ protocol: req.headers.upgrade ?? '', socket, head }, plan, ctx);
      this.logger.debug({ service: ctx.service, client: ctx.client }, 'upgrade forwarded');
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
  }
}
