// One router (Linkerd 1's `routers[]` entry): identify -> bind through the dtab (cached, live) ->
// pick a union member and an endpoint (transformers, p2c) -> forward through a keep-alive pool.

import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { Dispatcher } from 'undici';
import type { Dtab } from '../dtab/dtab.js';
import type { NameTree } from '../dtab/name-tree.js';
import type { Path } from '../dtab/path.js';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BoundName, Endpoint, Lookup } from '../namer/addr.js';
import type { Binding, NameInterpreter } from '../namer/interpreter.js';
import type { Var } from '../namer/var.js';
import { pickP2C, pickWeighted, skipDead } from './balancer.js';
import { accrualKey, DEFAULT_ACCRUAL, FailureAccrual, type AccrualConfig } from './failure-accrual.js';
import { endpointKey, type EndpointPools } from './endpoint-pool.js';
import { ShedError, type ShedReason } from './admission.js';
import { appendVia, endToEnd, headerValue, isCredentialLike, isHopByHop, viaHops } from './headers.js';
import { normalizeTarget } from './identify.js';
import { buildIdentifiers, type RequestFacts } from './identifiers.js';
import { parsePath } from '../dtab/parse.js';
import { HeaderDtabs } from './header-dtabs.js';
import type { EndpointTransform } from './transformers.js';
import { CLAIM_HEADER } from '../identity/workload-identity.js';
import type { Authorize } from './authorize.js';
import { classifier as buildClassifier, RETRYABLE_HEADER, successClass, SUCCESS_CLASS_HEADER, type Classifier, type ResponseClass } from './classifier.js';
import { Budgets, backoffDelays, DEFAULT_BUDGET, DEFAULT_RETRY_POLICY, MAX_BUDGETS, type BudgetConfig, type RetryPolicy } from './retries.js';
import { ReplayableBody } from './retry-body.js';
import { withDelegationPath } from './explain-failure.js';
import { AttemptTimer, DEADLINE_HEADER, effectiveDeadline, expiredError, formatDeadline, type RequestDeadline } from './deadline.js';

export interface RouterOptions {
  readonly label: string;
  /** The router's own dtab; a Var so a reloaded dtabFile applies to new requests. */
  readonly dtab: Var<Dtab>;
  readonly interpreter: NameInterpreter;
  readonly transforms: readonly EndpointTransform[];
  readonly pools: EndpointPools;
  readonly logger: Logger;
  readonly maxHops: number;
  readonly bindingTimeoutMs?: number;
  readonly random?: () => number;
  /** The router's identifiers (default: Host -> /svc/<host>). */
  readonly identify?: (req: RequestFacts) => { name: Path; target: string };
  /** How to choose among endpoints (default p2c least-loaded). */
  readonly balancer?: 'p2c' | 'ewma' | 'roundRobin';
  /** Called for each request that carries a dtab override (metrics). */
  readonly onOverride?: () => void;
  /** Most nodes of one delegation tree (the interpreter's default when unset). */
  readonly bindingBudget?: number;
  /** A request's binding was over the budget, through an override or the router's own dtab (metrics). */
  readonly onBudgetExceeded?: (source: 'override' | 'dtab') => void;
  /** A request was shed by an endpoint's admission control (metrics). */
  readonly onShed?: (reason: ShedReason) => void;
  /** An upstream or request-body deadline fired (metrics). */
  readonly onTimeout?: (kind: TimeoutKind) => void;
  /** Caps and idle TTL of the binding cache (Linkerd 1's bindingCache); defaults below. */
  readonly bindingCache?: BindingCacheLimits;
  /** The clock of idle eviction (tests drive it). */
  readonly now?: () => number;
  /** A cached binding was dropped: idle past idleTtl, or the oldest one past a cap (metrics). */
  readonly onBindingEvicted?: (reason: 'idle' | 'capacity') => void;
  /** The authorization stage (authorize.ts), on the final bound name; absent: everything allowed. */
  readonly authorize?: Authorize;
  /** Retries of responses the classifier calls retryable (Linkerd 1 service.retries); default budget 10 s / 10 per s / 20%. */
  readonly retries?: RetryPolicy;
  /** The response classifier (Linkerd 1 service.responseClassifier); default io.l5d.http.nonRetryable5XX. */
  readonly classifier?: Classifier;
  /** The budget of requeues per bound client (Linkerd 1 client.requeueBudget). */
  readonly requeueBudget?: BudgetConfig;
  /** Linkerd 1's service.totalTimeoutMs: the whole request, retries included (unset: unbounded). */
  readonly totalTimeoutMs?: number;
  /** Linkerd 1's client.requestAttemptTimeoutMs: one attempt; a timed-out one may be retried (unset: unbounded). */
  readonly requestAttemptTimeoutMs?: number;
  /** Waits between retries (tests make it instant). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** A request was sent again to another endpoint because nothing had reached an app (metrics). */
  readonly onRequeue?: (reason: RequeueReason) => void;
  /** A retryable response was retried (metrics). */
  readonly onRetry?: (service: string) => void;
  /** A retry or requeue was wanted but its budget was empty (metrics). */
  readonly onBudgetExhausted?: (kind: 'retry' | 'requeue') => void;
  /** A response relayed, by class (metrics). */
  readonly onClassified?: (service: string, cls: ResponseClass) => void;
  /** Failure accrual per bound client and endpoint (Linkerd 1 client.failureAccrual); default 5 consecutive failures. */
  readonly failureAccrual?: AccrualConfig;
  /** An endpoint was marked dead by failure accrual, and how many are dead now (metrics). */
  readonly onAccrualRemoval?: () => void;
  readonly onAccrualDead?: (dead: number) => void;
}

