// Stage 5, forward: sends a planned request in as many attempts as it takes (requeues, retries,
// deadlines) through the endpoint stage, and relays the final answer with its success class.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { AbortEvent, type AbortEvents } from '../../../core/abort.js';
import type { DispatchOptionsWithTrailers } from '../../../core/h1-pool.js';
import { type Cancel, type Clock, every } from '../../../core/clock.js';
import { HostmeshError } from '../../../errors.js';
import type { H2Sessions } from '../../../h2/h2-sessions.js';
import type { Endpoint } from '../../../namer/addr.js';
import { RETRYABLE_HEADER, type ResponseClass, SUCCESS_CLASS_HEADER, successClass } from './classifier.js';
import type { RequestContext } from '../../context.js';
import { DRAINING_HEADER } from '../concrete/draining-peers.js';
import { endpointKey } from '../endpoint/endpoint-pool.js';
import { connectionTokens, isHopByHop } from '../../headers.js';
import { CLOSED_ERRORS, REQUEUE_HEADER, requeueReason } from './requeue.js';
import { outgoingTrailers } from './outgoing-headers.js';
import { ReplayableBody } from './retry-body.js';
import type { RoutePlan } from '../../route-plan.js';
import { type Attempt, type Exchange, type Failed, type ForwardOptions, forwardAttempts, retryHop, type Scope, scopeOf } from './attempts.js';
import type { Lease } from '../endpoint/endpoint.js';
import { H2Forward } from './forward-h2.js';
import { forwardUpgrade, type UpgradeRequest } from './forward-upgrade.js';
import { headersOf, UpstreamAnswer } from './upstream-answer.js';

export { type ClientParams, type ForwardOptions, retryHop, type ServiceParams, type TimeoutKind } from './attempts.js';

export class ForwardStage {
  readonly #o: ForwardOptions;

  constructor(options: ForwardOptions) {
    this.#o = options;
  }

