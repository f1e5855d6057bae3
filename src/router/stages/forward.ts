// Stage 5, forward: sends a planned request in as many attempts as it takes (requeues, retries,
// deadlines) through the endpoint stage, and relays the final answer with its success class.

import { EventEmitter } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { HostmeshError } from '../../errors.js';
import type { Endpoint } from '../../namer/addr.js';
import { type Classifier, RETRYABLE_HEADER, type ResponseClass, SUCCESS_CLASS_HEADER, successClass } from '../classifier.js';
import type { RequestContext } from '../context.js';
import { AttemptTimer, timerMs } from '../deadline.js';
import { endpointKey, type EndpointPools } from '../endpoint-pool.js';
import type { FailureAccrual } from '../failure-accrual.js';
import { DRAINING_HEADER, type DrainingPeers } from '../draining-peers.js';
import { headerValue, isHopByHop } from '../headers.js';
import { CLOSED_ERRORS, markReason, REQUEUE_HEADER, type RequeueReason, requeueReason } from '../requeue.js';
import { backoffDelays, type Budgets, type RetryPolicy } from '../retries.js';
import { ReplayableBody } from '../retry-body.js';
import type { RoutePlan } from '../route-plan.js';
import type { EndpointStage, Lease } from './endpoint.js';
import type { RouterEvents } from '../events.js';
import { H2Forward } from './forward-h2.js';
import type { H2Sessions } from '../../h2/h2-sessions.js';
import type { H2Classifier } from '../../h2/grpc.js';

/** Which deadline fired (a metric label: this set is closed). */
export type TimeoutKind =
  | 'headers'
  | 'connect'
  | 'response_body_idle'
  | 'request_body_idle'
  // deadline.ts: totalTimeoutMs or l5d-ctx-deadline reached in flight, an attempt's timeout, a deadline past on arrival
  | 'total'
  | 'deadline'
  | 'attempt'
  | 'deadline_passed';

/** What a logical service's requests are retried by (Linkerd 1 service config). */
export interface ServiceParams {
  readonly retries: RetryPolicy;
  readonly classify: Classifier;
  /** Retry budgets of this policy, one per service name. */
  readonly retryBudgets: Budgets;
}

/** What a bound client's attempts are bounded by (Linkerd 1 client config). */
export interface ClientParams {
  readonly requestAttemptTimeoutMs: number | undefined;
  /** Requeue budgets of this policy, one per client id. */
  readonly requeueBudgets: Budgets;
  /** The pools a per-prefix client (io.l5d.static TLS or pool limits) connects through; unset: the endpoint stage's. */
  readonly pools?: EndpointPools | undefined;
  /** Its failure accrual state (a per-prefix failureAccrual); unset: the endpoint stage's. */
  readonly accrual?: FailureAccrual | undefined;
}

export interface ForwardOptions {
  readonly endpoints: EndpointStage;
  readonly now: () => number;
  /** Where a peer router's draining mark is kept (the concrete stage skips those peers). */
  readonly drainingPeers?: DrainingPeers | undefined;
  /** The settings of a service (by logical name) and of a client (by bound id). */
  readonly service: (service: string) => ServiceParams;
  readonly client: (client: string) => ClientParams;
  readonly random?: (() => number) | undefined;
  /** Waits between retries (tests make it instant). */
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Timeouts, requeues, retries, exhausted budgets and classes (router/events.ts). */
  readonly events: RouterEvents;
}

export class ForwardStage {
  readonly #o: ForwardOptions;

  constructor(options: ForwardOptions) {
    this.#o = options;
  }

  /**
   * Node hands over a connection's pipelined requests at once; their responses leave in order
   * anyway, so they are forwarded one at a time: one connection is one stream of requests and
   * cannot fill an endpoint's queue (1,000 pipelined requests would otherwise be 1,000 waiters).
   */
  async forward(req: IncomingMessage, res: ServerResponse, plan: RoutePlan, ctx: RequestContext): Promise<void> {
    const socket = req.socket;
    const line = pipelines.get(socket);
    if (line === undefined) pipelines.set(socket, []);
    else await new Promise<void>((resolve) => line.push(resolve));
    try {
      await this.#send(req, res, plan, ctx);
    } finally {
      const next = pipelines.get(socket)?.shift();
      if (next !== undefined) next();
      else pipelines.delete(socket);
    }
  }