/**
 * The mark an incoming router puts on its own error answer to a peer router when nothing reached
 * an app (no local endpoint, the local pod unreachable, busy, draining): the outgoing router may
 * send the request to another node. Apps cannot set it: a router drops it from every answer it relays.
 */
export const REQUEUE_HEADER = 'l5d-hostmesh-requeue';

/** Why a request was requeued (a metric label: this set is closed). */
export type RequeueReason = 'no_local_endpoint' | 'not_delivered' | 'connect_failed' | 'connection_closed';

// Errors before anything was written: the request reached no one (connect refused, no route, TLS).
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
// The connection closed under the request: it may have been delivered, so only an idempotent
// request is sent again (RFC 9110 9.2.2).
const CLOSED_ERRORS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Bindings kept per router. Each distinct (dtab, path) a request produces is a live binding
 * (namer lookups, watches), so the cache is least-recently-used with two caps: names bound
 * through the router's own dtab (`paths`, Linkerd 1's default 1000) and names bound through a
 * request's l5d-dtab/l5d-ctx-dtab override (`overrides`, smaller: an override is a debugging
 * tool, and its text comes from the request).
 */
export interface BindingCacheLimits {
  readonly paths: number;
  readonly overrides: number;
  readonly idleTtlMs: number;
}

export const DEFAULT_BINDING_CACHE: BindingCacheLimits = { paths: 1000, overrides: 100, idleTtlMs: 600_000 };

/**
 * Who sent a request, as the listener established it (identity/*): on the incoming side from the
 * verified peer certificate and its node-attested workload claim, on the outgoing side from the
 * source address (a pod on this node, the node itself, or an allowed CIDR).
 */
export interface Caller {
  /** Verified: an mTLS peer (incoming) or a pod this node hosts (outgoing). */
  readonly authenticated: boolean;
  /** The identity `l5d-client-id` carries to the app (incoming side). */
  readonly identity?: string;
  /** The calling workload, when known. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
  /** The workload claim the outgoing router sends on to the peer router (identity/workload-identity). */
  readonly claim?: string;
}

/** What the rescue point needs to explain an error. */
export interface RequestContext {
  caller?: Caller;
  service?: string;
  /** The bound id the request went to (metrics' client label). */
  client?: string;
  dtab?: string;
  overrides?: string;
  /** The request's effective deadline (deadline.ts): the caller's l5d-ctx-deadline or totalTimeoutMs. */
  deadline?: RequestDeadline;
}

// The claim header is the router's own: a copy from a pod or an app is never passed on.
// The caller's l5d-ctx-deadline is replaced by the effective one (never later than the caller's).
const DROP = new Set([
  'host',
  'expect',
  'via',
  'l5d-dtab',
  'l5d-ctx-dtab',
  'l5d-client-id',
  'l5d-dst-service',
  'l5d-dst-client',
  'l5d-reqid',
  CLAIM_HEADER,
  DEADLINE_HEADER,
]);

interface CachedBinding {
  readonly binding: Binding;
  lastUsed: number;
}

export class Router {
  readonly label: string;
  readonly #o: RouterOptions;
  /** Least recently used first (a hit moves the entry to the end). */
  readonly #bindings = new Map<string, CachedBinding>();
  readonly #overrideBindings = new Map<string, CachedBinding>();
  readonly #limits: BindingCacheLimits;
  readonly #now: () => number;
  readonly #headerDtabs: HeaderDtabs;
  readonly #sweeper: NodeJS.Timeout;
  readonly #identify: (req: RequestFacts) => { name: Path; target: string };
  readonly #load: (e: Endpoint) => number;
  readonly #retryPolicy: RetryPolicy;
  readonly #classify: Classifier;
  /** Retry budgets by logical service, requeue budgets by bound client (as Linkerd 1 kept them). */
  readonly #retryBudgets: Budgets;
  readonly #requeueBudgets: Budgets;
  readonly #accrual: FailureAccrual;
  #inFlight = 0;
  #rr = 0;

