// The `/$/...` names every router understands without configuration (Finagle's and Linkerd 1's
// built-in namers): inet addresses, fail, nil, and the host/port rewriting helpers.

import { BoundedMap } from '../core/bounded-map.js';
import { type Clock, systemClock } from '../core/clock.js';
import { Path } from '../dtab/path.js';
import type { Addr, BoundName } from './addr.js';
import { Var } from './var.js';

/** What a built-in name turns into: a bound leaf, a rewrite to another path, or a terminal tree. */
export type BuiltinResult =
  | { readonly kind: 'bound'; readonly name: BoundName }
  | { readonly kind: 'rewrite'; readonly path: Path; readonly via: string }
  | { readonly kind: 'neg' }
  | { readonly kind: 'fail' }
  | { readonly kind: 'empty' }
  | { readonly kind: 'error'; readonly message: string };

const PORT = /^[0-9]{1,5}$/;
/** A named port: a DNS label (RFC 1123) of at most 63 characters, as Kubernetes port names are. */
const NAMED_PORT = /^(?=.{1,63}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
/** Linkerd 1's coarse host match (DNS names, IPv4, IPv6 without brackets, an optional port). */
const HOST = /^[A-Za-z0-9.:_-]+$/;
/** An HTTP method as Linkerd 1's methodAndHost identifier puts it in a name. */
const METHOD = /^[A-Z]+$/;

function dropPort(host: string): string {
  const i = host.indexOf(':');
  return i > 0 ? host.slice(0, i) : host;
}

/** `foo.buoyant.io` under `buoyant.io` is `foo`; not a subdomain (or the domain itself): undefined. */
function subdomain(domain: string, host: string): string | undefined {
  const h = dropPort(host);
  const suffix = `.${domain}`;
  return h.endsWith(suffix) && h.length > suffix.length ? h.slice(0, -suffix.length) : undefined;
}

/**
 * A host's labels, last first, as Linkerd 1's domainToPath splits them: on `.`, a port kept on the
 * last label (`io:8080`), trailing empty labels dropped; undefined when one inside is empty (`a..b`,
 * `.a`), which Linkerd 1 cannot name either.
 */
function domainLabels(host: string): string[] | undefined {
  const labels = host.split('.');
  while (labels.length > 0 && labels[labels.length - 1] === '') labels.pop();
  return labels.length === 0 || labels.includes('') ? undefined : labels.reverse();
}

/**
 * Linkerd 1's rewriting namers of `io.buoyant.http` (rest = the path after `/$/<kind>`): the new
 * path, or undefined when the name is not of the expected form (neg, so alternations fall through).
 */
const HTTP_REWRITES: Readonly<Record<string, (rest: readonly string[]) => string[] | undefined>> = {
  // /$/io.buoyant.http.anyMethod/GET/svc/x -> /svc/x
  'io.buoyant.http.anyMethod': ([method, ...tail]) => (method !== undefined && METHOD.test(method) ? tail : undefined),
  // /$/io.buoyant.http.anyMethodPfx/pfx/GET/x -> /pfx/x
  'io.buoyant.http.anyMethodPfx': ([pfx, method, ...tail]) => (pfx !== undefined && method !== undefined && METHOD.test(method) ? [pfx, ...tail] : undefined),
  // /$/io.buoyant.http.anyHost/foo.io/x -> /x
  'io.buoyant.http.anyHost': ([host, ...tail]) => (host !== undefined && HOST.test(host) ? tail : undefined),
  // /$/io.buoyant.http.anyHostPfx/pfx/foo.io/x -> /pfx/x
  'io.buoyant.http.anyHostPfx': ([pfx, host, ...tail]) => (pfx !== undefined && host !== undefined && HOST.test(host) ? [pfx, ...tail] : undefined),
  // /$/io.buoyant.http.subdomainOf/buoyant.io/foo.buoyant.io/x -> /foo/x
  'io.buoyant.http.subdomainOf': ([domain, host, ...tail]) => {
    if (domain === undefined || host === undefined || !HOST.test(domain) || !HOST.test(host)) return undefined;
    const sub = subdomain(domain, host);
    return sub === undefined ? undefined : [sub, ...tail];
  },
  // /$/io.buoyant.http.subdomainOfPfx/buoyant.io/pfx/foo.buoyant.io/x -> /pfx/foo/x
  'io.buoyant.http.subdomainOfPfx': ([domain, pfx, host, ...tail]) => {
    if (domain === undefined || pfx === undefined || host === undefined || !HOST.test(domain) || !HOST.test(host)) return undefined;
    const sub = subdomain(domain, host);
    return sub === undefined ? undefined : [pfx, sub, ...tail];
  },
  // /$/io.buoyant.http.domainToPath/foo.buoyant.io/x -> /io/buoyant/foo/x
  'io.buoyant.http.domainToPath': ([host, ...tail]) => {
    if (host === undefined || !HOST.test(host)) return undefined;
    const labels = domainLabels(host);
    return labels === undefined ? undefined : [...labels, ...tail];
  },
  // /$/io.buoyant.http.domainToPathPfx/<pfx>/<a.b.c>/rest -> /<pfx>/c/b/a/rest
  'io.buoyant.http.domainToPathPfx': ([pfx, host, ...tail]) => {
    if (pfx === undefined || host === undefined || !HOST.test(host)) return undefined;
    const labels = domainLabels(host);
    return labels === undefined ? undefined : [pfx, ...labels, ...tail];
  },
};

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || !PORT.test(text)) return undefined;
  const port = Number(text);
  return port >= 0 && port <= 65535 ? port : undefined;
}

