// One router (Linkerd 1's `routers[]` entry): identify -> bind through the dtab (cached, live) ->
// pick a union member and an endpoint (transformers, p2c) -> forward through a keep-alive pool.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream/promises';
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
import { appendVia, endToEnd, headerValue, isHopByHop, viaHops } from './headers.js';
import { identify } from './identify.js';
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
}

/** What the rescue point needs to explain an error. */
export interface RequestContext {
  service?: string;
  dtab?: string;
  overrides?: string;
}

const DROP = new Set(['host', 'via', 'l5d-dtab', 'l5d-ctx-dtab', 'l5d-client-id', 'l5d-dst-service', 'l5d-dst-client']);

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
  #inFlight = 0;

  constructor(options: RouterOptions) {
    this.label = options.label;
    this.#o = options;
    this.#sweeper = setInterval(() => this.#evictIdle(10 * 60_000), 60_000);
    this.#sweeper.unref();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get dtab(): Dtab {
    return this.#o.dtab.get();
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
    const id = identify(req.method ?? 'GET', req.url ?? '/', h.host);
    ctx.service = id.name.show();
    const base = this.#o.dtab.get();
    const ctxDtabText = headerValue(h['l5d-ctx-dtab']);
    const localDtabText = headerValue(h['l5d-dtab']);
    const overrides = this.#headerDtabs.parse(ctxDtabText, localDtabText);
    ctx.dtab = base.show();
    ctx.overrides = overrides.text;
    const dtab = overrides.dtab === undefined ? base : base.concat(overrides.dtab);

    const bound = await this.#bind(dtab, id.name);
    const name = this.#pick(bound, ctx);
    const endpoint = this.#endpoint(name, ctx);

    const out: OutgoingHttpHeaders = endToEnd(h, DROP);
    out.host = id.host;
    out.via = appendVia(h.via);
    out['l5d-dst-service'] = id.name.show();
    out['l5d-dst-client'] = name.id.show();
    if (out['l5d-reqid'] === undefined) out['l5d-reqid'] = randomBytes(8).toString('hex');
    if (overrides.text !== '') out['l5d-ctx-dtab'] = overrides.text;
    if (peerId !== undefined) out['l5d-client-id'] = peerId;

    await this.#forward(req, res, endpoint, id.target, out);
  }

  async #bind(dtab: Dtab, path: Path): Promise<NameTree<BoundName>> {
    const key = `${dtab.show()}\n${path.show()}`;
    let cached = this.#bindings.get(key);
    if (cached === undefined) {
      cached = { binding: this.#o.interpreter.bind(dtab, path), lastUsed: 0 };
      this.#bindings.set(key, cached);
    }
    cached.lastUsed = Date.now();
    let state = cached.binding.state.get();
    if (state.kind === 'pending') state = await waitSettled(cached.binding.state, this.#o.bindingTimeoutMs ?? 10_000, path);
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
    const chosen = pickP2C(endpoints, (e) => pools.load(e), this.#o.random);
    if (chosen === undefined) {
      throw new HostmeshError('NO_ENDPOINTS', `no endpoints for ${ctx.service ?? '?'} at ${name.id.show()}${why ? `: ${why}` : ''}`);
    }
    return chosen;
  }

  async #forward(req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, target: string, headers: OutgoingHttpHeaders): Promise<void> {
    const entry = this.#o.pools.get(endpoint);
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    entry.inFlight++;
    try {
      let upstream;
      try {
        upstream = await entry.pool.request({
          method: (req.method ?? 'GET') as 'GET',
          path: target,
          headers: headers as Record<string, string | string[]>,
          body: hasBody ? req : null,
          signal: abort.signal,
        });
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
          throw new HostmeshError('TIMEOUT', `timed out waiting for ${endpointKey(endpoint)}`, { cause: err });
        }
        throw new HostmeshError('CONNECT_FAILED', `cannot reach ${endpointKey(endpoint)}: ${(err as Error).message}`, { cause: err });
      }
      const outHeaders: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(upstream.headers)) {
        if (v !== undefined && !isHopByHop(k)) outHeaders[k] = v;
      }
      res.writeHead(upstream.statusCode, outHeaders);
      try {
        await pipeline(upstream.body, res);
      } catch {
        // The client went away or the upstream died mid-body: end the response truncated.
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
