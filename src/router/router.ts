// One router (Linkerd 1's `routers[]` entry): identify -> bind through the dtab (cached, live) ->
// pick a union member and an endpoint (transformers, p2c) -> forward through a keep-alive pool.

import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { Dtab } from '../dtab/dtab.js';
import type { NameTree } from '../dtab/name-tree.js';
import type { Path } from '../dtab/path.js';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BoundName, Endpoint, Lookup } from '../namer/addr.js';
import type { Binding, NameInterpreter } from '../namer/interpreter.js';
import type { Var } from '../namer/var.js';
import { pickP2C, pickWeighted } from './balancer.js';
import { endpointKey, type EndpointPools } from './endpoint-pool.js';
import { appendVia, endToEnd, headerValue, isCredentialLike, isHopByHop, viaHops } from './headers.js';
import { normalizeTarget } from './identify.js';
import { buildIdentifiers, type RequestFacts } from './identifiers.js';
import { parsePath } from '../dtab/parse.js';
import { HeaderDtabs } from './header-dtabs.js';
import type { EndpointTransform } from './transformers.js';

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
}

/** What the rescue point needs to explain an error. */
export interface RequestContext {
  service?: string;
  /** The bound id the request went to (metrics' client label). */
  client?: string;
  dtab?: string;
  overrides?: string;
}

const DROP = new Set(['host', 'expect', 'via', 'l5d-dtab', 'l5d-ctx-dtab', 'l5d-client-id', 'l5d-dst-service', 'l5d-dst-client', 'l5d-reqid']);

interface CachedBinding {
  readonly binding: Binding;
  lastUsed: number;
}

