// Stage 5 for HTTP/2 (protocol: h2 routers): carries out a RoutePlan on one multiplexed session per
// endpoint, stream to stream. The attempts (leases, requeues, gRPC-classified retries of buffered
// requests, deadlines) are the one attempt loop's (attempts.ts); here: one stream, trailers, resets.

import { AbortEvent, type AbortEvents } from '../../../core/abort.js';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { HostmeshError } from '../../../errors.js';
import type { Cancel } from '../../../core/clock.js';
import { encodeGrpcMessage, formatGrpcTimeout, GRPC, grpcStatusValue } from '../../../h2/grpc.js';
import type { H2Classifier } from './classifier.js';
import type { H2Sessions } from '../../../h2/h2-sessions.js';
import type { Endpoint } from '../../../namer/addr.js';
import { type ResponseClass, SUCCESS_CLASS_HEADER, successClass } from './classifier.js';
import type { RequestContext } from '../../context.js';
import type { AttemptTimer } from '../../deadline.js';
import { DRAINING_HEADER } from '../concrete/draining-peers.js';
import { endpointKey } from '../endpoint/endpoint-pool.js';
import { headerValue } from '../../headers.js';
import { REQUEUE_HEADER } from './requeue.js';
import type { RoutePlan } from '../../route-plan.js';
import { type Exchange, type Failed, type ForwardOptions, forwardAttempts, scopeOf } from './attempts.js';
import type { Lease } from '../endpoint/endpoint.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Fields HTTP/2 forbids (RFC 9113 8.2.2) or that belong to one hop: never relayed either way. */
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);

/** One HTTP/2 exchange as the listener accepted it. */
export interface H2Exchange {
  readonly stream: ServerHttp2Stream;
  /** The request head as received (pseudo-header fields included). */
  readonly headers: IncomingHttpHeaders;
  readonly grpc: boolean;
  /** The fair-share key: the pod's address on the outbound side; none inbound (every stream is a peer router's). */
  readonly source: string | undefined;
}

/** How an exchange ended, for metrics: the HTTP status and the gRPC status when there was one. */
export interface H2Outcome {
  status: number;
  grpcStatus: number | undefined;
  cls: ResponseClass | undefined;
}

type H2Attempt = { kind: 'response'; up: ClientHttp2Stream; headers: IncomingHttpHeaders; endStream: boolean } | Failed | { kind: 'aborted' };

/** A response head on its stream: the final answer, or one requeued or retried. */
interface H2Answer {
  readonly up: ClientHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly status: number;
  readonly grpcStatus: number | undefined;
}

/**
 * The request body of one exchange, fed to each attempt's upstream stream with back-pressure (the
 * client's stream is paused while the upstream's window is full). What was sent is kept, up to
 * `bound` bytes, so an attempt that reached no app, or a retryable answer, can be sent again.
 */
class RequestBody {
  readonly #src: ServerHttp2Stream;
  readonly #bound: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #target: ClientHttp2Stream | undefined;
  #listening = false;
  #dropped = false;
  replayable = true;
  ended = false;

  constructor(src: ServerHttp2Stream, bound: number) {
    this.#src = src;
    this.#bound = bound;
  }

  /** Sends what was kept to `up`, then the rest as it arrives. */
  attach(up: ClientHttp2Stream): void {
    this.#target = up;
    for (const c of this.#chunks) up.write(c);
    if (this.ended) {
      up.end();
      return;
    }
    up.on('drain', () => {
      if (this.#target === up) this.#src.resume();
    });
    if (!this.#listening) {
      this.#listening = true;
      this.#src.on('data', (chunk: Buffer) => this.#data(chunk));
      this.#src.once('end', () => {
        this.ended = true;
        this.#target?.end();
      });
    }
    this.#src.resume();
  }

  #data(chunk: Buffer): void {
    if (this.#dropped) return;
    if (this.replayable) {
      this.#bytes += chunk.length;
      if (this.#bytes > this.#bound) {
        this.replayable = false;
        this.#chunks = [];
      } else this.#chunks.push(chunk);
    }
    const up = this.#target;
    // Between attempts: kept (or, past the bound, the request cannot be resent). A stream the app
    // closed while our writes were queued is ended but never destroyed by Node: writing to it would throw.
    if (up === undefined || up.destroyed || up.writableEnded) {
      this.#src.pause();
      return;
    }
    if (!up.write(chunk)) this.#src.pause();
  }

  /** The attempt on `up` is over: nothing more goes to it. */
  detach(): void {
    this.#target = undefined;
    this.#src.pause();
  }

  /** The answer being relayed is final: nothing will be resent. */
  settle(): void {
    this.replayable = false;
    this.#chunks = [];
  }