  /**
   * One request, in as many attempts as it takes, each through its endpoint's admission and
   * deadlines. A request no app received (the connection was refused, or a peer router marked its
   * answer with REQUEUE_HEADER) is requeued on another endpoint within the client's requeue budget,
   * at once (Linkerd 1 requeues); a response the classifier calls retryable is retried within the
   * service's retry budget after backoff. A body is sent again only while it fits the retry
   * buffer. The last answer is relayed, with its class in l5d-success-class.
   */
  async #send(req: IncomingMessage, res: ServerResponse, plan: RoutePlan, ctx: RequestContext): Promise<void> {
    if (res.destroyed) return; // the client left while its earlier pipelined requests ran
    const o = this.#o;
    const cli = o.client(plan.name.id.show());
    const pools = cli.pools ?? o.endpoints.pools;
    const limits = pools.limits;
    // TLS: the name to send (SNI) is the client's commonName. undici would take the Host header,
    // and reconnect each time the next request's Host differs.
    const servername = pools.tlsOptions?.servername;
    // undici takes an EventEmitter as the abort signal: far cheaper per request than an
    // AbortController, whose signal machinery showed in the profile.
    const abort = new EventEmitter();
    const onClose = (): void => {
      if (!res.writableFinished) abort.emit('abort');
    };
    res.once('close', onClose);
    const method = plan.method;
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    const chunked = hasBody && req.headers['content-length'] === undefined;
    // The fair-share key: on the outbound side the client's address is the pod; on the inbound
    // side every request comes from a peer router, so only the per-service share applies there.
    const source = ctx.direction === 'inbound' ? undefined : req.socket.remoteAddress;
    const service = plan.service.show();
    const client = plan.name.id.show();
    const svc = o.service(service);
    const policy = svc.retries;
    const classify = svc.classify;
    const body = hasBody ? new ReplayableBody(req, policy.requestBufferBytes) : undefined;
    const retryBudget = svc.retryBudgets.get(service);
    // An app's answer is retried at one hop only, the outgoing router's (retryHop): an inbound
    // router relays it as the app gave it, l5d-retryable included, for the outgoing one to decide.
    const retriesHere = retryHop(ctx);
    const requeueBudget = cli.requeueBudgets.get(client);
    // Each attempt's own abort signal, fired at its timeout or the request's deadline (deadline.ts).
    const timer = new AttemptTimer({ now: o.now, deadline: ctx.deadline, attemptTimeoutMs: cli.requestAttemptTimeoutMs, abort });
    retryBudget.deposit();
    requeueBudget.deposit();
    const tried = new Set<string>();
    let delays: (() => number) | undefined;
    let retries = 0;
    let endpoint = plan.endpoint;
    let stopWatch: (() => void) | undefined;
    let bodyStalled = false;
    const canResend = (): boolean => !res.destroyed && (body === undefined || body.replayable);
    /** The endpoint to requeue on, when the body can be sent again, one is left and the budget allows. */
    const requeue = (reason: RequeueReason): Endpoint | undefined => {
      if (!canResend()) return undefined;
      const next = plan.another(tried);
      if (next === undefined) return undefined;
      if (!requeueBudget.tryWithdraw()) {
        o.events.budgetExhausted('requeue', service);
        return undefined;
      }
      o.events.requeue(reason, service);
      return next;
    };
    /** Whether a retryable answer may be retried: attempts left, a body that can be resent, the budget. */
    const retry = (): boolean => {
      if (!retriesHere || retries >= policy.maxRetriesPerRequest || !canResend()) return false;
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
          timer.expired = 'deadline'; // spent in backoff or earlier attempts
          throw this.#timedOut(timer, ctx);
        }
        const signal = timer.start();
        tried.add(endpointKey(endpoint));
        // Failure accrual sees every attempt's outcome; a probe without one lets another go.
        const lease: Lease = o.endpoints.lease(endpoint, client, source, service, pools, cli.accrual);
        let upstream: Dispatcher.ResponseData;
        try {
          await lease.admit(signal);
          if (res.destroyed) {
            lease.release();
            return; // the client left while waiting
          }
          if (hasBody && stopWatch === undefined && !req.readableEnded) {
            stopWatch = watchRequestBody(req, limits.requestBodyIdleTimeoutMs, () => {
              bodyStalled = true;
              o.events.timeout('request_body_idle', service);
              abort.emit('abort');
            });
          }
          const started = performance.now();
          upstream = await lease.entry.pool.request({
            method: method as 'GET',
            path: plan.target,
            headers: plan.headers as Record<string, string | string[]>,
            body: body === undefined ? null : body.attempt(),
            signal,
            ...(servername !== undefined ? ({ servername } as object) : {}),
          });
          timer.stop(); // the deadline bounds the wait for an answer; its body has its own idle deadline
          pools.observe(lease.entry, performance.now() - started);
        } catch (err) {
          lease.release();
          timer.stop();
          if (timer.expired !== undefined) {
            if (timer.expired === 'attempt') lease.record(false); // the endpoint did not answer in time
            const timedOut = this.#timedOut(timer, ctx);
            // A timed-out attempt is retried as the classifier would retry a 503 to this request.
            if (timer.expired === 'attempt' && classify({ method, chunked }, 503, {}) === 'retryable' && retry()) {
              endpoint = plan.another(new Set()) ?? endpoint;
              continue;
            }
            throw timedOut;
          }
          if (err instanceof HostmeshError) throw err;
          if (bodyStalled) {
            // The rest of the body will not be read: the connection cannot carry another request.
            res.setHeader('connection', 'close');
            throw new HostmeshError('REQUEST_TIMEOUT', `request body made no progress for ${limits.requestBodyIdleTimeoutMs} ms`, { cause: err });
          }
          const code = (err as { code?: string }).code ?? '';
          if (code !== 'UND_ERR_ABORTED' && !res.destroyed) lease.record(false);
          const reason = requeueReason(code, method);
          const next = reason === undefined ? undefined : requeue(reason);
          if (next !== undefined) {
            endpoint = next;
            continue;
          }
          throw this.#upstreamError(err, code, endpoint, service);
        }
        try {
          // Only a peer router's mark counts (the endpoint is a router, reached over mTLS); a
          // router drops the header from every answer it relays, so an app cannot forge it.
          const mark = plan.tls ? headerValue(upstream.headers[REQUEUE_HEADER]) : undefined;
          // A peer router about to drain says so on its answers (the same trust as the requeue
          // mark); any unmarked answer from it ends an earlier mark (it restarted).
          if (plan.tls && o.drainingPeers !== undefined) {
            if (upstream.headers[DRAINING_HEADER] !== undefined) o.drainingPeers.mark(lease.entry.key);
            else if (o.drainingPeers.size > 0) o.drainingPeers.clear(lease.entry.key);
          }
          if (mark !== undefined) {
            lease.record(false); // the node could not serve this client's requests
            const next = requeue(markReason(mark));
            if (next !== undefined) {
              await discard(upstream);
              endpoint = next;
              continue;
            }
          }
          const cls = classify({ method, chunked }, upstream.statusCode, upstream.headers);
          if (mark === undefined) lease.record(cls === 'success');
          if (cls === 'retryable' && retry()) {
            await discard(upstream);
            lease.release();
            delays ??= backoffDelays(policy.backoff, o.random);
            const ms = delays();
            if (ms > 0) await (o.sleep ?? sleep)(Math.min(ms, Math.max(0, timer.remaining())));
            if (res.destroyed) return;
            // A retry goes through the balancer again (Linkerd 1 retries above the balancer).
            endpoint = plan.another(new Set()) ?? endpoint;
            continue;
          }
          o.events.classified(service, cls);
          body?.settle(); // this answer is final: nothing is resent, so nothing need be kept
          relayHead(res, upstream, cls, retriesHere);
          await this.#relayBody(res, upstream, service);
          return;
        } finally {
          lease.release();
        }
      }
    } finally {
      timer.stop();
      stopWatch?.();
      res.off('close', onClose);
    }
  }

  /**
   * The attempts of an Upgrade to open its tunnel, under the same deadline, attempt timeout,
   * failure accrual and requeue budget as a request's (tunnels.ts carries them out).
   */
  upgrade(plan: RoutePlan, ctx: RequestContext): UpgradeAttempts {
    return new UpgradeAttempts(this.#o, plan, ctx, (timer) => this.#timedOut(timer, ctx));
  }

  /** The HTTP/2 way to carry out plans (forward-h2.ts): the same endpoints, budgets and settings as this stage's. */
  h2(sessions: H2Sessions, classify: H2Classifier): H2Forward {
    return new H2Forward(this.#o, sessions, classify);
  }

  /** Counts a fired deadline by whose it was and makes its 503 TIMEOUT (deadline.ts). */
  #timedOut(timer: AttemptTimer, ctx: RequestContext): HostmeshError {
    this.#o.events.timeout(timer.expired === 'attempt' ? 'attempt' : ctx.deadline?.source === 'header' ? 'deadline' : 'total', ctx.service ?? '-');
    return timer.error();
  }

  /** The catalog error for a failed upstream request (no response arrived). */
  #upstreamError(err: unknown, code: string, endpoint: Endpoint, service: string): HostmeshError {
    const limits = this.#o.endpoints.pools.limits;
    if (code === 'UND_ERR_HEADERS_TIMEOUT') {
      this.#o.events.timeout('headers', service);
      return new HostmeshError('TIMEOUT', `${endpointKey(endpoint)} did not answer within ${limits.headersTimeoutMs} ms (headers timeout)`, { cause: err });
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      this.#o.events.timeout('connect', service);
      return new HostmeshError('TIMEOUT', `timed out connecting to ${endpointKey(endpoint)}`, { cause: err });
    }
    if (CLOSED_ERRORS.has(code)) {
      return new HostmeshError('UPSTREAM_ERROR', `connection to ${endpointKey(endpoint)} failed after the request was sent: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${(err as Error).message}`, { cause: err });
  }

  async #relayBody(res: ServerResponse, upstream: Dispatcher.ResponseData, service: string): Promise<void> {
    try {
      await relay(upstream.body, res);
      const trailers = upstream.trailers;
      if (trailers !== undefined && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
      res.end();
    } catch (err) {
      // The client went away, or the upstream died or went idle mid-body: cut the response
      // (a closed connection, never a response that looks complete).
      if ((err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') this.#o.events.timeout('response_body_idle', service);
      upstream.body.destroy();
      res.destroy();
    }
  }
}

/**
 * One Upgrade's way to its tunnel. Each attempt holds a lease on its endpoint (counted in the
 * balancer's load, with failure accrual's probe) until the endpoint answers; it takes no admission
 * slot, since a tunnel may stay open for hours and the pool's slots bound requests in flight. A
 * refused connection reached no app, so it is requeued on another endpoint within the client's
 * requeue budget; the request's deadline and the attempt timeout bound the wait for the answer.
 */
export class UpgradeAttempts {
  readonly #o: ForwardOptions;
  readonly #plan: RoutePlan;
  readonly #tried = new Set<string>();
  readonly #timer: AttemptTimer;
  readonly #timedOut: (timer: AttemptTimer) => HostmeshError;
  readonly #requeueBudget: ReturnType<Budgets['get']>;
  readonly #client: ClientParams;
  #lease: Lease | undefined;

  constructor(o: ForwardOptions, plan: RoutePlan, ctx: RequestContext, timedOut: (timer: AttemptTimer) => HostmeshError) {
    this.#o = o;
    this.#plan = plan;
    this.#timedOut = timedOut;
    const cli = o.client(plan.name.id.show());
    this.#client = cli;
    this.#timer = new AttemptTimer({ now: o.now, deadline: ctx.deadline, attemptTimeoutMs: cli.requestAttemptTimeoutMs, abort: new EventEmitter() });
    this.#requeueBudget = cli.requeueBudgets.get(plan.name.id.show());
    this.#requeueBudget.deposit();
  }

  /**
   * Starts an attempt on `endpoint`; `onExpired` is called with the 503 to answer if the deadline
   * or the attempt timeout passes before the endpoint answers (the caller cancels the attempt).
   */
  begin(endpoint: Endpoint, onExpired: (err: HostmeshError) => void): void {
    this.#tried.add(endpointKey(endpoint));
    // The client's own pools and accrual state (a per-prefix client's, else the router's).
    const cli = this.#client;
    this.#lease = this.#o.endpoints.lease(
      endpoint,
      this.#plan.name.id.show(),
      undefined,
      this.#plan.service.show(),
      cli.pools ?? this.#o.endpoints.pools,
      cli.accrual,
    );
    if (this.#timer.bounded) {
      this.#timer.start().once('abort', () => {
        if (this.#timer.expired === 'attempt') this.#lease?.record(false);
        this.#end();
        onExpired(this.#timedOut(this.#timer));
      });
    }
  }

  /** The endpoint answered (101, or an answer relayed as is): `ok` unless it was a 5xx. */
  answered(ok: boolean): void {
    this.#lease?.record(ok);
    this.#end();
  }

  /** The attempt failed before any answer; returns the endpoint to requeue on, if one is allowed. */
  failed(code: string): Endpoint | undefined {
    this.#lease?.record(false);
    this.#end();
    if (requeueReason(code, 'GET') !== 'connect_failed') return undefined;
    const next = this.#plan.another(this.#tried);
    if (next === undefined) return undefined;
    if (!this.#requeueBudget.tryWithdraw()) {
      this.#o.events.budgetExhausted('requeue');
      return undefined;
    }
    this.#o.events.requeue('connect_failed');
    return next;
  }

  /** The client left, or the attempt ended otherwise: give back what the attempt held. */
  abandon(): void {
    this.#end();
  }

  #end(): void {
    this.#timer.stop();
    this.#lease?.release();
    this.#lease = undefined;
  }
}