/**
 * Splits `host:port`, one colon only as Linkerd 1 (`a:80:x` is not of the form), or `[v6]:port`
 * (hostmesh's addition: IPv6 literals); undefined when it is not of that form.
 */
function splitHostPort(text: string): { host: string; port: string } | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = text.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) return { host: host.slice(1, -1), port: text.slice(colon + 1) };
  return host.includes(':') ? undefined : { host, port: text.slice(colon + 1) };
}

export interface InetAddrsOptions {
  /** An address no binding or explanation has named for this long is dropped (default 60 s). */
  readonly idleTtlMs?: number;
  /** Addresses kept at most; past it the least recently named goes first (default 1000). */
  readonly maxNames?: number;
  /** The clock of idle eviction (tests drive it). */
  readonly clock?: Clock;
}

export const INET_IDLE_TTL_MS = 60_000;
export const INET_MAX_NAMES = 1000;
/**
 * Longest host label shared through the map: a DNS name is at most 253 characters and an IPv6
 * literal 45, so a longer "host" (a 64 KB label in a /delegator.json POST) is request garbage; it
 * gets a Var of its own that lives as long as whatever holds it, and nothing is kept for it here.
 */
const MAX_SHARED_HOST = 255;

/**
 * Shares one addr Var per inet address among the bindings that name it at once. Every
 * `/$/inet/<host>/<port>` comes from a dtab, and overrides (l5d-dtab, /delegator.json?dtab=) are
 * request data, so the map is bounded like the namers' state: an address not named for idleTtl
 * is dropped, and at most maxNames are kept (least recently named first). A dropped address is
 * not lost: its Var is constant, so whoever still holds it keeps working, and naming it again
 * makes a new one.
 */
export class InetAddrs {
  /** In the order they were last named (oldest first). */
  readonly #addrs: BoundedMap<string, { readonly addr: Var<Addr>; named: number }>;
  readonly #idleTtlMs: number;
  readonly #max: number;
  readonly #now: () => number;
  /** Addresses dropped (idle or over maxNames): hostmesh_namer_evictions_total{namer="inet"}. */
  evictions = 0;

  constructor(options: InetAddrsOptions = {}) {
    this.#idleTtlMs = options.idleTtlMs ?? INET_IDLE_TTL_MS;
    this.#max = options.maxNames ?? INET_MAX_NAMES;
    // Insertion order: an address moves last when named again (set), not when read.
    this.#addrs = new BoundedMap({ name: 'inet_addrs', max: this.#max, order: 'insertion', onEvict: () => this.evictions++ });
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
  }

