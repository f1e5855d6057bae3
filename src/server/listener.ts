// A router's listener: an HTTP server with an explicit direction (outbound: this node's pods,
// :4140; inbound: peer routers, :4141 over mTLS) handing every request to the router.

import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type TLSSocket, type TlsOptions } from 'node:tls';
import type { Logger } from '../log.js';
import { Context, type Direction, type RequestContext } from '../router/context.js';
import { EntryDecider, type EntryDecision, type EntryPath } from '../router/decision.js';
import { REQUEUE_HEADER } from '../router/stages/forward/requeue.js';
import type { Router } from '../router/router.js';
import { RETRYABLE_HEADER } from '../router/stages/forward/classifier.js';
import { DRAINING_HEADER } from '../router/stages/concrete/draining-peers.js';
import { peerIdentity, peerVerdict } from '../tls/peer-identity.js';
import { parserError, rescue, rescueRaw } from './rescue.js';
import { HostmeshError } from '../errors.js';
import { Tunnels } from './tunnels.js';
import { DEFAULT_MAX_HEADERS, h2cAsHttp11, headRefusal, tooManyHeaders } from '../router/headers.js';
import type { ListenerEvents } from './events.js';
import { Connections } from './connections.js';
import { clearContextHeaders } from './clear-context.js';
import type { Callers } from '../identity/caller.js';
import { RefusalLog, type RefusalReason, type Source, type SourceGuard } from '../identity/source-guard.js';
import { DEFAULT_MAX_PIPELINED_REQUESTS, Pipelines } from './pipeline.js';
import type { AccessLog } from './access-log.js';
import { LeanServer, leanServerAvailable } from './h1-server.js';
import { afterAnswers, answering, countHead, dropUnreadBody, heldHeadDeadline } from './node-engine.js';

/** Which HTTP/1.1 server takes a listener's connections (servers[].engine). */
export type ServerEngine = 'node' | 'lean';
/** servers[].engine when absent. */
export const DEFAULT_SERVER_ENGINE: ServerEngine = 'lean';

/** Defaults of the socket limits (config keys of a server; see the README's limits table). */
export const SOCKET_DEFAULTS = {
  /** Node's own is 120 s; a peer router finishes in milliseconds, a stalled one is not worth a slot. */
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 20_000,
  idleTimeoutMs: 300_000,
  tunnelIdleTimeoutMs: 300_000,
  /** Well under common fd limits, leaving room for each connection's upstream socket. */
  maxConnections: 10_000,
  /** A pod or peer router needs far fewer (a peer's pool is 64); one source cannot take them all. */
  maxConnectionsPerSource: 1_000,
  /** ~20 MB of unfinished TLS state at most (~40 KB each): a flood of 10,000 peaks at ~180 MB RSS (bench:handshakes), inside the DaemonSet's 256 Mi limit; 2,048 peaked at 217-261 MB. */
  maxPendingHandshakes: 512,
} as const;

export interface ListenerOptions {
  /**
   * Who connects, as the config says (servers[].direction): `outbound` is this node's pods (a
   * source guard, callers by address, CONNECT served), `inbound` is peer routers (callers by
   * verified certificate and claim, CONNECT refused, undelivered answers marked for requeue).
   */
  readonly direction: Direction;
  readonly ip: string;
  readonly port: number;
  /** TLS server options (incoming side); absent for plaintext. */
  readonly tls?: TlsOptions;
  readonly maxHeaderSize?: number;
  /** More header fields than this is a 431 (default 500). */
  readonly maxHeaders?: number;
  /** Request line + headers must arrive within this (default 20 s: slowloris bound). */
  readonly headersTimeoutMs?: number;
  /** Close connections idle this long (default 5 min: long enough for slow streams' pauses). */
  readonly idleTimeoutMs?: number;
  /** TLS only: the handshake must finish within this, else the socket is destroyed (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** Upgrade and CONNECT tunnels with no traffic this long are closed (default 5 min). */
  readonly tunnelIdleTimeoutMs?: number;
  /** Connections open at once on this listener; more are closed as they arrive (default 10,000). */
  readonly maxConnections?: number;
  /** Connections open at once from one source address (default 1,000). */
  readonly maxConnectionsPerSource?: number;
  /** TLS only: unfinished handshakes at once; over it the largest source's oldest is closed (default 512). */
  readonly maxPendingHandshakes?: number;
  /** Where requests, connections and TLS failures are counted. */
  readonly metrics?: ListenerEvents;
  /** Outgoing side: who may connect (local pods, the node, loopback, CIDRs); absent: anyone. */
  readonly sourceGuard?: SourceGuard;
  /** How a request's caller is established (identity/caller.ts); absent: the verified peer only. */
  readonly callers?: Callers;
  /** Linkerd 1's clearContext: l5d-ctx-* and l5d-dtab are removed from what arrives here. */
  readonly clearContext?: boolean;
  /** Pipelined requests waiting on one connection before it is no longer read (default 32, server/pipeline.ts). */
  readonly maxPipelinedRequests?: number;
  /** Linkerd 1's httpAccessLog: one line per answered request (server/access-log.ts). */
  readonly accessLog?: AccessLog;
  /** Node's http.Server, or the lean engine on raw sockets (h1-server.ts); default DEFAULT_SERVER_ENGINE. */
  readonly engine?: ServerEngine;
}