  /**
   * The exchange is over: what the client still sends is read and dropped, so its stream can end
   * (Node destroys a closed stream, and emits 'close', only once its readable side is consumed).
   */
  drop(): void {
    this.#dropped = true;
    this.#target = undefined;
    this.settle();
    this.#src.resume();
  }
}

export class H2Forward {
  readonly #o: ForwardOptions;
  readonly #sessions: H2Sessions;
  constructor(o: ForwardOptions, sessions: H2Sessions) {
    this.#o = o;
    this.#sessions = sessions;
  }

  /**
   * Forwards one exchange; resolves when it is over (relayed, reset, or cancelled) with its outcome.
   * Throws a HostmeshError when no answer was relayed (the listener renders it as a gRPC status).
   * The attempts go through the one attempt loop (attempts.ts); an attempt here is one stream.
   */
  async forward(x: H2Exchange, plan: RoutePlan, ctx: RequestContext): Promise<H2Outcome> {
    const o = this.#o;
    const scope = scopeOf(o, plan);
    const { service, pools } = scope;
    const abort = new AbortEvent();
    const onGone = (): void => void abort.emit('abort');
    x.stream.once('close', onGone);
    const body = new RequestBody(x.stream, scope.svc.retries.requestBufferBytes);
    // The service's classifier: the router's, or an io.l5d.static service config's for this name.
    const classify = scope.svc.classifyH2;
    const method = plan.method;
    const cancelled = (): H2Outcome => ({ status: 499, grpcStatus: GRPC.CANCELLED, cls: undefined });
    const exchange: Exchange<H2Answer, H2Outcome> = {
      source: x.source,
      admitted: true,
      retries: true,
      reportsClass: true,
      replayable: () => body.replayable,
      gone: () => x.stream.destroyed,
      left: cancelled,
      timeoutRetryable: () => true,
      send: async (endpoint, _lease, signal, timer) => {
        let a = await this.#attempt(x, plan, endpoint, body, signal, pools.limits.connectTimeoutMs, timer);
        // A refused stream (REFUSED_STREAM, or above the last stream of a GOAWAY: an app rotating its
        // connection, as gRPC servers do at max_connection_age) never reached the app (RFC 9113 8.7):
        // it is sent once more to the same endpoint, on a new session after a GOAWAY, as gRPC clients
        // retry such streams themselves. Requeues look only for another endpoint, and there may be none.
        if (a.kind === 'failed' && a.code === 'REFUSED_STREAM' && body.replayable && !x.stream.destroyed) {
          this.#o.events.requeue('not_delivered', service);
          a = await this.#attempt(x, plan, endpoint, body, signal, pools.limits.connectTimeoutMs, timer);
        }
        if (a.kind !== 'response') return a;
        const status = Number(a.headers[':status'] ?? 502);
        // END_STREAM on the response HEADERS: a trailers-only answer, classified now; else by its trailers.
        const grpcStatus = a.endStream ? grpcStatusValue(a.headers['grpc-status']) : undefined;
        const cls = a.endStream ? classify(method, status, grpcStatus) : undefined;
        return { kind: 'answer', answer: { up: a.up, headers: a.headers, status, grpcStatus }, head: a.headers, cls };
      },
      discard: (answer) => {
        body.detach();
        release(answer.up);
      },
      relay: async (answer, cls, lease) => {
        body.settle();
        if (cls !== undefined) {
          respond(x.stream, answer.headers, { endStream: true }, cls);
          // The answer is final: a request still being sent goes nowhere, upstream or from the client.
          if (!body.ended) {
            release(answer.up);
            stopRequest(x.stream);
          }
          return { status: answer.status, grpcStatus: answer.grpcStatus, cls };
        }
        return await this.#relay(x, answer.up, answer.headers, answer.status, lease, ctx, service, method, classify, body);
      },
      failure: (f, endpoint) => this.#upstreamError(f, endpoint, service),
    };
    try {
      return await forwardAttempts(o, plan, ctx, scope, abort, exchange);
    } finally {
      x.stream.off('close', onGone);
      body.drop();
    }
  }

