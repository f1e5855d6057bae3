// Stage 5 for HTTP/2 (protocol: h2 routers): carries out a RoutePlan on one multiplexed session per
// endpoint, stream to stream: attempts through the same endpoint leases (admission, accrual, load),
// requeues and gRPC-classified retries of buffered requests, deadlines, trailers and resets.

import { EventEmitter } from 'node:events';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { HostmeshError } from '../../errors.js';
import { encodeGrpcMessage, formatGrpcTimeout, GRPC, grpcStatusValue, type H2Classifier } from '../../h2/grpc.js';
import type { H2Sessions } from '../../h2/h2-sessions.js';
import type { Endpoint } from '../../namer/addr.js';
import { type ResponseClass, SUCCESS_CLASS_HEADER, successClass } from '../classifier.js';
import type { RequestContext } from '../context.js';
import { AttemptTimer } from '../deadline.js';
import { DRAINING_HEADER } from '../draining-peers.js';
import { endpointKey } from '../endpoint-pool.js';
import { headerValue } from '../headers.js';
import { markReason, REQUEUE_HEADER, type RequeueReason } from '../requeue.js';
import { backoffDelays } from '../retries.js';
import type { RoutePlan } from '../route-plan.js';
import { type ForwardOptions, retryHop } from './forward.js';
import type { Lease } from './endpoint.js';

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

type Attempt =
  | { kind: 'response'; up: ClientHttp2Stream; headers: IncomingHttpHeaders; endStream: boolean }
  | { kind: 'failed'; code: string; err: Error; delivered: boolean }
  | { kind: 'aborted' };

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
    if (this.replayable) {
      this.#bytes += chunk.length;
      if (this.#bytes > this.#bound) {
        this.replayable = false;
        this.#chunks = [];
      } else this.#chunks.push(chunk);
    }
    const up = this.#target;
    if (up === undefined || up.destroyed) {
      this.#src.pause(); // between attempts: kept (or, past the bound, the request cannot be resent)
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
}

export class H2Forward {
  readonly #o: ForwardOptions;
  readonly #sessions: H2Sessions;
  readonly #classify: H2Classifier;

  constructor(o: ForwardOptions, sessions: H2Sessions, classify: H2Classifier) {
    this.#o = o;
    this.#sessions = sessions;
    this.#classify = classify;
  }