export class Listener {
  readonly #server: http.Server;
  /** The lean engine, when it serves this listener (then #server is its net or tls server). */
  readonly #lean: LeanServer | undefined;
  readonly #router: Router;
  readonly #logger: Logger;
  readonly #tls: boolean;
  readonly #direction: Direction;
  #draining = false;
  /** Announcing a drain to peer routers (inbound only): requests are served, answers say so. */
  #announcing = false;
  #active = 0;
  #idleWaiters: (() => void)[] = [];
  readonly #tunnels: Tunnels;
  readonly #metrics: ListenerEvents | undefined;
  readonly #connections: Connections;
  /** TLS sockets whose handshake finished: only these can carry an HTTP answer. */
  readonly #secured = new WeakSet<Socket>();
  /** How long a client gets to take an error answer written outside a request. */
  readonly #lingerMs: number;
  readonly #maxHeaders: number;
  /** Admitted sources by socket (outgoing side, with a source guard). */
  readonly #sources = new WeakMap<Socket, Source>();
  /** The entry step every path passes before routing (router/decision.ts). */
  readonly #decider: EntryDecider;
  /** CONNECT tunnels fed back into the server: the requests inside are the `connect-inner` path. */
  readonly #tunnelled = new WeakSet<Socket>();
  /**
   * Node's engine: connections whose head the router refused (headRefusal). Node's parser reads on
   * behind that answer: the requests pipelined after it are not served, and a parse error in its
   * body is not answered a second time (the refusal's `connection: close` ends the connection).
   */
  readonly #refusedHeads = new WeakSet<Socket>();
  readonly #refusalLog = new RefusalLog();
  /** A connection's pipelined requests are routed one at a time; the rest wait, bounded (pipeline.ts). */
  readonly #pipelines: Pipelines;
  readonly #accessLog: AccessLog | undefined;
  /** Linkerd 1's server scope label, `<configured ip>/<bound port>`, once listening. */
  #serverLabel: string | undefined;
  readonly #ip: string;