  /** One attempt: a stream on the endpoint's session, the request body attached, until its response head. */
  async #attempt(
    x: H2Exchange,
    plan: RoutePlan,
    endpoint: Endpoint,
    body: RequestBody,
    signal: AbortEvents,
    connectTimeoutMs: number,
    timer: AttemptTimer,
  ): Promise<H2Attempt> {
    let up: ClientHttp2Stream;
    try {
      const got = this.#sessions.get(endpoint, plan.tls ? plan.tlsOptions : undefined, connectTimeoutMs);
      const session = got instanceof Promise ? await got : got;
      if (x.stream.destroyed) return { kind: 'aborted' };
      try {
        up = session.request(upstreamHeaders(x, plan, endpoint, timer.remaining()), { endStream: false });
        up.on('error', () => undefined); // 'response' and 'close' carry the outcome; an 'error' unheard would end the process
      } catch (err) {
        // A session that received GOAWAY refuses new streams: nothing was sent.
        this.#sessions.drop(session);
        return { kind: 'failed', code: 'REFUSED_STREAM', err: err as Error, requeue: 'not_delivered' };
      }
    } catch (err) {
      return { kind: 'failed', code: (err as { code?: string }).code ?? 'ECONNREFUSED', err: err as Error, requeue: 'connect_failed' };
    }
    body.attach(up);
    return new Promise<H2Attempt>((resolve) => {
      const done = (a: H2Attempt): void => {
        up.off('response', onResponse);
        up.off('error', onError);
        up.off('close', onClose);
        signal.off('abort', onAbort);
        if (a.kind !== 'response') {
          body.detach();
          release(up);
        }
        resolve(a);
      };
      const onResponse = (headers: IncomingHttpHeaders, flags: number): void => {
        // END_STREAM on the response HEADERS (flag 0x1): a trailers-only answer.
        done({ kind: 'response', up, headers, endStream: (flags & 0x1) !== 0 || up.endAfterHeaders });
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        const refused = up.rstCode === NGHTTP2_REFUSED_STREAM;
        done({ kind: 'failed', code: refused ? 'REFUSED_STREAM' : (err.code ?? 'UPSTREAM'), err, requeue: refused ? 'not_delivered' : undefined });
      };
      const onClose = (): void => {
        const refused = up.rstCode === NGHTTP2_REFUSED_STREAM;
        done({
          kind: 'failed',
          code: refused ? 'REFUSED_STREAM' : 'ECONNRESET',
          err: new Error(`stream closed before a response (code ${up.rstCode})`),
          requeue: refused ? 'not_delivered' : undefined,
        });
      };
      const onAbort = (): void => done({ kind: 'aborted' });
      up.once('response', onResponse);
      up.once('error', onError);
      up.once('close', onClose);
      signal.once('abort', onAbort);
    });
  }

  /**
   * Relays a streamed answer: its head, its DATA with back-pressure both ways (pipe pauses the
   * upstream while the client's window is full), its trailers; resets travel both ways. The
   * request's deadline bounds the whole call: past it the upstream stream is cancelled and the
   * client gets DEADLINE_EXCEEDED in the trailers.
   */
  #relay(
    x: H2Exchange,
    up: ClientHttp2Stream,
    headers: IncomingHttpHeaders,
    status: number,
    lease: Lease,
    ctx: RequestContext,
    service: string,
    method: string,
    classify: H2Classifier,
    body: RequestBody,
  ): Promise<H2Outcome> {
    const o = this.#o;
    const stream = x.stream;
    return new Promise<H2Outcome>((resolve) => {
      let trailers: IncomingHttpHeaders | undefined;
      let forced: OutgoingHttpHeaders | undefined;
      let settled = false;
      let cancelDeadline: Cancel | undefined;
      const outcome: H2Outcome = { status, grpcStatus: undefined, cls: undefined };
      const finish = (): void => {
        if (settled) return;
        settled = true;
        cancelDeadline?.();
        if (outcome.cls !== undefined) {
          lease.record(outcome.cls === 'success');
          o.events.classified(service, outcome.cls);
        }
        resolve(outcome);
      };
      respond(stream, headers, { waitForTrailers: true }, undefined);
      stream.once('wantTrailers', () => {
        const t = forced ?? relayedTrailers(trailers);
        const grpcStatus = grpcStatusValue(t['grpc-status'] as string | undefined);
        outcome.grpcStatus = grpcStatus;
        outcome.cls = classify(method, status, grpcStatus);
        t[SUCCESS_CLASS_HEADER] = successClass(outcome.cls);
        try {
          stream.sendTrailers(t);
        } catch {
          stream.close(NGHTTP2_CANCEL);
          return;
        }
        // Node sends the trailers on the next turn; the reset of an unfinished request must follow them.
        setImmediate(() => {
          body.drop();
          stopRequest(stream);
        });
      });
      up.on('trailers', (t: IncomingHttpHeaders) => {
        trailers = t;
      });
      up.pipe(stream);
      // Resets both ways: the client cancelled (cancel the app's stream), or the upstream reset (reset the client's).
      stream.once('close', () => {
        release(up);
        // Closed before its trailers: the client cancelled the call.
        if (outcome.grpcStatus === undefined) outcome.grpcStatus = GRPC.CANCELLED;
        finish();
      });
      up.once('close', () => {
        const code = up.rstCode ?? NGHTTP2_NO_ERROR;
        // Past the deadline the router cancelled the stream itself: the client gets the trailers set for it.
        if (code !== NGHTTP2_NO_ERROR && forced === undefined && !stream.destroyed) {
          up.unpipe(stream);
          outcome.grpcStatus = GRPC.CANCELLED;
          outcome.cls = 'failure';
          stream.close(code);
        }
      });
      const d = ctx.deadline;
      if (d !== undefined) {
        cancelDeadline = o.clock.schedule(Math.max(0, d.at - o.clock.now()), () => {
          o.events.timeout(d.source === 'header' ? 'deadline' : 'total', service);
          forced = {
            'grpc-status': String(GRPC.DEADLINE_EXCEEDED),
            'grpc-message': encodeGrpcMessage('deadline exceeded in the mesh'),
            'l5d-err': 'deadline%20exceeded',
          };
          up.unpipe(stream);
          release(up);
          if (!stream.destroyed) stream.end();
        });
      }
    });
  }

  #upstreamError(a: Failed, endpoint: Endpoint, service: string): HostmeshError {
    if (a.code === 'UND_ERR_CONNECT_TIMEOUT') {
      this.#o.events.timeout('connect', service);
      return new HostmeshError('TIMEOUT', `timed out connecting to ${endpointKey(endpoint)}`, { cause: a.err });
    }
    if (a.requeue === undefined) {
      return new HostmeshError('UPSTREAM_ERROR', `stream to ${endpointKey(endpoint)} failed after the request was sent: ${a.err.message}`, { cause: a.err });
    }
    return new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${a.err.message}`, { cause: a.err });
  }
}

/**
 * The answer on `stream` is complete: a client still sending its request is asked to stop, without
 * error (RST_STREAM NO_ERROR after the END_STREAM, RFC 9113 8.1), as gRPC servers and Node's own
 * server do. Otherwise a client that finishes its upload before it reads the end of the exchange
 * (h2load, nghttp, Node's http2) waits on a window the router never opens again.
 */
export function stopRequest(stream: ServerHttp2Stream): void {
  if (stream.destroyed || stream.closed || stream.state.remoteClose === 1) return;
  stream.close(NGHTTP2_NO_ERROR);
}

/**
 * The exchange no longer needs the upstream stream: one still open is cancelled; one the app closed
 * while request data was queued for it is destroyed (Node ends such a stream but never destroys it,
 * so it would hold its session open for good).
 */
function release(up: ClientHttp2Stream): void {
  if (up.destroyed) return;
  if (up.closed) up.destroy();
  else up.close(NGHTTP2_CANCEL);
}

/** The upstream request head: the pseudo-header fields, the router's fields, the grpc-timeout left. */
function upstreamHeaders(x: H2Exchange, plan: RoutePlan, endpoint: Endpoint, remainingMs: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': plan.method,
    ':scheme': plan.tls ? 'https' : 'http',
    ':path': plan.target,
    ':authority': headerValue(plan.headers.host as string | undefined) ?? endpointKey(endpoint),
  };
  const h = plan.headers;
  for (const k in h) {
    const v = h[k];
    if (v === undefined || CONNECTION_FIELDS.has(k) || k.charCodeAt(0) === 0x3a) continue;
    out[k] = v;
  }
  // gRPC needs `te: trailers` end to end (it is the one TE value HTTP/2 allows).
  if (headerValue(x.headers.te)?.trim().toLowerCase() === 'trailers') out.te = 'trailers';
  if (Number.isFinite(remainingMs)) out['grpc-timeout'] = formatGrpcTimeout(remainingMs);
  else delete out['grpc-timeout'];
  return out;
}

/** The response head to relay: :status and end-to-end fields, never the router's requeue and draining marks. */
function respond(
  stream: ServerHttp2Stream,
  h: IncomingHttpHeaders,
  options: { endStream?: boolean; waitForTrailers?: boolean },
  cls: ResponseClass | undefined,
): void {
  if (stream.destroyed || stream.headersSent) return;
  const out: OutgoingHttpHeaders = { ':status': Number(h[':status'] ?? 502) };
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 0x3a || CONNECTION_FIELDS.has(k) || k === REQUEUE_HEADER || k === DRAINING_HEADER) continue;
    out[k] = v;
  }
  if (cls !== undefined) out[SUCCESS_CLASS_HEADER] = successClass(cls);
  stream.respond(out, options);
}

function relayedTrailers(t: IncomingHttpHeaders | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (t === undefined) return out;
  for (const k in t) {
    const v = t[k];
    if (v !== undefined && k.charCodeAt(0) !== 0x3a && !CONNECTION_FIELDS.has(k)) out[k] = v;
  }
  return out;
}