  /**
   * One request over HTTP/1, through the attempt loop (attempts.ts: requeues, retries, deadlines,
   * leases), the request's side of it being an Http1Exchange (below). The last answer is relayed,
   * with its class in l5d-success-class. A connection's pipelined requests come here one at a time:
   * the listener routes the next when this one's answer is done (server/pipeline.ts), so one
   * connection cannot fill an endpoint's queue.
   */
  forward(req: IncomingMessage, res: ServerResponse, plan: RoutePlan, ctx: RequestContext): Promise<void> {
    if (res.destroyed) return Promise.resolve(); // the client left while its earlier pipelined requests ran
    const scope = scopeOf(this.#o, plan);
    const exchange = new Http1Exchange(this.#o, req, res, plan, ctx, scope);
    res.on('close', exchange.onClose); // removed by exchange.done(); a response closes once
    return forwardAttempts(this.#o, plan, ctx, scope, exchange.abort, exchange);
  }

  /**
   * An Upgrade over the same pools, leases, deadlines and requeues as a request (forward-upgrade.ts):
   * resolves once the tunnel is open or the endpoint's answer is relayed; throws when no answer came.
   */
  upgrade(u: UpgradeRequest, plan: RoutePlan, ctx: RequestContext): Promise<void> {
    return forwardUpgrade(this.#o, u, plan, ctx);
  }

  /** The HTTP/2 way to carry out plans (forward-h2.ts): the same endpoints, budgets and settings as this stage's. */
  h2(sessions: H2Sessions): H2Forward {
    return new H2Forward(this.#o, sessions);
  }
}

/**
 * One HTTP/1 request's side of the attempt loop (attempts.ts): each attempt is one undici dispatch
 * on the endpoint's pool (upstream-answer.ts: the answer's body goes straight into the response);
 * a body is sent again only while it fits the retry buffer. One object per request, its state in
 * fields: the loop calls its methods, so no closures are made per request.
 */
class Http1Exchange implements Exchange<UpstreamAnswer, void> {
  /** The fair-share key: on the outbound side the client's address is the pod; on the inbound side every request comes from a peer router, so only the per-service share applies there. */
  readonly source: string | undefined;
  readonly admitted = true;
  readonly retries = true;
  readonly reportsClass = true;
  /**
   * The request's own abort signal (the client left, or its body stalled): core/abort.ts, far
   * cheaper per request than an AbortController or an EventEmitter, both of which showed in the profiles.
   */
  readonly abort = new AbortEvent();
  readonly #o: ForwardOptions;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #plan: RoutePlan;
  readonly #scope: Scope;
  readonly #hasBody: boolean;
  readonly #chunked: boolean;
  readonly #body: ReplayableBody | undefined;
  readonly #retriesHere: boolean;
  #stopWatch: (() => void) | undefined;
  #bodyStalled = false;

  constructor(o: ForwardOptions, req: IncomingMessage, res: ServerResponse, plan: RoutePlan, ctx: RequestContext, scope: Scope) {
    this.#o = o;
    this.#req = req;
    this.#res = res;
    this.#plan = plan;
    this.#scope = scope;
    this.source = ctx.direction === 'inbound' ? undefined : req.socket.remoteAddress;
    const h = req.headers;
    this.#hasBody = h['transfer-encoding'] !== undefined || (h['content-length'] ?? '0') !== '0';
    this.#chunked = this.#hasBody && h['content-length'] === undefined;
    this.#body = this.#hasBody ? new ReplayableBody(req, scope.svc.retries.requestBufferBytes) : undefined;
    this.#retriesHere = retryHop(ctx);
  }

  /** The client's response closed: a request still being answered is aborted. */
  readonly onClose = (): void => {
    if (!this.#res.writableFinished) this.abort.emit('abort');
  };

  replayable(): boolean {
    return this.#body === undefined || this.#body.replayable;
  }

  gone(): boolean {
    return this.#res.destroyed;
  }

  left(): void {}

  timeoutRetryable(): boolean {
    return this.#scope.svc.classify({ method: this.#plan.method, chunked: this.#chunked }, 503, {}) === 'retryable';
  }

  async send(_endpoint: Endpoint, lease: Lease, signal: AbortEvents): Promise<Attempt<UpstreamAnswer>> {
    const req = this.#req;
    const plan = this.#plan;
    const { pools, service } = this.#scope;
    const limits = pools.limits;
    if (this.#hasBody && this.#stopWatch === undefined && !req.readableEnded) {
      this.#stopWatch = watchRequestBody(req, limits.requestBodyIdleTimeoutMs, this.#o.clock, () => {
        this.#bodyStalled = true;
        this.#o.events.timeout('request_body_idle', service);
        this.abort.emit('abort');
      });
    }
    const started = performance.now();
    const answer = new UpstreamAnswer(this.#res, signal);
    try {
      const opts: DispatchOptionsWithTrailers & { servername?: string } = {
        method: plan.method as Dispatcher.HttpMethod,
        path: plan.target,
        headers: plan.headers as Record<string, string | string[]>,
        body: this.#body === undefined ? null : this.#body.attempt(),
      };
      // A chunked body's trailers go on with it (the lean client; undici's Pool sends none).
      if (this.#chunked) opts.trailers = () => outgoingTrailers(req.rawTrailers);
      // TLS: the name to send (SNI) is the client's commonName. undici would take the Host header,
      // and reconnect each time the next request's Host differs.
      const servername = pools.tlsOptions?.servername;
      if (servername !== undefined) opts.servername = servername;
      await answer.dispatch(lease.entry.pool, opts);
    } catch (err) {
      if (err instanceof HostmeshError) throw err;
      if (this.#bodyStalled) {
        // The rest of the body will not be read: the connection cannot carry another request.
        this.#res.setHeader('connection', 'close');
        throw new HostmeshError('REQUEST_TIMEOUT', `request body made no progress for ${limits.requestBodyIdleTimeoutMs} ms`, { cause: err });
      }
      const code = (err as { code?: string }).code ?? '';
      return { kind: 'failed', code, err: err as Error, requeue: requeueReason(code, plan.method) };
    }
    const failed = answer.failure;
    if (failed !== undefined) {
      // The head came with a body already known to be bad: nothing was relayed, so the client gets a 502, not a cut.
      const code = (failed as { code?: string }).code ?? '';
      return { kind: 'failed', code, err: failed, requeue: requeueReason(code, plan.method) };
    }
    pools.observe(lease.entry, performance.now() - started);
    const cls = this.#scope.svc.classify({ method: plan.method, chunked: this.#chunked }, answer.status, answer.headers);
    return { kind: 'answer', answer, head: answer.headers, cls };
  }

  discard(answer: UpstreamAnswer): Promise<void> {
    return answer.discard();
  }

  relay(answer: UpstreamAnswer, cls: ResponseClass | undefined): Promise<void> {
    this.#body?.settle(); // this answer is final: nothing is resent, so nothing need be kept
    relayHead(this.#res, answer, cls as ResponseClass, this.#retriesHere);
    return answer.relay((err) => {
      if ((err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') this.#o.events.timeout('response_body_idle', this.#scope.service);
    });
  }

  failure(f: Failed, endpoint: Endpoint): HostmeshError {
    return upstreamError(this.#o, f.err, f.code, endpoint, this.#scope.service);
  }

  /** The request is done: its body's idle watch stops, and the response's close no longer aborts it. */
  done(): void {
    this.#stopWatch?.();
    this.#res.off('close', this.onClose);
  }
}

/** The catalog error for a failed upstream request (no response arrived). */
function upstreamError(o: ForwardOptions, err: unknown, code: string, endpoint: Endpoint, service: string): HostmeshError {
  const limits = o.endpoints.pools.limits;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    o.events.timeout('headers', service);
    return new HostmeshError('TIMEOUT', `${endpointKey(endpoint)} did not answer within ${limits.headersTimeoutMs} ms (headers timeout)`, { cause: err });
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    o.events.timeout('connect', service);
    return new HostmeshError('TIMEOUT', `timed out connecting to ${endpointKey(endpoint)}`, { cause: err });
  }
  if (code.startsWith('HPE_')) {
    // llhttp refused the answer: the request was sent and answered, badly (no one to requeue to).
    return new HostmeshError(
      'UPSTREAM_ERROR',
      `${endpointKey(endpoint)} sent a malformed answer: ${(err as { reason?: string }).reason ?? (err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (CLOSED_ERRORS.has(code)) {
    return new HostmeshError('UPSTREAM_ERROR', `connection to ${endpointKey(endpoint)} failed after the request was sent: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${(err as Error).message}`, { cause: err });
}

/**
 * The response head: end-to-end fields, minus the router's requeue and draining marks, plus the
 * success class. The hop that retries drops the app's l5d-retryable from what it relays: its
 * retries are spent or refused, so nothing past it (a pod's own retrying client) retries again.
 * Made from the answer's raw fields as one flat [name, value, ...] list, in their order, with
 * lowercase names: no object per answer (the server validates every field as it writes the head).
 */
function relayHead(res: ServerResponse, upstream: UpstreamAnswer, cls: ResponseClass, retried: boolean): void {
  const raw = upstream.raw;
  const out: string[] = [];
  // Fields the answer's Connection names are hop-by-hop too (RFC 9110 7.6.1): read first, as
  // Connection may come after them. The class is this hop's (an answer through a peer router
  // carries that router's: set below, never both).
  let named: ReadonlySet<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = latin1(raw[i] as Buffer | string).toLowerCase();
    const value = latin1(raw[i + 1] as Buffer | string);
    if (name === 'trailer') {
      out.push(name, value); // announced trailers follow the body
      continue;
    }
    if (isHopByHop(name)) {
      if (name === 'connection') named = named === undefined || named.size === 0 ? connectionTokens(value) : unionTokens(named, value);
      continue;
    }
    if (name === SUCCESS_CLASS_HEADER || name === REQUEUE_HEADER || name === DRAINING_HEADER || (retried && name === RETRYABLE_HEADER)) continue;
    out.push(name, value);
  }
  if (named !== undefined && named.size > 0) {
    let w = 0;
    for (let r = 0; r < out.length; r += 2) {
      if (named.has(out[r] as string)) continue;
      out[w++] = out[r] as string;
      out[w++] = out[r + 1] as string;
    }
    out.length = w;
  }
  out.push(SUCCESS_CLASS_HEADER, successClass(cls));
  // Fields already stored on the response (a draining router's marks): Node's own server would
  // store a list's fields one setHeader at a time, keeping only the last of a repeated name.
  if (res.getHeaderNames().length > 0) res.writeHead(upstream.status, headersOf(out) as OutgoingHttpHeaders);
  else res.writeHead(upstream.status, out);
}

function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

function unionTokens(had: ReadonlySet<string>, value: string): ReadonlySet<string> {
  const more = new Set(had);
  for (const t of connectionTokens(value)) more.add(t);
  return more;
}

/**
 * Calls `onIdle` once if the request body makes no progress for `idleMs` (detected within one
 * to two periods, on the router's clock). Progress is read from the socket's byte count rather
 * than a 'data' listener, which would switch the body to flowing mode under undici's feet. A body
 * held back by the upstream's back-pressure (paused, or bytes buffered unread) is not the client's stall.
 */
function watchRequestBody(req: IncomingMessage, idleMs: number, clock: Clock, onIdle: () => void): Cancel {
  let seen = req.socket.bytesRead;
  const stop = every(clock, idleMs, () => {
    const now = req.socket.bytesRead;
    if (req.readableEnded || now !== seen || req.readableFlowing === false || req.readableLength > 0) {
      seen = now;
      if (req.readableEnded) stop();
      return;
    }
    stop();
    onIdle();
  });
  return stop;
}
