// An h2 router's listener: HTTP/2 with an explicit direction (outbound: h2c with prior knowledge
// from this node's apps, :4240/:4340; inbound: h2 over mTLS with ALPN h2 from peer routers,
// :4241/:4341), handing every stream to the router's stages and its HTTP/2 forward stage.

import { type Clock, systemClock } from '../core/clock.js';
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { HostmeshError } from '../errors.js';
import { GRPC, GRPC_STATUS_NAMES, isGrpc, parseGrpcTimeout } from '../h2/grpc.js';
import {
  HEADER_TABLE_BYTES,
  type H2Limits,
  MAX_HEADER_PAIRS,
  MAX_INVALID_FRAMES,
  MAX_OUTSTANDING_PINGS,
  MAX_REJECTED_STREAMS,
  MAX_SETTINGS,
} from '../h2/h2-limits.js';
import type { Callers } from '../identity/caller.js';
import { RefusalLog, type Source, type SourceGuard } from '../identity/source-guard.js';
import type { Logger } from '../log.js';
import type { H2Events } from '../h2/events.js';
import type { ListenerEvents } from './events.js';
import { Context, type Direction, type RequestContext } from '../router/context.js';
import { DEADLINE_HEADER, formatDeadline } from '../router/deadline.js';
import { DRAINING_HEADER } from '../router/stages/concrete/draining-peers.js';
import type { Router } from '../router/router.js';
import type { H2Forward } from '../router/stages/forward/forward-h2.js';
import type { RequestHead } from '../router/stages/identify/identify.js';
import { peerIdentity, peerVerdict } from '../tls/peer-identity.js';
import { clearContextHeaders } from './clear-context.js';
import { Connections } from './connections.js';
import { EntryDecider } from '../router/decision.js';
import { rescueH2 } from './h2-rescue.js';
import { SOCKET_DEFAULTS } from './listener.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

export interface H2ListenerOptions {
  readonly direction: Direction;
  readonly ip: string;
  readonly port: number;
  /** TLS server options (inbound side: mTLS, ALPN h2 only); absent for h2c. */
  readonly tls?: TlsOptions;
  readonly limits: H2Limits;
  /** A session, or a stream, with no frames for this long is closed (default 5 min). */
  readonly idleTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly maxConnections?: number;
  readonly maxConnectionsPerSource?: number;
  readonly metrics?: ListenerEvents;
  readonly h2Metrics?: H2Events;
  readonly sourceGuard?: SourceGuard;
  readonly callers?: Callers;
  readonly clearContext?: boolean;
  /** The router's clock (grpc-timeout becomes a deadline on it). */
  readonly clock?: Clock;
}

/** How long an idle session being closed gets to finish its streams before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** Resets counted per session over this window against maxResetsPerSession. */
const RESET_WINDOW_MS = 10_000;

