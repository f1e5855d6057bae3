// The `/$/...` names every router understands without configuration (Finagle's and Linkerd 1's
// built-in namers): inet addresses, fail, nil, and the host/port rewriting helpers.

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

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || !PORT.test(text)) return undefined;
  const port = Number(text);
  return port >= 0 && port <= 65535 ? port : undefined;
}

/** Splits `host:port` (or `[v6]:port`); undefined when it is not of that form. */
function splitHostPort(text: string): { host: string; port: string } | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let host = text.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: text.slice(colon + 1) };
}

/** Keeps one addr Var per inet id so every binding of the same address shares balancer state. */
export class InetAddrs {
  readonly #addrs = new Map<string, Var<Addr>>();

  get(host: string, port: number): Var<Addr> {
    const key = `${host} ${port}`;
    let addr = this.#addrs.get(key);
    if (addr === undefined) {
      addr = new Var<Addr>({ kind: 'bound', endpoints: [{ host, port, meta: {} }] });
      this.#addrs.set(key, addr);
    }
    return addr;
  }
}

/** Resolves a path that starts with `/$`. `elems[0]` is `$`. */
export function resolveBuiltin(path: Path, inet: InetAddrs): BuiltinResult {
  const [, kind, ...rest] = path.elems;
  switch (kind) {
    case 'fail':
      return { kind: 'fail' };
    case 'nil':
      return { kind: 'empty' };
    case 'inet':
      return resolveInet(rest, inet);
    case 'io.buoyant.rinet': {
      // /$/io.buoyant.rinet/<port>/<host>/rest -> /$/inet/<host>/<port>/rest
      const [port, host, ...residual] = rest;
      if (port === undefined || host === undefined) return { kind: 'neg' };
      return { kind: 'rewrite', via: kind, path: new Path(['$', 'inet', host, port, ...residual]) };
    }
    case 'io.buoyant.hostportPfx':
    case 'io.buoyant.porthostPfx': {
      // /$/io.buoyant.hostportPfx/<pfx>/<host:port>/rest -> /<pfx>/<host>/<port>/rest (porthost swaps)
      const [pfx, hostPort, ...residual] = rest;
      if (pfx === undefined || hostPort === undefined) return { kind: 'neg' };
      const hp = splitHostPort(hostPort);
      if (hp === undefined || parsePort(hp.port) === undefined) return { kind: 'neg' };
      const pair = kind === 'io.buoyant.hostportPfx' ? [hp.host, hp.port] : [hp.port, hp.host];
      return { kind: 'rewrite', via: kind, path: new Path([pfx, ...pair, ...residual]) };
    }
    case 'io.buoyant.http.domainToPathPfx': {
      // /$/io.buoyant.http.domainToPathPfx/<pfx>/<a.b.c>/rest -> /<pfx>/c/b/a/rest
      const [pfx, domain, ...residual] = rest;
      if (pfx === undefined || domain === undefined) return { kind: 'neg' };
      const hostOnly = domain.replace(/:[0-9]*$/, '');
      const labels = hostOnly
        .split('.')
        .filter((l) => l.length > 0)
        .reverse();
      return { kind: 'rewrite', via: kind, path: new Path([pfx, ...labels, ...residual]) };
    }
    default:
      return { kind: 'error', message: `unknown built-in namer /$/${kind ?? ''} in ${path.show()}` };
  }
}

function resolveInet(rest: readonly string[], inet: InetAddrs): BuiltinResult {
  const [first, second, ...residual] = rest;
  if (first === undefined) return { kind: 'error', message: '/$/inet needs a port: /$/inet/<host>/<port>' };
  const soloPort = parsePort(first);
  if (second === undefined || (soloPort !== undefined && parsePort(second) === undefined)) {
    // /$/inet/<port>[/residual]: the wildcard address, which a client reaches as this host.
    if (soloPort === undefined) return { kind: 'error', message: `/$/inet: bad port '${first}'` };
    const tail = second === undefined ? [] : [second, ...residual];
    return {
      kind: 'bound',
      name: { id: new Path(['$', 'inet', first]), residual: new Path(tail), addr: inet.get('127.0.0.1', soloPort) },
    };
  }
  const port = parsePort(second);
  if (port === undefined) return { kind: 'error', message: `/$/inet: bad port '${second}'` };
  return {
    kind: 'bound',
    name: { id: new Path(['$', 'inet', first, second]), residual: new Path(residual), addr: inet.get(first, port) },
  };
}