  constructor(options: RouterOptions) {
    this.label = options.label;
    this.#o = options;
    this.#identify = options.identify ?? buildIdentifiers([{ kind: 'io.l5d.header.token', header: 'Host' }], parsePath('/svc'));
    const pools = options.pools;
    this.#load =
      options.balancer === 'ewma'
        ? (e) => pools.cost(e)
        : options.balancer === 'roundRobin'
          ? () => 0 // unused: round robin ignores load
          : (e) => pools.load(e);
    this.#limits = options.bindingCache ?? DEFAULT_BINDING_CACHE;
    this.#headerDtabs = new HeaderDtabs(this.#limits.overrides);
    this.#now = options.now ?? Date.now;
    this.#retryPolicy = options.retries ?? DEFAULT_RETRY_POLICY;
    this.#classify = options.classifier ?? buildClassifier();
    this.#retryBudgets = new Budgets(this.#retryPolicy.budget, MAX_BUDGETS, this.#now);
    this.#requeueBudgets = new Budgets(options.requeueBudget ?? DEFAULT_BUDGET, MAX_BUDGETS, this.#now);
    this.#accrual = new FailureAccrual(options.failureAccrual ?? DEFAULT_ACCRUAL, {
      now: this.#now,
      ...(options.random !== undefined ? { random: options.random } : {}),
      ...(options.onAccrualRemoval !== undefined ? { onRemoved: options.onAccrualRemoval } : {}),
      ...(options.onAccrualDead !== undefined ? { onDeadCount: options.onAccrualDead } : {}),
    });
    this.#sweeper = setInterval(() => this.evictIdle(), Math.min(60_000, Math.max(1000, this.#limits.idleTtlMs)));
    this.#sweeper.unref();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** TLS options of this router's client side (undefined: plaintext to local pods). */
  get tlsOptions(): import('node:tls').ConnectionOptions | undefined {
    return this.#o.pools.tlsOptions;
  }

  get dtab(): Dtab {
    return this.#o.dtab.get();
  }

  /** The budget explanations of this router's names use (undefined: the interpreter's default). */
  get bindingBudget(): number | undefined {
    return this.#o.bindingBudget;
  }

  /** Routes one request. `peerId` is the verified client identity on the incoming side. */
  async handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, peerId: string | undefined): Promise<void> {
    this.#inFlight++;
    try {
      await this.#route(req, res, ctx, peerId);
    } catch (err) {
      markUndelivered(req, res, err);
      throw err;
    } finally {
      this.#inFlight--;
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, peerId: string | undefined): Promise<void> {
    const h = req.headers;
    if (viaHops(h.via) >= this.#o.maxHops) {
      throw HostmeshError.of('PROXY_LOOP', 'hops', { maxHops: this.#o.maxHops });
    }
    // A deadline already past is answered at once: the request is never bound nor forwarded.
    const arrived = this.#now();
    const deadline = effectiveDeadline(arrived, h[DEADLINE_HEADER], this.#o.totalTimeoutMs);
    if (deadline !== undefined && deadline.at <= arrived) {
      this.#o.onTimeout?.('deadline_passed');
      throw expiredError(deadline, arrived);
    }
    ctx.deadline = deadline;
    const method = req.method ?? 'GET';
    const { host, target } = normalizeTarget(req.url ?? '/', h.host);
    if (method === 'TRACE' && headerValue(h['max-forwards'])?.trim() === '0') {
      traceEcho(req, res);
      return;
    }
    const id = this.#identify({ method, host, target, httpVersion: req.httpVersion, header: (n) => headerValue(h[n]) });
    ctx.service = id.name.show();
    const base = this.#o.dtab.get();
    const ctxDtabText = headerValue(h['l5d-ctx-dtab']);
    const localDtabText = headerValue(h['l5d-dtab']);
    const overrides = this.#headerDtabs.parse(ctxDtabText, localDtabText);
    ctx.dtab = base.show();
    ctx.overrides = overrides.text;
    const dtab = overrides.dtab === undefined ? base : base.concat(overrides.dtab);

    const bound = await this.#bind(dtab, id.name, overrides.dtab !== undefined);
    const name = this.#pick(bound, ctx);
    const endpoint = this.#endpoint(name, ctx);
    const another = (exclude: ReadonlySet<string>): Endpoint | undefined => this.#another(name, exclude);
    this.#o.authorize?.(req, ctx, name.id.show(), peerId);

    ctx.client = name.id.show();
    if (overrides.text !== '') this.#o.onOverride?.();
    const out = outgoingHeaders(h, host, id.name.show(), ctx.client, overrides.text, peerId, ctx.caller?.claim);
    if (method === 'TRACE' && out['max-forwards'] !== undefined) {
      out['max-forwards'] = String(Math.max(0, Number(headerValue(h['max-forwards'])) - 1));
    }
    if (deadline !== undefined) out[DEADLINE_HEADER] = formatDeadline(deadline.wire);

    await this.#forward(req, res, endpoint, id.target, out, ctx, another);
  }

  /**
   * Names and binds a request (the part of routing before forwarding), for upgrades and CONNECT:
   * the endpoint to use, the origin-form target and the headers to send.
   */
  async resolve(
    req: IncomingMessage,
    ctx: RequestContext,
    peerId: string | undefined,
  ): Promise<{ endpoint: Endpoint; tls: boolean; target: string; headers: OutgoingHttpHeaders }> {
    const h = req.headers;
    if (viaHops(h.via) >= this.#o.maxHops) {
      throw HostmeshError.of('PROXY_LOOP', 'hops', { maxHops: this.#o.maxHops });
    }
    const { host, target } = normalizeTarget(req.url ?? '/', h.host);
    const id = this.#identify({ method: req.method ?? 'GET', host, target, httpVersion: req.httpVersion, header: (n) => headerValue(h[n]) });
    ctx.service = id.name.show();
    const base = this.#o.dtab.get();
    const overrides = this.#headerDtabs.parse(headerValue(h['l5d-ctx-dtab']), headerValue(h['l5d-dtab']));
    ctx.dtab = base.show();
    ctx.overrides = overrides.text;
    const dtab = overrides.dtab === undefined ? base : base.concat(overrides.dtab);
    const name = this.#pick(await this.#bind(dtab, id.name, overrides.dtab !== undefined), ctx);
    const endpoint = this.#endpoint(name, ctx);
    this.#o.authorize?.(req, ctx, name.id.show(), peerId);
    const out = outgoingHeaders(h, host, id.name.show(), name.id.show(), overrides.text, peerId, ctx.caller?.claim);
    return { endpoint, tls: this.#o.pools.tls, target: id.target, headers: out };
  }

  /** Whether `/svc/<host>` (this router's naming of a Host) binds to at least one endpoint. */
  async binds(host: string): Promise<boolean> {
    try {
      const { name } = this.#identify({ method: 'GET', host, target: '/', httpVersion: '1.1', header: () => undefined });
      const tree = await this.#bind(this.#o.dtab.get(), name);
      this.#endpoint(this.#pick(tree, { service: name.show() }), {});
      return true;
    } catch {
      return false;
    }
  }

  /** `err` with its delegation path when it is a routing failure (error path only: explain-failure.ts). */
  explainFailure(err: unknown, ctx: RequestContext): unknown {
    return withDelegationPath(err, ctx, this.#o.interpreter);
  }

  /** What this router's clients are bound to now: each bound name, its addresses and their state. */
  clientState(): {
    id: string;
    state: string;
    stale: boolean;
    endpoints: { address: string; nodeName: string | null; inFlight: number; ewmaMs: number; accrual: 'alive' | 'dead' | 'probing' }[];
  }[] {
    const seen = new Map<string, BoundName>();
    const walk = (t: NameTree<BoundName>): void => {
      if (t.kind === 'leaf') seen.set(t.value.id.show(), t.value);
      else if (t.kind === 'alt') t.trees.forEach(walk);
      else if (t.kind === 'union') t.members.forEach((m) => walk(m.tree));
    };
    for (const c of [...this.#bindings.values(), ...this.#overrideBindings.values()]) {
      const s = c.binding.state.get();
      if (s.kind === 'ok') walk(s.tree);
    }
    return [...seen].map(([id, name]) => {
      const a = name.addr.get();
      const endpoints = a.kind === 'bound' ? a.endpoints : [];
      return {
        id,
        state: a.kind,
        stale: a.kind === 'bound' && a.stale === true,
        endpoints: endpoints.map((e) => ({
          address: endpointKey(e),
          nodeName: e.meta.nodeName ?? null,
          inFlight: this.#o.pools.load(e),
          ewmaMs: Math.round(this.#o.pools.cost(e) * 100) / 100,
          accrual: this.#accrual.state(accrualKey(id, endpointKey(e))),
        })),
      };
    });
  }

  async #bind(dtab: Dtab, path: Path, override = false): Promise<NameTree<BoundName>> {
    const key = `${dtab.show()}\n${path.show()}`;
    const cache = override ? this.#overrideBindings : this.#bindings;
    let cached = cache.get(key);
    if (cached === undefined) {
      cached = { binding: this.#o.interpreter.bind(dtab, path, { budget: this.#o.bindingBudget }), lastUsed: 0 };
      cache.set(key, cached);
      this.#trim(cache, override ? this.#limits.overrides : this.#limits.paths);
    } else {
      cache.delete(key); // most recently used goes last
      cache.set(key, cached);
    }
    cached.lastUsed = this.#now();
    let state = cached.binding.state.get();
    if (state.kind === 'pending') {
      // This request's own reference: the cache may evict the entry while the request waits.
      const held = this.#o.interpreter.bind(dtab, path, { budget: this.#o.bindingBudget });
      try {
        state = await waitSettled(held.state, this.#o.bindingTimeoutMs ?? 10_000, path);
      } finally {
        held.close();
      }
    }
    if (state.kind !== 'ok' && cache.get(key) === cached) {
      // A failure is not kept: the next request binds afresh (a refused namespace may have room by then).
      cache.delete(key);
      cached.binding.close();
    }
    if (state.kind === 'failed' && state.error instanceof HostmeshError && state.error.code === 'BINDING_OVER_BUDGET') {
      this.#o.onBudgetExceeded?.(override ? 'override' : 'dtab');
      // The override is what made binding too costly: the client's request is at fault (400).
      if (override) throw new HostmeshError('OVERRIDE_OVER_BUDGET', `dtab override rejected: ${state.error.message}`);
    }
    if (state.kind === 'failed') {
      throw state.error instanceof HostmeshError ? state.error : new HostmeshError('BINDING_FAILED', state.error.message);
    }
    if (state.kind === 'pending') throw new HostmeshError('TIMEOUT', `binding ${path.show()} timed out`);
    return state.tree;
  }

  #pick(tree: NameTree<BoundName>, ctx: RequestContext): BoundName {
    let t = tree;
    for (;;) {
      switch (t.kind) {
        case 'leaf':
          return t.value;
        case 'union': {
          const i = pickWeighted(
            t.members.map((m) => m.weight),
            this.#o.random,
          );
          t = (t.members[i] as { tree: NameTree<BoundName> }).tree;
          break;
        }
        case 'alt':
          t = t.trees[0] ?? { kind: 'neg' };
          break;
        case 'neg':
          throw HostmeshError.of('NO_ROUTE', 'neg', { service: ctx.service ?? '?' });
        case 'fail':
          throw HostmeshError.of('NO_ROUTE', 'fail', { service: ctx.service ?? '?' });
        case 'empty':
          throw HostmeshError.of('NO_ENDPOINTS', 'empty', { service: ctx.service ?? '?' });
      }
    }
  }

  /** The endpoints of a bound name after the transformers, and why none are left if so. */
  #candidates(name: BoundName): { endpoints: readonly Endpoint[]; why: string | undefined } {
    const addr = name.addr.get();
    if (addr.kind === 'failed') throw new HostmeshError('BINDING_FAILED', `${name.id.show()}: ${addr.error.message}`);
    let endpoints: readonly Endpoint[] = addr.kind === 'bound' ? addr.endpoints : [];
    let why: string | undefined;
    for (const transform of this.#o.transforms) {
      const r = transform(endpoints);
      endpoints = r.endpoints;
      why ??= r.why;
    }
    return { endpoints, why };
  }

  /** Another endpoint of `name` for a requeue or retry, none of `exclude` (endpoint keys) when that is possible. */
  #another(name: BoundName, exclude: ReadonlySet<string>): Endpoint | undefined {
    let endpoints: readonly Endpoint[];
    try {
      endpoints = this.#candidates(name).endpoints;
    } catch {
      return undefined;
    }
    if (exclude.size > 0) endpoints = endpoints.filter((e) => !exclude.has(endpointKey(e)));
    endpoints = this.#alive(name, endpoints);
    if (endpoints.length === 0) return undefined;
    // Least loaded of two (pools' in-flight counts), even under round robin: a resend that moved
    // the rotation on would send every next request to the endpoint that just failed first.
    return pickP2C(endpoints, (e) => this.#o.pools.load(e), this.#o.random);
  }

  /** Failure accrual's filter: the endpoints not marked dead, or all when every one is. */
  #alive(name: BoundName, endpoints: readonly Endpoint[]): readonly Endpoint[] {
    if (!this.#accrual.enabled || this.#accrual.deadCount === 0) return endpoints;
    const client = name.id.show();
    return skipDead(endpoints, (e) => this.#accrual.usable(accrualKey(client, endpointKey(e))));
  }

  #endpoint(name: BoundName, ctx: RequestContext): Endpoint {
    const { endpoints: all, why } = this.#candidates(name);
    const endpoints = this.#alive(name, all);
    const chosen = this.#o.balancer === 'roundRobin' ? endpoints[this.#rr++ % Math.max(1, endpoints.length)] : pickP2C(endpoints, this.#load, this.#o.random);
    if (chosen === undefined) {
      throw new HostmeshError('NO_ENDPOINTS', `no endpoints for ${ctx.service ?? '?'} at ${name.id.show()}${why ? `: ${why}` : ''}`);
    }
    return chosen;
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: Endpoint,
    target: string,
    headers: OutgoingHttpHeaders,
    ctx: RequestContext,
    another: (exclude: ReadonlySet<string>) => Endpoint | undefined,
  ): Promise<void> {
    // Node hands over a connection's pipelined requests at once; their responses leave in order
    // anyway, so they are forwarded one at a time: one connection is one stream of requests and
    // cannot fill an endpoint's queue (1,000 pipelined requests would otherwise be 1,000 waiters).
    const socket = req.socket;
    const line = pipelines.get(socket);
    if (line === undefined) pipelines.set(socket, []);
    else await new Promise<void>((resolve) => line.push(resolve));
    try {
      await this.#send(req, res, endpoint, target, headers, ctx, another);
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
  async #send(
    req: IncomingMessage,
    res: ServerResponse,
    first: Endpoint,
    target: string,
    headers: OutgoingHttpHeaders,
    ctx: RequestContext,
    another: (exclude: ReadonlySet<string>) => Endpoint | undefined,
  ): Promise<void> {
    if (res.destroyed) return; // the client left while its earlier pipelined requests ran
    const pools = this.#o.pools;
    const limits = pools.limits;
    // undici takes an EventEmitter as the abort signal: far cheaper per request than an
    // AbortController, whose signal machinery showed in the profile.
    const abort = new EventEmitter();
    const onClose = (): void => {
      if (!res.writableFinished) abort.emit('abort');
    };
    res.once('close', onClose);
    const method = req.method ?? 'GET';
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    const chunked = hasBody && req.headers['content-length'] === undefined;
    // The fair-share key: on a plaintext server the client's address is the pod; on a TLS server
    // every request comes from a peer router, so only the per-service share applies there.
    const source = (req.socket as { encrypted?: boolean }).encrypted === true ? undefined : req.socket.remoteAddress;
    const service = ctx.service ?? '-';
    const policy = this.#retryPolicy;
    const body = hasBody ? new ReplayableBody(req, policy.requestBufferBytes) : undefined;
    const retryBudget = this.#retryBudgets.get(service);
    const requeueBudget = this.#requeueBudgets.get(ctx.client ?? '-');
    // Each attempt's own abort signal, fired at its timeout or the request's deadline (deadline.ts).
    const timer = new AttemptTimer({ now: this.#now, deadline: ctx.deadline, attemptTimeoutMs: this.#o.requestAttemptTimeoutMs, abort });
    retryBudget.deposit();
    requeueBudget.deposit();
    const tried = new Set<string>();
    let delays: (() => number) | undefined;
    let retries = 0;
    let endpoint = first;
    let stopWatch: (() => void) | undefined;
    let bodyStalled = false;
    /** The endpoint to requeue on, when the body can be sent again, one is left and the budget allows. */
    const requeue = (reason: RequeueReason): Endpoint | undefined => {
      if (res.destroyed || (body !== undefined && !body.replayable)) return undefined;
      const next = another(tried);
      if (next === undefined) return undefined;
      if (!requeueBudget.tryWithdraw()) {
        this.#o.onBudgetExhausted?.('requeue');
        return undefined;
      }
      this.#o.onRequeue?.(reason);
      return next;
    };
    try {
      for (;;) {
        if (timer.remaining() <= 0) {
          timer.expired = 'deadline'; // spent in backoff or earlier attempts
          throw this.#timedOut(timer, ctx);
        }
        const signal = timer.start();
        tried.add(endpointKey(endpoint));
        const entry = pools.get(endpoint);
        entry.inFlight++;
        // Failure accrual sees every attempt's outcome; a probe without one lets another go.
        const akey = accrualKey(ctx.client ?? '-', entry.key);
        const probe = this.#accrual.begin(akey);
        let admitted = false;
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          entry.inFlight--;
          if (admitted) entry.admission.release(source, service);
          if (probe) this.#accrual.abandon(akey);
        };
        let upstream: Dispatcher.ResponseData;
        try {
          const waiting = entry.admission.acquire(source, service, signal);
          if (waiting !== undefined) {
            try {
              await waiting;
            } catch (err) {
              if (err instanceof ShedError) this.#o.onShed?.(err.reason);
              throw err;
            }
          }
          admitted = true;
          if (res.destroyed) {
            release();
            return; // the client left while waiting
          }
          if (hasBody && stopWatch === undefined && !req.readableEnded) {
            stopWatch = watchRequestBody(req, limits.requestBodyIdleTimeoutMs, () => {
              bodyStalled = true;
              this.#o.onTimeout?.('request_body_idle');
              abort.emit('abort');
            });
          }
          const started = performance.now();
          upstream = await entry.pool.request({
            method: method as 'GET',
            path: target,
            headers: headers as Record<string, string | string[]>,
            body: body === undefined ? null : body.attempt(),
            signal,
          });
          timer.stop(); // the deadline bounds the wait for an answer; its body has its own idle deadline
          pools.observe(entry, performance.now() - started);
        } catch (err) {
          release();
          timer.stop();
          if (timer.expired !== undefined) {
            if (timer.expired === 'attempt') this.#accrual.record(akey, false); // the endpoint did not answer in time
            const timedOut = this.#timedOut(timer, ctx);
            // A timed-out attempt is retried as the classifier would retry a 503 to this request.
            const retryable = timer.expired === 'attempt' && this.#classify({ method, chunked }, 503, {}) === 'retryable';
            if (retryable && retries < policy.maxRetriesPerRequest && (body === undefined || body.replayable) && !res.destroyed) {
              if (retryBudget.tryWithdraw()) {
                retries++;
                this.#o.onRetry?.(service);
                endpoint = another(new Set()) ?? endpoint;
                continue;
              }
              this.#o.onBudgetExhausted?.('retry');
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
          if (code !== 'UND_ERR_ABORTED' && !res.destroyed) this.#accrual.record(akey, false);
          const reason = CONNECT_ERRORS.has(code) ? 'connect_failed' : CLOSED_ERRORS.has(code) && IDEMPOTENT.has(method) ? 'connection_closed' : undefined;
          const next = reason === undefined ? undefined : requeue(reason);
          if (next !== undefined) {
            endpoint = next;
            continue;
          }
          throw this.#upstreamError(err, code, endpoint);
        }
        try {
          // Only a peer router's mark counts (the endpoint is a router, reached over mTLS); a
          // router drops the header from every answer it relays, so an app cannot forge it.
          const mark = pools.tls ? headerValue(upstream.headers[REQUEUE_HEADER]) : undefined;
          if (mark !== undefined) {
            this.#accrual.record(akey, false); // the node could not serve this client's requests
            const next = requeue(mark === 'no-local-endpoint' ? 'no_local_endpoint' : 'not_delivered');
            if (next !== undefined) {
              await discard(upstream);
              endpoint = next;
              continue;
            }
          }
          const cls = this.#classify({ method, chunked }, upstream.statusCode, upstream.headers);
          if (mark === undefined) this.#accrual.record(akey, cls === 'success');
          if (cls === 'retryable' && retries < policy.maxRetriesPerRequest && (body === undefined || body.replayable) && !res.destroyed) {
            if (retryBudget.tryWithdraw()) {
              retries++;
              this.#o.onRetry?.(service);
              await discard(upstream);
              release();
              delays ??= backoffDelays(policy.backoff, this.#o.random);
              const ms = delays();
              if (ms > 0) await (this.#o.sleep ?? sleep)(Math.min(ms, Math.max(0, timer.remaining())));
              if (res.destroyed) return;
              // A retry goes through the balancer again (Linkerd 1 retries above the balancer).
              endpoint = another(new Set()) ?? endpoint;
              continue;
            }
            this.#o.onBudgetExhausted?.('retry');
          }
          this.#o.onClassified?.(service, cls);
          body?.settle(); // this answer is final: nothing is resent, so nothing need be kept
          this.#relayResponse(res, upstream, cls);
          await this.#relayBody(res, upstream);
          return;
        } finally {
          release();
        }
      }
    } finally {
      timer.stop();
      stopWatch?.();
      res.off('close', onClose);
    }
  }

  /** Counts a fired deadline by whose it was and makes its 503 TIMEOUT (deadline.ts). */
  #timedOut(timer: AttemptTimer, ctx: RequestContext): HostmeshError {
    this.#o.onTimeout?.(timer.expired === 'attempt' ? 'attempt' : ctx.deadline?.source === 'header' ? 'deadline' : 'total');
    return timer.error();
  }

  /** The catalog error for a failed upstream request (no response arrived). */
  #upstreamError(err: unknown, code: string, endpoint: Endpoint): HostmeshError {
    const limits = this.#o.pools.limits;
    if (code === 'UND_ERR_HEADERS_TIMEOUT') {
      this.#o.onTimeout?.('headers');
      return new HostmeshError('TIMEOUT', `${endpointKey(endpoint)} did not answer within ${limits.headersTimeoutMs} ms (headers timeout)`, { cause: err });
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      this.#o.onTimeout?.('connect');
      return new HostmeshError('TIMEOUT', `timed out connecting to ${endpointKey(endpoint)}`, { cause: err });
    }
    if (CLOSED_ERRORS.has(code)) {
      return new HostmeshError('UPSTREAM_ERROR', `connection to ${endpointKey(endpoint)} failed after the request was sent: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${(err as Error).message}`, { cause: err });
  }

  /** The response head: end-to-end fields, minus the router's requeue mark, plus the success class. */
  #relayResponse(res: ServerResponse, upstream: Dispatcher.ResponseData, cls: ResponseClass): void {
    const outHeaders: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(upstream.headers)) {
      if (v !== undefined && !isHopByHop(k) && k !== REQUEUE_HEADER) outHeaders[k] = v;
    }
    outHeaders[SUCCESS_CLASS_HEADER] = successClass(cls);
    const trailerNames = headerValue(upstream.headers['trailer']);
    if (trailerNames !== undefined) outHeaders['trailer'] = trailerNames; // announced trailers follow the body
    res.writeHead(upstream.statusCode, outHeaders);
  }

  async #relayBody(res: ServerResponse, upstream: Dispatcher.ResponseData): Promise<void> {
    try {
      await relay(upstream.body, res);
      const trailers = upstream.trailers;
      if (trailers !== undefined && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
      res.end();
    } catch (err) {
      // The client went away, or the upstream died or went idle mid-body: cut the response
      // (a closed connection, never a response that looks complete).
      if ((err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') this.#o.onTimeout?.('response_body_idle');
      upstream.body.destroy();
      res.destroy();
    }
  }

  /** Drops cached bindings unused for idleTtl (on the injected clock); returns how many. */
  evictIdle(): number {
    const now = this.#now();
    let n = 0;
    for (const cache of [this.#bindings, this.#overrideBindings]) {
      for (const [key, c] of cache) {
        if (now - c.lastUsed < this.#limits.idleTtlMs) break; // the rest were used later
        cache.delete(key);
        c.binding.close();
        this.#o.onBindingEvicted?.('idle');
        n++;
      }
    }
    return n;
  }

  /** Bindings cached now (hostmesh_binding_cache_size). */
  get bindingCacheSize(): number {
    return this.#bindings.size + this.#overrideBindings.size;
  }

  /** Evicts the least recently used bindings past `max`. */
  #trim(cache: Map<string, CachedBinding>, max: number): void {
    while (cache.size > max) {
      const [key, c] = cache.entries().next().value as [string, CachedBinding];
      cache.delete(key);
      c.binding.close();
      this.#o.onBindingEvicted?.('capacity');
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const c of [...this.#bindings.values(), ...this.#overrideBindings.values()]) c.binding.close();
    this.#bindings.clear();
    this.#overrideBindings.clear();
  }
}

/** Per connection: resolvers of its pipelined requests waiting for the one in progress. */
const pipelines = new WeakMap<object, (() => void)[]>();

/** Reads and drops an answer that will not be relayed (a requeued or retried attempt's). */
async function discard(upstream: Dispatcher.ResponseData): Promise<void> {
  await upstream.body.dump().catch(() => undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * On the incoming side (a peer router's request, over mTLS), marks this router's own error answer
 * when no app received the request: no endpoint on this node, the local pod unreachable, busy or
 * draining. The outgoing router may then requeue it on another node (REQUEUE_HEADER). The rescue
 * point writes the answer; fields set here are merged into it.
 */
function markUndelivered(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent || !(err instanceof HostmeshError)) return;
  // Linkerd 1's informational l5d-retryable: the request reached no app, so it is safe to resend.
  if (err.retryable) res.setHeader(RETRYABLE_HEADER, 'true');
  if ((req.socket as { encrypted?: boolean }).encrypted !== true) return;
  if (err.code === 'NO_ENDPOINTS') res.setHeader(REQUEUE_HEADER, 'no-local-endpoint');
  else if (err.retryable) res.setHeader(REQUEUE_HEADER, 'not-delivered');
}

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

/**
 * The headers a hop sends on. The router's own (Host, Via, l5d-*) come first, then the client's
 * end-to-end ones: a next hop that keeps only its first N fields (Node's maxHeadersCount, or a
 * router's maxHeaders) drops the client's padding, never the Via that counts hops, nor the
 * l5d-dst-* marks that tell an admin server a request came through a router.
 */
function outgoingHeaders(
  h: IncomingHttpHeaders,
  host: string | undefined,
  service: string,
  client: string,
  overrides: string,
  peerId: string | undefined,
  claim: string | undefined,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (host !== undefined) out.host = host;
  out.via = appendVia(h.via);
  out['l5d-dst-service'] = service;
  out['l5d-dst-client'] = client;
  out['l5d-reqid'] = h['l5d-reqid'] ?? requestId();
  if (overrides !== '') out['l5d-ctx-dtab'] = overrides;
  if (peerId !== undefined) out['l5d-client-id'] = peerId;
  if (claim !== undefined) out[CLAIM_HEADER] = claim;
  return endToEnd(h, DROP, out);
}

/**
 * l5d-reqid for requests that come without one: 64 random bits as hex, drawn from a pool refilled
 * 512 ids at a time (a randomBytes call per request was 2% of a router's CPU).
 */
const ID_POOL_BYTES = 4096;
let idPool = Buffer.alloc(0);
let idOffset = ID_POOL_BYTES;
function requestId(): string {
  if (idOffset >= idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    idOffset = 0;
  }
  const id = idPool.toString('hex', idOffset, idOffset + 8);
  idOffset += 8;
  return id;
}

function waitSettled(v: Var<Lookup>, timeoutMs: number, path: Path): Promise<Lookup> {
  return new Promise((resolve) => {
    let unsubscribe: (() => void) | undefined;
    const timer = setTimeout(() => {
      unsubscribe?.();
      resolve({ kind: 'failed', error: new HostmeshError('TIMEOUT', `binding ${path.show()} did not resolve within ${timeoutMs} ms`) });
    }, timeoutMs);
    unsubscribe = v.subscribe((s) => {
      if (s.kind === 'pending') return;
      clearTimeout(timer);
      queueMicrotask(() => unsubscribe?.());
      resolve(s);
    });
  });
}

/** TRACE with Max-Forwards: 0 is answered here (RFC 9110 9.3.8): the request echoed as message/http. */
function traceEcho(req: IncomingMessage, res: ServerResponse): void {
  let text = `${req.method ?? 'TRACE'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    // Credentials are not echoed back (RFC 9110 9.3.8 advises excluding sensitive fields), under
    // any of the names they travel by (X-Api-Key, X-Auth-Token, session ids...).
    if (isCredentialLike(name)) continue;
    text += `${name}: ${req.rawHeaders[i + 1] ?? ''}\r\n`;
  }
  text += '\r\n';
  req.resume();
  res.writeHead(200, { 'content-type': 'message/http', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