  /**
   * Forwards one exchange; resolves when it is over (relayed, reset, or cancelled) with its outcome.
   * Throws a HostmeshError when no answer was relayed (the listener renders it as a gRPC status).
   */
  async forward(x: H2Exchange, plan: RoutePlan, ctx: RequestContext): Promise<H2Outcome> {
    const o = this.#o;
    const service = plan.service.show();
    const client = plan.name.id.show();
    const cli = o.client(client);
    const pools = cli.pools ?? o.endpoints.pools;
    const svc = o.service(service);
    const policy = svc.retries;
    const retryBudget = svc.retryBudgets.get(service);
    const requeueBudget = cli.requeueBudgets.get(client);
    retryBudget.deposit();
    requeueBudget.deposit();
    const abort = new EventEmitter();
    const onGone = (): void => void abort.emit('abort');
    x.stream.once('close', onGone);
    const timer = new AttemptTimer({ now: o.now, deadline: ctx.deadline, attemptTimeoutMs: cli.requestAttemptTimeoutMs, abort });
    const body = new RequestBody(x.stream, policy.requestBufferBytes);
    const tried = new Set<string>();
    let endpoint = plan.endpoint;
    let retries = 0;
    let delays: (() => number) | undefined;
    const method = plan.method;
    const requeue = (reason: RequeueReason): Endpoint | undefined => {
      if (!body.replayable || x.stream.destroyed) return undefined;
      const next = plan.another(tried);
      if (next === undefined) return undefined;
      if (!requeueBudget.tryWithdraw()) {
        o.events.budgetExhausted('requeue', service);
        return undefined;
      }
      o.events.requeue(reason, service);
      return next;
    };
    const retry = (): boolean => {
      // README "Retries: one hop": only the outgoing router retries an app's answer, as for HTTP/1.
      if (!retryHop(ctx) || retries >= policy.maxRetriesPerRequest || !body.replayable || x.stream.destroyed) return false;
      if (!retryBudget.tryWithdraw()) {
        o.events.budgetExhausted('retry', service);
        return false;
      }
      retries++;
      o.events.retry(service);
      return true;
    };
    try {
      for (;;) {
        if (timer.remaining() <= 0) {
          timer.expired = 'deadline';
          throw this.#timedOut(timer, ctx);
        }
        const signal = timer.start();
        tried.add(endpointKey(endpoint));
        const lease: Lease = o.endpoints.lease(endpoint, client, x.source, service, pools, cli.accrual);
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          lease.release();
        };
        try {
          await lease.admit(signal);
          if (x.stream.destroyed) return { status: 499, grpcStatus: GRPC.CANCELLED, cls: undefined };
          const a = await this.#attempt(x, plan, endpoint, body, signal, pools.limits.connectTimeoutMs, timer);
          if (a.kind === 'aborted') {
            if (timer.expired !== undefined) {
              if (timer.expired === 'attempt') {
                lease.record(false);
                if (retry()) {
                  endpoint = plan.another(new Set()) ?? endpoint;
                  continue;
                }
              }
              throw this.#timedOut(timer, ctx);
            }
            return { status: 499, grpcStatus: GRPC.CANCELLED, cls: undefined }; // the client left
          }
          if (a.kind === 'failed') {
            timer.stop();
            lease.record(false);
            const reason: RequeueReason | undefined = a.delivered ? undefined : a.code === 'REFUSED_STREAM' ? 'not_delivered' : 'connect_failed';
            const next = reason === undefined ? undefined : requeue(reason);
            if (next !== undefined) {
              endpoint = next;
              continue;
            }
            throw this.#upstreamError(a, endpoint, service);
          }
          timer.stop();
          const { up, headers } = a;
          // Only a peer router's marks count (an endpoint reached over mTLS); a router drops them from what it relays.
          if (plan.tls && o.drainingPeers !== undefined) {
            if (headers[DRAINING_HEADER] !== undefined) o.drainingPeers.mark(lease.entry.key);
            else if (o.drainingPeers.size > 0) o.drainingPeers.clear(lease.entry.key);
          }
          const mark = plan.tls ? headerValue(headers[REQUEUE_HEADER]) : undefined;
          const status = Number(headers[':status'] ?? 502);
          const trailersOnly = a.endStream;
          const grpcStatus = trailersOnly ? grpcStatusValue(headers['grpc-status']) : undefined;
          if (mark !== undefined) {
            lease.record(false);
            const next = requeue(markReason(mark));
            if (next !== undefined) {
              up.close(NGHTTP2_CANCEL);
              endpoint = next;
              continue;
            }
          }
          if (trailersOnly) {
            const cls = this.#classify(method, status, grpcStatus);
            if (mark === undefined) lease.record(cls === 'success');
            if (cls === 'retryable' && retry()) {
              release();
              body.detach();
              delays ??= backoffDelays(policy.backoff, o.random);
              const ms = delays();
              if (ms > 0) await (o.sleep ?? sleep)(Math.min(ms, Math.max(0, timer.remaining())));
              if (x.stream.destroyed) return { status: 499, grpcStatus: GRPC.CANCELLED, cls: undefined };
              endpoint = plan.another(new Set()) ?? endpoint;
              continue;
            }
            o.events.classified(service, cls);
            body.settle();
            respond(x.stream, headers, { endStream: true }, cls);
            return { status, grpcStatus, cls };
          }
          body.settle();
          return await this.#relay(x, up, headers, status, lease, ctx, service, method);
        } finally {
          release();
        }
      }
    } finally {
      timer.stop();
      x.stream.off('close', onGone);
    }
  }

  /** One attempt: a stream on the endpoint's session, the request body attached, until its response head. */
  async #attempt(
    x: H2Exchange,
    plan: RoutePlan,
    endpoint: Endpoint,
    body: RequestBody,
    signal: EventEmitter,
    connectTimeoutMs: number,
    timer: AttemptTimer,
  ): Promise<Attempt> {
    let up: ClientHttp2Stream;
    try {
      const session = await this.#sessions.get(endpoint, plan.tls ? plan.tlsOptions : undefined, connectTimeoutMs);
      if (x.stream.destroyed) return { kind: 'aborted' };
      try {
        up = session.request(upstreamHeaders(x, plan, endpoint, timer.remaining()), { endStream: false });
      } catch (err) {
        // A session that received GOAWAY refuses new streams: nothing was sent.
        this.#sessions.drop(session);
        return { kind: 'failed', code: 'REFUSED_STREAM', err: err as Error, delivered: false };
      }
    } catch (err) {
      return { kind: 'failed', code: (err as { code?: string }).code ?? 'ECONNREFUSED', err: err as Error, delivered: false };
    }
    body.attach(up);
    return new Promise<Attempt>((resolve) => {
      const done = (a: Attempt): void => {
        up.off('response', onResponse);
        up.off('error', onError);
        up.off('close', onClose);
        signal.off('abort', onAbort);
        if (a.kind !== 'response') {
          body.detach();
          if (!up.destroyed) up.close(NGHTTP2_CANCEL);
        }
        resolve(a);
      };
      const onResponse = (headers: IncomingHttpHeaders, flags: number): void => {
        // END_STREAM on the response HEADERS (flag 0x1): a trailers-only answer.
        done({ kind: 'response', up, headers, endStream: (flags & 0x1) !== 0 || up.endAfterHeaders });
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        const refused = up.rstCode === NGHTTP2_REFUSED_STREAM;
        done({ kind: 'failed', code: refused ? 'REFUSED_STREAM' : (err.code ?? 'UPSTREAM'), err, delivered: !refused });
      };
      const onClose = (): void => {
        const refused = up.rstCode === NGHTTP2_REFUSED_STREAM;
        done({
          kind: 'failed',
          code: refused ? 'REFUSED_STREAM' : 'ECONNRESET',
          err: new Error(`stream closed before a response (code ${up.rstCode})`),
          delivered: !refused,
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
  ): Promise<H2Outcome> {
    const o = this.#o;
    const stream = x.stream;
    return new Promise<H2Outcome>((resolve) => {
      let trailers: IncomingHttpHeaders | undefined;
      let forced: OutgoingHttpHeaders | undefined;
      let settled = false;
      let deadline: NodeJS.Timeout | undefined;
      const outcome: H2Outcome = { status, grpcStatus: undefined, cls: undefined };
      const finish = (): void => {
        if (settled) return;
        settled = true;
        if (deadline !== undefined) clearTimeout(deadline);
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
        outcome.cls = this.#classify(method, status, grpcStatus);
        t[SUCCESS_CLASS_HEADER] = successClass(outcome.cls);
        try {
          stream.sendTrailers(t);
        } catch {
          stream.close(NGHTTP2_CANCEL);
        }
      });
      up.on('trailers', (t: IncomingHttpHeaders) => {
        trailers = t;
      });
      up.pipe(stream);
      // Resets both ways: the client cancelled (cancel the app's stream), or the upstream reset (reset the client's).
      stream.once('close', () => {
        if (!up.destroyed) up.close(NGHTTP2_CANCEL);
        finish();
      });
      up.once('close', () => {
        const code = up.rstCode ?? NGHTTP2_NO_ERROR;
        if (code !== NGHTTP2_NO_ERROR && !stream.destroyed) {
          up.unpipe(stream);
          outcome.grpcStatus = GRPC.CANCELLED;
          outcome.cls = 'failure';
          stream.close(code);
        }
      });
      up.on('error', () => undefined); // 'close' carries the outcome
      const d = ctx.deadline;
      if (d !== undefined) {
        deadline = setTimeout(
          () => {
            o.events.timeout(d.source === 'header' ? 'deadline' : 'total', service);
            forced = {
              'grpc-status': String(GRPC.DEADLINE_EXCEEDED),
              'grpc-message': encodeGrpcMessage('deadline exceeded in the mesh'),
              'l5d-err': 'deadline%20exceeded',
            };
            up.unpipe(stream);
            up.close(NGHTTP2_CANCEL);
            if (!stream.destroyed) stream.end();
          },
          Math.max(0, d.at - o.now()),
        );
        deadline.unref();
      }
    });
  }

  #timedOut(timer: AttemptTimer, ctx: RequestContext): HostmeshError {
    this.#o.events.timeout(timer.expired === 'attempt' ? 'attempt' : ctx.deadline?.source === 'header' ? 'deadline' : 'total', ctx.service ?? '-');
    return timer.error();
  }

  #upstreamError(a: { code: string; err: Error; delivered: boolean }, endpoint: Endpoint, service: string): HostmeshError {
    if (a.code === 'UND_ERR_CONNECT_TIMEOUT') {
      this.#o.events.timeout('connect', service);
      return new HostmeshError('TIMEOUT', `timed out connecting to ${endpointKey(endpoint)}`, { cause: a.err });
    }
    if (a.delivered) {
      return new HostmeshError('UPSTREAM_ERROR', `stream to ${endpointKey(endpoint)} failed after the request was sent: ${a.err.message}`, { cause: a.err });
    }
    return new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${a.err.message}`, { cause: a.err });
  }
}

/** The upstream request head: the pseudo-header fields, the router's fields, the grpc-timeout left. */
function upstreamHeaders(x: H2Exchange, plan: RoutePlan, endpoint: Endpoint, remainingMs: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': plan.method,
    ':scheme': plan.tls ? 'https' : 'http',
    ':path': plan.target,
    ':authority': headerValue(plan.headers.host as string | undefined) ?? endpointKey(endpoint),
  };
  for (const [k, v] of Object.entries(plan.headers)) {
    if (v === undefined || CONNECTION_FIELDS.has(k) || k.startsWith(':')) continue;
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
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':') || CONNECTION_FIELDS.has(k) || k === REQUEUE_HEADER || k === DRAINING_HEADER) continue;
    out[k] = v;
  }
  if (cls !== undefined) out[SUCCESS_CLASS_HEADER] = successClass(cls);
  stream.respond(out, options);
}

function relayedTrailers(t: IncomingHttpHeaders | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (t === undefined) return out;
  for (const [k, v] of Object.entries(t)) if (v !== undefined && !k.startsWith(':') && !CONNECTION_FIELDS.has(k)) out[k] = v;
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