/** Per connection: resolvers of its pipelined requests waiting for the one in progress. */
const pipelines = new WeakMap<object, (() => void)[]>();

/**
 * Whether this router retries an app's answer (and an attempt that timed out, which the app may
 * have received): the outgoing router does, an inbound one never. Across the two hops of the
 * DaemonSet topology a request then reaches an app at most 1 + the outgoing router's
 * maxRetriesPerRequest times (before: up to 11 x 11). The outgoing router is where the service's
 * config lives, and its retry goes through its balancer again, so it can reach another node's
 * pod; the inbound router only knows its own node's. Requeues (no app reached) stay at both
 * hops. The rule is the listener's direction, not a header: nothing a pod sends changes it.
 */
export function retryHop(ctx: RequestContext): boolean {
  return ctx.direction !== 'inbound';
}

/**
 * The response head: end-to-end fields, minus the router's requeue and draining marks, plus the
 * success class. The hop that retries drops the app's l5d-retryable from what it relays: its
 * retries are spent or refused, so nothing past it (a pod's own retrying client) retries again.
 */
function relayHead(res: ServerResponse, upstream: Dispatcher.ResponseData, cls: ResponseClass, retried: boolean): void {
  const outHeaders: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (v !== undefined && !isHopByHop(k) && k !== REQUEUE_HEADER && k !== DRAINING_HEADER && !(retried && k === RETRYABLE_HEADER)) outHeaders[k] = v;
  }
  outHeaders[SUCCESS_CLASS_HEADER] = successClass(cls);
  const trailerNames = headerValue(upstream.headers['trailer']);
  if (trailerNames !== undefined) outHeaders['trailer'] = trailerNames; // announced trailers follow the body
  res.writeHead(upstream.statusCode, outHeaders);
}