export class Router {
  readonly label: string;
  readonly #o: RouterOptions;
  readonly #bindings = new Map<string, CachedBinding>();
  readonly #headerDtabs = new HeaderDtabs();
  readonly #sweeper: NodeJS.Timeout;
  readonly #identify: (req: RequestFacts) => { name: Path; target: string };
  readonly #load: (e: Endpoint) => number;
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
    this.#sweeper = setInterval(() => this.#evictIdle(10 * 60_000), 60_000);
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
    } finally {
      this.#inFlight--;
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, peerId: string | undefined): Promise<void> {
    const h = req.headers;
    if (viaHops(h.via) >= this.#o.maxHops) {
      throw new HostmeshError('PROXY_LOOP', `proxy loop: more than ${this.#o.maxHops} hops in Via`);
    }
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

    ctx.client = name.id.show();
    if (overrides.text !== '') this.#o.onOverride?.();
    const out = outgoingHeaders(h, host, id.name.show(), ctx.client, overrides.text, peerId);
    if (method === 'TRACE' && out['max-forwards'] !== undefined) {
      out['max-forwards'] = String(Math.max(0, Number(headerValue(h['max-forwards'])) - 1));
    }

    await this.#forward(req, res, endpoint, id.target, out);
  }

  /**
   * Names and binds a request (the part of routing before forwarding), for upgrades and CONNECT:
   * the endpoint to use, the origin-form target and the headers to send.
   */
  async resolve(req: IncomingMessage, ctx: RequestContext, peerId: string | undefined): Promise<{ endpoint: Endpoint; tls: boolean; target: string; headers: OutgoingHttpHeaders }> {
    const h = req.headers;
    if (viaHops(h.via) >= this.#o.maxHops) {
      throw new HostmeshError('PROXY_LOOP', `proxy loop: more than ${this.#o.maxHops} hops in Via`);
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
    const out = outgoingHeaders(h, host, id.name.show(), name.id.show(), overrides.text, peerId);
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

  /** What this router's clients are bound to now: each bound name, its addresses and their state. */
  clientState(): { id: string; state: string; stale: boolean; endpoints: { address: string; nodeName: string | null; inFlight: number; ewmaMs: number }[] }[] {
    const seen = new Map<string, BoundName>();
    const walk = (t: NameTree<BoundName>): void => {
      if (t.kind === 'leaf') seen.set(t.value.id.show(), t.value);
      else if (t.kind === 'alt') t.trees.forEach(walk);
      else if (t.kind === 'union') t.members.forEach((m) => walk(m.tree));
    };
    for (const c of this.#bindings.values()) {
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
        })),
      };
    });
  }

  async #bind(dtab: Dtab, path: Path, override = false): Promise<NameTree<BoundName>> {
    const key = `${dtab.show()}\n${path.show()}`;
    let cached = this.#bindings.get(key);
    if (cached === undefined) {
      cached = { binding: this.#o.interpreter.bind(dtab, path, { budget: this.#o.bindingBudget }), lastUsed: 0 };
      this.#bindings.set(key, cached);
    }
    cached.lastUsed = Date.now();
    let state = cached.binding.state.get();
    if (state.kind === 'pending') state = await waitSettled(cached.binding.state, this.#o.bindingTimeoutMs ?? 10_000, path);
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
          const i = pickWeighted(t.members.map((m) => m.weight), this.#o.random);
          t = (t.members[i] as { tree: NameTree<BoundName> }).tree;
          break;
        }
        case 'alt':
          t = t.trees[0] ?? { kind: 'neg' };
          break;
        case 'neg':
          throw new HostmeshError('NO_ROUTE', `no route to ${ctx.service ?? '?'}: the name does not bind (neg)`);
        case 'fail':
          throw new HostmeshError('NO_ROUTE', `no route to ${ctx.service ?? '?'}: the dtab fails it`);
        case 'empty':
          throw new HostmeshError('NO_ENDPOINTS', `no endpoints for ${ctx.service ?? '?'}: the name binds to an empty set`);
      }
    }
  }

  #endpoint(name: BoundName, ctx: RequestContext): Endpoint {
    const addr = name.addr.get();
    if (addr.kind === 'failed') throw new HostmeshError('BINDING_FAILED', `${name.id.show()}: ${addr.error.message}`);
    let endpoints: readonly Endpoint[] = addr.kind === 'bound' ? addr.endpoints : [];
    let why: string | undefined;
    for (const transform of this.#o.transforms) {
      const r = transform(endpoints);
      endpoints = r.endpoints;
      why ??= r.why;
    }
    const pools = this.#o.pools;
    const chosen =
      this.#o.balancer === 'roundRobin' ? endpoints[this.#rr++ % Math.max(1, endpoints.length)] : pickP2C(endpoints, this.#load, this.#o.random);
    if (chosen === undefined) {
      throw new HostmeshError('NO_ENDPOINTS', `no endpoints for ${ctx.service ?? '?'} at ${name.id.show()}${why ? `: ${why}` : ''}`);
    }
    return chosen;
  }

  async #forward(req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, target: string, headers: OutgoingHttpHeaders): Promise<void> {
    const entry = this.#o.pools.get(endpoint);
    // undici takes an EventEmitter as the abort signal: far cheaper per request than an
    // AbortController, whose signal machinery showed in the profile.
    const abort = new EventEmitter();
    const onClose = (): void => {
      if (!res.writableFinished) abort.emit('abort');
    };
    res.once('close', onClose);
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    entry.inFlight++;
    const started = performance.now();
    try {
      let upstream;
      try {
        upstream = await entry.pool.request({
          method: (req.method ?? 'GET') as 'GET',
          path: target,
          headers: headers as Record<string, string | string[]>,
          body: hasBody ? req : null,
          signal: abort,
        });
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
          throw new HostmeshError('TIMEOUT', `timed out waiting for ${endpointKey(endpoint)}`, { cause: err });
        }
        throw new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${(err as Error).message}`, { cause: err });
      }
      this.#o.pools.observe(entry, performance.now() - started);
      const outHeaders: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(upstream.headers)) {
        if (v !== undefined && !isHopByHop(k)) outHeaders[k] = v;
      }
      const trailerNames = headerValue(upstream.headers['trailer']);
      if (trailerNames !== undefined) outHeaders['trailer'] = trailerNames; // announced trailers follow the body
      res.writeHead(upstream.statusCode, outHeaders);
      try {
        await relay(upstream.body, res);
        const trailers = upstream.trailers;
        if (trailers !== undefined && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
        res.end();
      } catch {
        // The client went away or the upstream died mid-body: end the response truncated.
        upstream.body.destroy();
        res.destroy();
      }
    } finally {
      entry.inFlight--;
      res.off('close', onClose);
    }
  }

  #evictIdle(idleMs: number): void {
    const now = Date.now();
    for (const [key, c] of this.#bindings) {
      if (now - c.lastUsed > idleMs) {
        c.binding.close();
        this.#bindings.delete(key);
      }
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const c of this.#bindings.values()) c.binding.close();
    this.#bindings.clear();
  }
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
function outgoingHeaders(h: IncomingHttpHeaders, host: string | undefined, service: string, client: string, overrides: string, peerId: string | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (host !== undefined) out.host = host;
  out.via = appendVia(h.via);
  out['l5d-dst-service'] = service;
  out['l5d-dst-client'] = client;
  out['l5d-reqid'] = h['l5d-reqid'] ?? requestId();
  if (overrides !== '') out['l5d-ctx-dtab'] = overrides;
  if (peerId !== undefined) out['l5d-client-id'] = peerId;
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