  get(host: string, port: number): Var<Addr> {
    if (host.length > MAX_SHARED_HOST) return new Var<Addr>({ kind: 'bound', endpoints: [{ host, port, meta: {} }] });
    this.evictIdle(); // at most the idle ones: it stops at the first address named within idleTtl
    const key = `${host} ${port}`;
    const now = this.#now();
    let entry = this.#addrs.get(key);
    if (entry === undefined) {
      entry = { addr: new Var<Addr>({ kind: 'bound', endpoints: [{ host, port, meta: {} }] }), named: now };
      if (this.#max <= 0) return entry.addr;
    } else {
      entry.named = now;
    }
    this.#addrs.set(key, entry); // re-inserted last: the map's order is the naming order
    return entry.addr;
  }

  /** Drops addresses not named for idleTtl; returns how many. */
  evictIdle(): number {
    const now = this.#now();
    let n = 0;
    for (const [key, e] of this.#addrs) {
      if (now - e.named < this.#idleTtlMs) break; // the rest were named later
      this.#addrs.delete(key);
      n++;
    }
    this.evictions += n;
    return n;
  }

  /** Addresses held now (hostmesh_namer_entries{namer="inet"}). */
  get size(): number {
    return this.#addrs.size;
  }
}

/** Resolves a path that starts with `/$`. `elems[0]` is `$`. */
export function resolveBuiltin(path: Path, inet: InetAddrs): BuiltinResult {
  const [, kind, ...rest] = path.elems;
  if (kind === undefined) return { kind: 'neg' }; // `/$` alone names nothing (Finagle: neg)
  switch (kind) {
    case 'fail':
      return { kind: 'fail' };
    case 'nil':
      return { kind: 'empty' };
    case 'inet':
    case 'fixedinet': // Finagle's inet without DNS re-resolution; hostmesh resolves neither (IPs, or a name once)
      return resolveInet(kind, rest, inet);
    case 'io.buoyant.rinet': {
      // /$/io.buoyant.rinet/<port>/<host>/rest: the address host:port, bound under its own id (as
      // Linkerd 1), so client configs for `/$/io.buoyant.rinet/443/{service}` apply to it.
      const [port, host, ...residual] = rest;
      if (port === undefined || host === undefined) return { kind: 'neg' };
      const p = parsePort(port);
      if (p === undefined) return { kind: 'error', message: `/$/io.buoyant.rinet: bad port '${port}'` };
      return { kind: 'bound', name: { id: new Path(['$', kind, port, host]), residual: new Path(residual), addr: inet.get(host, p) } };
    }
    case 'io.buoyant.hostportPfx':
    case 'io.buoyant.porthostPfx': {
      // /$/io.buoyant.hostportPfx/<pfx>/<host:port>/rest -> /<pfx>/<host>/<port>/rest (porthost swaps)
      const [pfx, hostPort, ...residual] = rest;
      if (pfx === undefined || hostPort === undefined) return { kind: 'neg' };
      const hp = splitHostPort(hostPort);
      // A port number, or a named port (a DNS label, as Linkerd 1: `world:http` for a Service port name).
      if (hp === undefined || hp.host === '' || !(parsePort(hp.port) !== undefined || NAMED_PORT.test(hp.port))) return { kind: 'neg' };
      const pair = kind === 'io.buoyant.hostportPfx' ? [hp.host, hp.port] : [hp.port, hp.host];
      return { kind: 'rewrite', via: kind, path: new Path([pfx, ...pair, ...residual]) };
    }
    default: {
      const rewritten = kind !== undefined && kind in HTTP_REWRITES ? (HTTP_REWRITES[kind] as (r: readonly string[]) => string[] | undefined)(rest) : undefined;
      if (kind !== undefined && kind in HTTP_REWRITES) {
        return rewritten === undefined ? { kind: 'neg' } : { kind: 'rewrite', via: kind, path: new Path(rewritten) };
      }
      return { kind: 'error', message: `unknown built-in namer /$/${kind ?? ''} in ${path.show()}` };
    }
  }
}

function resolveInet(kind: string, rest: readonly string[], inet: InetAddrs): BuiltinResult {
  const [first, second, ...residual] = rest;
  if (first === undefined) return { kind: 'error', message: `/$/${kind} needs a port: /$/${kind}/<host>/<port>` };
  const soloPort = parsePort(first);
  if (second === undefined || (soloPort !== undefined && parsePort(second) === undefined)) {
    // /$/inet/<port>[/residual]: the wildcard address, which a client reaches as this host.
    if (soloPort === undefined) return { kind: 'error', message: `/$/${kind}: bad port '${first}'` };
    const tail = second === undefined ? [] : [second, ...residual];
    return {
      kind: 'bound',
      name: { id: new Path(['$', kind, first]), residual: new Path(tail), addr: inet.get('127.0.0.1', soloPort) },
    };
  }
  const port = parsePort(second);
  if (port === undefined) return { kind: 'error', message: `/$/${kind}: bad port '${second}'` };
  return {
    kind: 'bound',
    name: { id: new Path(['$', kind, first, second]), residual: new Path(residual), addr: inet.get(first, port) },
  };
}