  constructor(router: Router, options: ListenerOptions, logger: Logger) {
    this.#router = router;
    this.#logger = logger;
    this.#tls = options.tls !== undefined;
    this.#direction = options.direction;
    this.#decider = new EntryDecider(options.callers);
    this.#accessLog = options.accessLog;
    this.#ip = options.ip;
    const headersTimeout = options.headersTimeoutMs ?? SOCKET_DEFAULTS.headersTimeoutMs;
    const idleTimeout = options.idleTimeoutMs ?? SOCKET_DEFAULTS.idleTimeoutMs;
    this.#lingerMs = headersTimeout;
    const common: http.ServerOptions = {
      requireHostHeader: false, // HTTP/1.0 without Host reaches our own 400
      maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
      keepAliveTimeout: Math.min(30_000, idleTimeout),
      headersTimeout,
      requestTimeout: 0, // bodies may stream for as long as they make progress
      // Node checks headersTimeout on this interval; keep it fine enough for short test timeouts.
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(headersTimeout / 4))),
    };
    const handshakeTimeout = options.handshakeTimeoutMs ?? SOCKET_DEFAULTS.handshakeTimeoutMs;
    if ((options.engine ?? DEFAULT_SERVER_ENGINE) === 'lean' && leanServerAvailable()) {
      // The same events as http.Server's, on a plain net or tls server (h1-server.ts).
      const base = options.tls ? tls.createServer({ ...options.tls, handshakeTimeout, noDelay: true }) : net.createServer({ noDelay: true }); // no Nagle, as http.Server
      this.#lean = new LeanServer(base, options.tls !== undefined, {
        maxHeaderSize: common.maxHeaderSize as number,
        headersTimeoutMs: headersTimeout,
        keepAliveTimeoutMs: common.keepAliveTimeout as number,
        idleTimeoutMs: idleTimeout,
        // Requests parsed per connection: the one routed and what may wait behind it (pipeline.ts);
        // past that the parser pauses and the rest of a read waits as bytes.
        maxUnanswered: (options.maxPipelinedRequests ?? DEFAULT_MAX_PIPELINED_REQUESTS) + 1,
      });
      this.#server = base as unknown as http.Server;
    } else {
      this.#lean = undefined;
      this.#server = options.tls ? https.createServer({ ...common, ...options.tls, handshakeTimeout }) : http.createServer(common);
    }
    // One more than the limit is kept, so a request over it is seen (and refused) rather than
    // silently cut to the limit by Node.
    this.#maxHeaders = options.maxHeaders ?? DEFAULT_MAX_HEADERS;
    this.#server.maxHeadersCount = this.#maxHeaders + 1;
    const metrics = (this.#metrics = options.metrics);
    this.#pipelines = new Pipelines(options.maxPipelinedRequests ?? DEFAULT_MAX_PIPELINED_REQUESTS, metrics ?? {});
    // Idle sockets are destroyed (Node would do it too with no listener; this one counts them).
    if (this.#lean === undefined) this.#server.setTimeout(idleTimeout);
    this.#server.on('timeout', (socket: Socket) => {
      metrics?.connectionDeadline('idle');
      socket.destroy();
    });
    this.#tunnels = new Tunnels(logger, {
      idleTimeoutMs: options.tunnelIdleTimeoutMs ?? SOCKET_DEFAULTS.tunnelIdleTimeoutMs,
      lingerMs: this.#lingerMs,
      events: metrics,
    });
    this.#connections = new Connections({
      max: options.maxConnections ?? SOCKET_DEFAULTS.maxConnections,
      perSource: options.maxConnectionsPerSource ?? SOCKET_DEFAULTS.maxConnectionsPerSource,
      ...(options.tls ? { pendingHandshakes: options.maxPendingHandshakes ?? SOCKET_DEFAULTS.maxPendingHandshakes } : {}),
    });
    // Node's own handling of a new connection (the TLS wrap, or the HTTP parser) is its server's
    // 'connection' listener: it runs behind the caps, so every accepted socket is counted from its
    // first moment and one over a cap is closed before it costs a TLS state (~40 KB) or a parser.
    const nodeOwn = this.#server.listeners('connection') as ((socket: Socket) => void)[];
    // With a source guard every accepted socket starts paused (net.Server's pauseOnConnect, set on
    // the HTTP server it is): Node's parser is attached but reads nothing until the source is
    // admitted, which may wait for the pod watch; a refused socket is destroyed unread.
    const guard = options.sourceGuard;
    if (guard !== undefined) (this.#server as unknown as { pauseOnConnect: boolean }).pauseOnConnect = true;
    this.#server.removeAllListeners('connection');
    this.#server.on('connection', (socket: Socket) => {
      const refused = this.#connections.admit(socket);
      if (refused !== undefined) {
        metrics?.connectionRefused(refused);
        socket.destroy();
        return;
      }
      if (this.#connections.evictHandshake() !== undefined) metrics?.connectionRefused('handshake_limit');
      for (const listener of nodeOwn) listener.call(this.#server, socket);
      if (guard !== undefined && !this.#sources.has(socket)) this.#admitSource(guard, socket);
    });
    if (options.tls) {
      this.#server.on('secureConnection', (socket: TLSSocket) => {
        if (this.#secured.has(socket)) return;
        this.#secured.add(socket);
        this.#connections.handshakeDone(socket);
      });
      // A chain-verified certificate that is a CA's, not for client auth, or names no well-formed
      // identity is refused before any request on it is read (peer-identity.ts).
      this.#server.on('secureConnection', (socket: TLSSocket) => {
        const verdict = peerVerdict(socket);
        if (verdict.kind !== 'refused' || socket.destroyed) return;
        this.#logger.debug({ remote: socket.remoteAddress, reason: verdict.reason }, 'peer certificate refused'); // counted: a flood must not flood the log
        metrics?.tlsFailure('peer_certificate_refused');
        socket.destroy();
      });
    }
    if (metrics !== undefined) {
      // Once per socket: an h2c request re-read as HTTP/1.1 brings its socket here again.
      const counted = new WeakSet<Socket>();
      this.#server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
        if (socket.destroyed) return; // refused by a cap (counted as refused, not as a connection)
        if (counted.has(socket)) return;
        counted.add(socket);
        metrics.connectionOpened('server');
        // Verified peers by identity (the dashboard's peer list); cached for the requests after.
        const peer = options.tls ? peerIdentity(socket as TLSSocket) : undefined;
        if (peer !== undefined) metrics.peerConnected(peer);
        socket.once('close', () => {
          metrics.connectionClosed('server', socket.bytesRead, socket.bytesWritten);
          if (peer !== undefined) metrics.peerDisconnected(peer);
        });
      });
    }
    if (options.clearContext === true) {
      // First among the listeners, so neither routing nor tunnels see the client's context.
      for (const event of ['request', 'upgrade', 'connect'] as const) {
        this.#server.prependListener(event, (req: http.IncomingMessage) => clearContextHeaders(req.headers));
      }
    }
    if (this.#lean === undefined) this.#server.on('request', countHead); // heads read whole, for a held head's deadline (node-engine.ts)
    this.#server.on('request', (req, res) => this.#onRequest(req, res));
    this.#server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#draining) {
        socket.destroy();
        return;
      }
      // A refusal, too, is written after the answers due before it (pipeline.ts).
      const refuse = (err: HostmeshError): void =>
        this.#pipelines.afterLine(socket, () =>
          rescueRaw(socket, err, {}, this.#logger, this.#lingerMs, () => this.#metrics?.connectionDeadline('error_answer')),
        );
      if (tooManyHeaders(req.rawHeaders, this.#maxHeaders)) {
        this.#metrics?.tooManyHeaders();
        refuse(HostmeshError.of('HEADERS_TOO_LARGE', 'fields', { max: this.#maxHeaders }));
        return;
      }
      const refused = headRefusal(req);
      if (refused !== undefined) {
        refuse(refused);
        return;
      }
      const plain = h2cAsHttp11(req);
      if (plain !== undefined) {
        // Upgrade: h2c is ignored: the request is parsed again without it and served over HTTP/1.1
        // (on Node's engine once the answers before it are out: node-engine.ts).
        const again = (): void => {
          socket.unshift(head.length > 0 ? Buffer.concat([plain, head]) : plain);
          this.#server.emit(this.#tls ? 'secureConnection' : 'connection', socket);
        };
        if (this.#lean === undefined) afterAnswers(socket, again);
        else again();
        return;
      }
      // After the answers to what was pipelined before it (pipeline.ts), so its 101 follows them;
      // what the client sends meanwhile is kept for the tunnel.
      holdReads(socket);
      this.#pipelines.afterLine(socket, () => {
        void this.#tunnels.upgrade(this.#router, req, socket, head, this.#direction, () => this.#decide(req, 'upgrade'));
      });
    });
    this.#server.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#draining || this.#direction === 'inbound') {
        // CONNECT is for the outbound side, where pods' proxy clients speak; a draining
        // router answers it as it answers requests.
        const refusal = this.#draining ? HostmeshError.of('SHUTTING_DOWN', 'draining') : HostmeshError.of('CONNECT_REFUSED', 'incoming');
        // After the answers due before it (pipeline.ts).
        this.#pipelines.afterLine(socket, () =>
          rescueRaw(socket, refusal, {}, this.#logger, this.#lingerMs, () => metrics?.connectionDeadline('error_answer')),
        );
        return;
      }
      // After the answers to what was pipelined before it (pipeline.ts), so its 200 follows them
      // (and those requests are still routed as requests of the connection, not of the tunnel).
      holdReads(socket);
      this.#pipelines.afterLine(socket, () => {
        this.#tunnelled.add(socket);
        void this.#tunnels.connect(this.#router, this.#server, req, socket, head, this.#direction, () => this.#decide(req, 'connect'));
      });
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (this.#refusedHeads.has(socket)) return;
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && this.#lean === undefined && answering(socket)) {
        // Node's engine: a pipelined head behind an answer in progress, held unread by the router,
        // gets its deadline again once the answers before it are done (node-engine.ts).
        heldHeadDeadline(socket, headersTimeout, () => this.#server.emit('clientError', err, socket));
        return;
      }
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') metrics?.connectionDeadline('headers');
      // Before a TLS handshake finished there is no channel to answer on: a plaintext answer would
      // sit unflushed in the TLS socket and keep its descriptor for good. Destroy instead.
      if (!socket.writable || err.code === 'ECONNRESET' || (this.#tls && !this.#secured.has(socket))) {
        socket.destroy();
        return;
      }
      rescueRaw(socket, parserError(err), {}, this.#logger, this.#lingerMs, () => metrics?.connectionDeadline('error_answer'));
    });
    if (options.tls) {
      this.#server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
        this.#logger.debug({ err: err.message }, 'TLS handshake refused');
        if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') metrics?.connectionDeadline('handshake');
        metrics?.tlsFailure(tlsFailureReason(err));
      });
    }
    this.#listen = () =>
      new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(options.port, options.ip, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
  }

  readonly #listen: () => Promise<void>;

  async start(): Promise<this> {
    await this.#listen();
    this.#serverLabel = `${this.#ip}/${this.address.port}`;
    return this;
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /** Updates the TLS certificates for new handshakes (rotated files). */
  setSecureContext(options: TlsOptions): void {
    (this.#server as https.Server).setSecureContext(options);
  }

  /** Resumes the socket of an admitted source, destroys one refused (counted, logged once a minute). */
  #admitSource(guard: SourceGuard, socket: Socket): void {
    const decided = (a: Awaited<ReturnType<SourceGuard['admit']>>): void => {
      if (socket.destroyed) return;
      if (a.ok) {
        this.#sources.set(socket, a.source);
        socket.resume();
        return;
      }
      this.#refuseSource(socket, a.reason);
    };
    const a = guard.admit(socket.remoteAddress);
    if (a instanceof Promise) void a.then(decided);
    else decided(a);
  }

  #refuseSource(socket: Socket, reason: RefusalReason): void {
    this.#metrics?.connectionRefused(reason);
    const remote = socket.remoteAddress ?? '?';
    if (this.#refusalLog.shouldLog(remote)) {
      this.#logger.info({ remote, reason }, 'connection refused: the outgoing port serves only pods on this node, the node itself and allowedSourceCidrs');
    }
    socket.destroy();
  }

  /**
   * The entry decision of a request on any path (router/decision.ts): its admitted source
   * (outgoing) or its verified peer and claim (incoming). Throws or rejects IDENTITY_REFUSED.
   */
  #decide(req: http.IncomingMessage, entry: EntryPath): EntryDecision | Promise<EntryDecision> {
    return this.#decider.decide({
      direction: this.#direction,
      entry,
      source: this.#sources.get(req.socket),
      peerId: this.#tls ? peerIdentity(req.socket as TLSSocket) : undefined,
      headers: req.headers,
    });
  }

  /** A pipelined request's turn came (one function for all: no closure per request). */
  readonly #again = (req: http.IncomingMessage, res: http.ServerResponse): void => this.#onRequest(req, res);

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#pipelines.hold(req, res, this.#again)) return; // routed at its turn, or dropped with its connection
    if (this.#refusedHeads.has(req.socket)) return; // read behind a refused head: closed with it, never served
    const ctx: RequestContext = new Context(this.#direction);
    if (this.#announcing) {
      // The peer stops choosing this node (router/stages/concrete/draining-peers.ts) and its connection closes
      // after this answer, so it holds none to a router about to stop.
      res.setHeader(DRAINING_HEADER, '1');
      res.setHeader('connection', 'close');
    }
    if (this.#draining) {
      res.setHeader('connection', 'close');
      // No app saw it: a peer router (mTLS) may resend it to another node (router.ts requeues).
      res.setHeader(RETRYABLE_HEADER, 'true');
      if (this.#direction === 'inbound') res.setHeader(REQUEUE_HEADER, 'not-delivered');
      rescue(res, HostmeshError.of('SHUTTING_DOWN', 'draining'), ctx, this.#logger);
      return;
    }
    this.#active++;
    // Node's engine: a body still arriving when its answer is done is read and dropped (node-engine.ts).
    if (this.#lean === undefined) res.once('finish', () => dropUnreadBody(req));
    const metrics = this.#metrics;
    if (metrics !== undefined) {
      const started = performance.now();
      metrics.started();
      const accessLog = this.#accessLog;
      res.on('close', () => {
        // 'close' comes once; on() skips once()'s wrapper per request
        metrics.done(ctx.service, ctx.client, res.headersSent ? res.statusCode : 499, (performance.now() - started) / 1000, this.#serverLabel);
        if (accessLog !== undefined && res.headersSent) accessLog.request(req, res);
      });
    }
    void this.#route(req, res, ctx);
  }

  /** Routes a request and answers its failure; one promise per request. */
  async #route(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext): Promise<void> {
    try {
      if (tooManyHeaders(req.rawHeaders, this.#maxHeaders)) {
        this.#metrics?.tooManyHeaders();
        throw HostmeshError.of('HEADERS_TOO_LARGE', 'fields', { max: this.#maxHeaders });
      }
      const refused = headRefusal(req);
      if (refused !== undefined) {
        res.setHeader('connection', 'close'); // what the client meant by its head is in doubt
        if (this.#lean === undefined) this.#refusedHeads.add(req.socket);
        throw refused;
      }
      // The entry decision (caller, claim, l5d-client-id) before routing; a claim check may wait
      // briefly for this router's pod watch, or refuse the request.
      const decided = this.#decide(req, this.#tunnelled.has(req.socket) ? 'connect-inner' : 'http1');
      await this.#router.handle(req, res, ctx, decided instanceof Promise ? await decided : decided);
    } catch (err) {
      // A routing failure's delegation path is worked out here, on the error path only.
      rescue(res, this.#router.explainFailure(err, ctx), ctx, this.#logger);
    } finally {
      this.#active--;
      if (this.#active === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /** Accepted sockets open now (any state: handshaking, idle, in a request, tunnelled). */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Starts the announce phase before a drain: on an inbound listener (peer routers' side)
   * requests are still served, each answer marked draining with `connection: close`. Returns
   * whether this listener announces (outbound ones have no peer router to tell).
   */
  announce(): boolean {
    if (this.#direction !== 'inbound') return false;
    this.#announcing = true;
    return true;
  }

  /**
   * Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes everything:
   * every accepted socket is destroyed at the end of the grace whatever its state, so the drain
   * finishes on time even with unfinished handshakes or silent connections pending.
   */
  async close(graceMs: number): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#lean !== undefined) this.#lean.closeIdleConnections();
    else this.#server.closeIdleConnections();
    // Handshakes in progress carry no request: there is nothing to let finish.
    if (this.#tls) this.#connections.destroyWhere((s) => this.#connections.isPending(s));
    if (this.#active > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
      // The last answers' 'finish' comes after their routing ended: what it starts (a refusal
      // pipelined behind them, pipeline.ts) is written before the connections close.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.#lean !== undefined) this.#lean.closeAllConnections();
    else this.#server.closeAllConnections();
    this.#tunnels.closeAll();
    this.#connections.destroyAll();
    await closed;
  }
}

/**
 * A socket handed over by its HTTP server (an Upgrade, a CONNECT) keeps what arrives in its buffer
 * until the tunnel reads it: a stream left flowing with no reader would drop it (Node's own server
 * does the same before its 'upgrade' event).
 */
function holdReads(socket: Socket): void {
  if (socket.readableFlowing === true) (socket as { readableFlowing: boolean | null }).readableFlowing = null;
}

/** A short, bounded label for a refused handshake (metric label: never the raw message). */
export function tlsFailureReason(err: NodeJS.ErrnoException): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|peer did not return a certificate/i.test(text)) return 'no_client_certificate';
  if (/UNKNOWN_CA|unknown ca|unable to get local issuer|self.signed|CERTIFICATE_VERIFY_FAILED/i.test(text)) return 'untrusted_certificate';
  if (/expired/i.test(text)) return 'certificate_expired';
  if (/ERR_TLS_HANDSHAKE_TIMEOUT/.test(text)) return 'handshake_timeout';
  if (/NO_SHARED_CIPHER|no shared cipher/i.test(text)) return 'no_shared_cipher'; // a suite outside tls/policy.ts
  if (/ECONNRESET|socket hang up|disconnected before/i.test(text)) return 'connection_reset';
  if (/version|protocol|wrong version|http request/i.test(text)) return 'protocol';
  return 'other';
}