export class H2Listener {
  readonly #server: Http2Server;
  readonly #router: Router;
  readonly #forward: H2Forward;
  readonly #o: H2ListenerOptions;
  readonly #logger: Logger;
  readonly #connections: Connections;
  /** The source the guard admitted, per session (a session's `socket` is a proxy: no WeakMap key). */
  readonly #sources = new WeakMap<Http2Session, Source>();
  /** The source of the socket being handed to Node right now: an h2c session is made synchronously. */
  #admitted: Source | undefined;
  /** The one caller/claim/override decision every entry path passes (router/decision.ts). */
  readonly #decider: EntryDecider;
  readonly #sessions = new Set<Http2Session>();
  readonly #refusalLog = new RefusalLog();
  readonly #now: () => number;
  #draining = false;
  #announcing = false;
  #active = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(router: Router, forward: H2Forward, options: H2ListenerOptions, logger: Logger) {
    this.#router = router;
    this.#forward = forward;
    this.#o = options;
    this.#logger = logger;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
    this.#decider = new EntryDecider(options.callers);
    const l = options.limits;
    const common: http2.ServerOptions = {
      maxSessionMemory: l.maxSessionMemoryMb,
      maxHeaderListPairs: MAX_HEADER_PAIRS,
      maxSettings: MAX_SETTINGS,
      maxOutstandingPings: MAX_OUTSTANDING_PINGS,
      maxSessionInvalidFrames: MAX_INVALID_FRAMES,
      maxSessionRejectedStreams: MAX_REJECTED_STREAMS,
      settings: {
        enablePush: false,
        headerTableSize: HEADER_TABLE_BYTES,
        maxConcurrentStreams: l.maxConcurrentStreamsPerConnection,
        maxFrameSize: l.maxFrameBytes,
        maxHeaderListSize: l.maxHeaderListBytes,
        initialWindowSize: l.initialStreamWindowBytes,
      },
    };
    this.#server = options.tls
      ? http2.createSecureServer({
          ...common,
          ...options.tls,
          allowHTTP1: false,
          ALPNProtocols: ['h2'],
          handshakeTimeout: options.handshakeTimeoutMs ?? SOCKET_DEFAULTS.handshakeTimeoutMs,
          unknownProtocolTimeout: 1000,
        })
      : http2.createServer(common);
    this.#connections = new Connections({
      max: options.maxConnections ?? SOCKET_DEFAULTS.maxConnections,
      perSource: options.maxConnectionsPerSource ?? SOCKET_DEFAULTS.maxConnectionsPerSource,
    });
    const metrics = options.metrics;
    // Caps and the source guard run before Node's own handling of the socket (the TLS wrap or the
    // HTTP/2 session): a refused socket never costs a session. Admitted ones are handed on.
    const nodeOwn = this.#server.listeners('connection') as ((socket: Socket) => void)[];
    this.#server.removeAllListeners('connection');
    this.#server.on('connection', (socket: Socket) => {
      const refused = this.#connections.admit(socket);
      if (refused !== undefined) {
        metrics?.connectionRefused(refused);
        socket.destroy();
        return;
      }
      socket.on('error', () => socket.destroy());
      const handOn = (): void => {
        for (const listener of nodeOwn) listener.call(this.#server, socket);
      };
      const guard = options.sourceGuard;
      if (guard === undefined) {
        handOn();
        return;
      }
      socket.pause();
      const decided = (a: Awaited<ReturnType<SourceGuard['admit']>>): void => {
        if (socket.destroyed) return;
        if (!a.ok) {
          metrics?.connectionRefused(a.reason);
          const remote = socket.remoteAddress ?? '?';
          if (this.#refusalLog.shouldLog(remote)) this.#logger.info({ remote, reason: a.reason }, 'h2 connection refused: not a local source');
          socket.destroy();
          return;
        }
        this.#admitted = a.source;
        try {
          handOn();
        } finally {
          this.#admitted = undefined;
        }
        socket.resume();
      };
      const a = guard.admit(socket.remoteAddress);
      if (a instanceof Promise) void a.then(decided);
      else decided(a);
    });
    if (options.tls) {
      this.#server.on('secureConnection', (socket: TLSSocket) => {
        const verdict = peerVerdict(socket);
        if (verdict.kind !== 'refused') return;
        metrics?.tlsFailure('peer_certificate_refused');
        socket.destroy();
      });
      this.#server.on('tlsClientError', () => metrics?.tlsFailure('handshake'));
    }
    this.#server.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    this.#server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.#onStream(stream, headers));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port, this.#o.ip, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this;
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  get connections(): number {
    return this.#connections.size;
  }

  /** Sessions open now (one per client connection that spoke HTTP/2). */
  get sessions(): number {
    return this.#sessions.size;
  }

  setSecureContext(options: TlsOptions): void {
    (this.#server as unknown as { setSecureContext(o: TlsOptions): void }).setSecureContext(options);
  }

  /**
   * A session's bounds beyond Node's own: idle sessions are closed, and a client that resets more
   * than maxResetsPerSession streams within 10 s (rapid reset, CVE-2023-44487) gets GOAWAY
   * ENHANCE_YOUR_CALM and loses the connection.
   */
  #onSession(session: ServerHttp2Session): void {
    this.#sessions.add(session);
    if (this.#admitted !== undefined) this.#sources.set(session, this.#admitted);
    const metrics = this.#o.metrics;
    const socket = session.socket as Socket | undefined;
    metrics?.connectionOpened('server');
    session.once('close', () => {
      this.#sessions.delete(session);
      metrics?.connectionClosed('server', 0, 0);
    });
    session.on('error', (err) => {
      this.#logger.debug({ err: err.message }, 'h2 session error');
    });
    session.on('frameError', () => undefined);
    session.setTimeout(this.#o.idleTimeoutMs ?? SOCKET_DEFAULTS.idleTimeoutMs, () => {
      this.#o.h2Metrics?.sessionEnded('idle');
      this.#end(session, NGHTTP2_NO_ERROR);
    });
    let windowStart = this.#now();
    let resets = 0;
    /** The session was told to calm down: further resets in the same read change nothing (one GOAWAY, one count, one log line). */
    let calmed = false;
    session.on('stream', (stream: ServerHttp2Stream) => {
      stream.once('aborted', () => {
        if (calmed) return;
        const t = this.#now();
        if (t - windowStart > RESET_WINDOW_MS) {
          windowStart = t;
          resets = 0;
        }
        resets++;
        if (resets > this.#o.limits.maxResetsPerSession && !session.destroyed) {
          calmed = true;
          this.#o.h2Metrics?.sessionEnded('rapid_reset');
          this.#logger.info({ remote: socket?.remoteAddress }, 'h2 session ended: too many stream resets');
          this.#end(session, NGHTTP2_ENHANCE_YOUR_CALM);
        }
      });
    });
    if (this.#draining) this.#end(session, NGHTTP2_NO_ERROR);
  }

  /** GOAWAY with `code`, then the session is closed (streams in flight may finish) or, when abusive, destroyed. */
  #end(session: Http2Session, code: number): void {
    if (session.destroyed) return;
    try {
      session.goaway(code);
    } catch {
      // already going away
    }
    if (code === NGHTTP2_NO_ERROR) {
      session.close();
      // A session whose streams never finish (or one nghttp2 already ended with its own GOAWAY, which
      // Node leaves open) is destroyed after a short grace.
      setTimeout(() => session.destroy(), CLOSE_GRACE_MS).unref();
    } else setImmediate(() => session.destroy());
  }

  /** The request head the stages read: no pseudo-header fields, :authority as Host, grpc-timeout as the deadline. */
  #head(headers: IncomingHttpHeaders): RequestHead {
    // Node's header object has no prototype; this one has, so a field named __proto__ is not carried,
    // as on the HTTP/1 path (Node's IncomingMessage drops it). ':' starts a pseudo-header field.
    const h: IncomingHttpHeaders = {};
    for (const k in headers) if (k.charCodeAt(0) !== 0x3a && k !== '__proto__') h[k] = headers[k];
    const authority = headers[':authority'] ?? headers.host;
    if (authority !== undefined) h.host = authority;
    else delete h.host;
    const timeout = parseGrpcTimeout(headers['grpc-timeout']);
    if (timeout !== undefined) {
      // The strictest of the caller's l5d-ctx-deadline and its grpc-timeout (deadline.ts combines them).
      const now = this.#now();
      const mine = formatDeadline({ timestamp: now, deadline: now + timeout });
      const theirs = h[DEADLINE_HEADER];
      h[DEADLINE_HEADER] = theirs === undefined ? mine : `${Array.isArray(theirs) ? theirs.join(',') : theirs},${mine}`;
    }
    return { method: headers[':method'] ?? 'POST', url: headers[':path'] ?? '/', headers: h, httpVersion: '2.0' };
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const direction = this.#o.direction;
    const ctx: RequestContext = new Context(direction);
    const grpc = isGrpc(headers['content-type']);
    const metrics = this.#o.metrics;
    const started = performance.now();
    metrics?.started();
    this.#active++;
    stream.on('error', () => undefined); // the exchange's outcome is read from 'close' and its promise
    // A stream that sends nothing for the idle bound (never END_STREAM, a zero window it never opens) is cancelled.
    stream.setTimeout(this.#o.idleTimeoutMs ?? SOCKET_DEFAULTS.idleTimeoutMs, () => stream.close(NGHTTP2_CANCEL));
    const finished = (status: number, grpcStatus: number | undefined): void => {
      metrics?.done(ctx.service, ctx.client, status, (performance.now() - started) / 1000);
      if (grpc) this.#o.h2Metrics?.grpcAnswered(ctx.service, GRPC_STATUS_NAMES[grpcStatus ?? GRPC.UNKNOWN] ?? 'UNKNOWN');
      this.#active--;
      if (this.#active === 0) for (const w of this.#idleWaiters.splice(0)) w();
    };
    if (this.#o.clearContext === true) clearContextHeaders(headers);
    const route = async (): Promise<{ status: number; grpcStatus: number | undefined }> => {
      if (this.#draining) {
        throw HostmeshError.of('SHUTTING_DOWN', 'draining');
      }
      if (headers[':method'] === 'CONNECT') throw HostmeshError.of('BAD_REQUEST', 'parser', { reason: 'CONNECT is not served by h2 routers' });
      // As on HTTP/1 (router/headers.ts, headRefusal): a target has no fragment, and policy paths end at '#'.
      if (headers[':path']?.includes('#') === true) throw HostmeshError.of('BAD_REQUEST', 'fragment');
      const session = stream.session;
      const socket = session?.socket as Socket | undefined;
      const head = this.#head(headers);
      // The caller, claim and override decision: the same step as every other entry path.
      // Both are synchronous in the common case (no claim to wait for, a cached binding): no turn is awaited then.
      const decided = this.#decider.decide({
        direction,
        entry: 'h2',
        source: session === undefined ? undefined : this.#sources.get(session),
        peerId: this.#o.tls && socket !== undefined ? peerIdentity(socket as TLSSocket) : undefined,
        headers: head.headers,
      });
      const planned = this.#router.plan(head, ctx, decided instanceof Promise ? await decided : decided);
      const plan = planned instanceof Promise ? await planned : planned;
      const outcome = await this.#forward.forward({ stream, headers, grpc, source: direction === 'inbound' ? undefined : socket?.remoteAddress }, plan, ctx);
      return { status: outcome.status, grpcStatus: outcome.grpcStatus };
    };
    if (this.#announcing) {
      // Peers stop choosing this node: every answer head says it is draining.
      const respond = stream.respond.bind(stream);
      stream.respond = ((h?: http2.OutgoingHttpHeaders, o?: http2.ServerStreamResponseOptions) =>
        respond({ ...h, [DRAINING_HEADER]: '1' }, o)) as typeof stream.respond;
    }
    route()
      .catch((err: unknown) => rescueH2(stream, this.#router.explainFailure(err, ctx), ctx, this.#logger, grpc))
      .then(
        (r) => finished(r.status, r.grpcStatus),
        () => finished(500, GRPC.INTERNAL),
      );
  }

  announce(): boolean {
    if (this.#o.direction !== 'inbound') return false;
    this.#announcing = true;
    return true;
  }

  /** Stops accepting, sends GOAWAY to every session, lets streams in flight finish (up to graceMs), then closes all. */
  async close(graceMs: number): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sessions) {
      this.#o.h2Metrics?.sessionEnded('drain');
      this.#end(s, NGHTTP2_NO_ERROR);
    }
    if (this.#active > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    for (const s of this.#sessions) s.destroy();
    this.#connections.destroyAll();
    await closed;
  }
}