/** Reads and drops an answer that will not be relayed (a requeued or retried attempt's). */
async function discard(upstream: Dispatcher.ResponseData): Promise<void> {
  await upstream.body.dump().catch(() => undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, timerMs(ms)).unref());
}

/**
 * Calls `onIdle` once if the request body makes no progress for `idleMs` (detected within one
 * to two periods). Progress is read from the socket's byte count rather than a 'data' listener,
 * which would switch the body to flowing mode under undici's feet. A body held back by the
 * upstream's back-pressure (paused, or bytes buffered unread) is not the client's stall.
 */
function watchRequestBody(req: IncomingMessage, idleMs: number, onIdle: () => void): () => void {
  let seen = req.socket.bytesRead;
  const timer = setInterval(() => {
    const now = req.socket.bytesRead;
    if (req.readableEnded || now !== seen || req.readableFlowing === false || req.readableLength > 0) {
      seen = now;
      if (req.readableEnded) clearInterval(timer);
      return;
    }
    clearInterval(timer);
    onIdle();
  }, idleMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Streams a response body into `res` (back-pressure by pipe) without ending it, so trailers can
 * follow. Resolves at the body's end; rejects if the upstream fails or the client goes away.
 * (stream.pipeline would do, but it allocates an AbortController per call and aborts it on
 * completion, which builds a DOMException with a stack trace: ~7% of a router's CPU, profiled.)
 */
function relay(body: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      body.off('end', onEnd);
      body.off('error', onError);
      res.off('close', onClose);
      if (err === undefined) resolve();
      else {
        body.unpipe(res);
        reject(err);
      }
    };
    const onEnd = (): void => done();
    const onError = (err: Error): void => done(err);
    const onClose = (): void => {
      if (!res.writableFinished) done(new Error('client closed the connection'));
    };
    body.once('end', onEnd);
    body.once('error', onError);
    res.once('close', onClose);
    body.pipe(res, { end: false });
  });
}
