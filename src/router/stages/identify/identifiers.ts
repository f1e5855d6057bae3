// Linkerd 1's HTTP identifiers: each turns a request (already normalized to origin-form with its
// Host) into a logical name under the router's dstPrefix. A router tries its list in turn.

import { BoundedMap } from '../../../core/bounded-map.js';
import { Path } from '../../../dtab/path.js';
import { DtabParseError, parsePath } from '../../../dtab/parse.js';
import { type ErrorCode, HostmeshError } from '../../../errors.js';
import type { IngressLookup } from './ingress.js';

export interface RequestFacts {
  readonly method: string;
  /** Normalized Host (lowercased, `:80` dropped), or undefined when the request had none. */
  readonly host: string | undefined;
  /** Origin-form target: path and query. */
  readonly target: string;
  readonly httpVersion: string;
  readonly header: (name: string) => string | undefined;
}

/** A name, or why this identifier could not name the request. */
export type Identification = { readonly name: Path; readonly target?: string } | { readonly unidentified: string; readonly code?: ErrorCode };

/**
 * One identifier's config: its kind and options (config/kinds.ts validates each kind's options; the
 * builders below read them with their defaults).
 */
export interface IdentifierConfig {
  readonly kind: string;
  readonly [option: string]: unknown;
}

/** What some identifiers need from the running process (io.l5d.ingress: its Ingress watch). */
export interface IdentifierDeps {
  /** The Ingress lookup for one io.l5d.ingress config (started by the caller, which stops it). */
  readonly ingress?: (cfg: IdentifierConfig) => (host: string | undefined, path: string) => IngressLookup;
}

export type Identifier = (req: RequestFacts) => Identification;

function str(cfg: IdentifierConfig, key: string, dflt: string): string {
  const v = cfg[key];
  return typeof v === 'string' ? v : dflt;
}

function num(cfg: IdentifierConfig, key: string, dflt: number): number {
  const v = cfg[key];
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : dflt;
}

function pathOption(cfg: IdentifierConfig, key: string, dflt: string): Path {
  try {
    return parsePath(str(cfg, key, dflt));
  } catch (err) {
    if (err instanceof DtabParseError) throw new Error(`identifier ${cfg.kind}: ${key}: ${err.message}`);
    throw err;
  }
}

/** The path part of an origin-form target (before `?` or `#`). */
function pathPart(target: string): string {
  const q = target.search(/[?#]/);
  return q === -1 ? target : target.slice(0, q);
}

/**
 * The segments of a target's path as Linkerd 1's io.l5d.path splits them: after the leading `/`,
 * trailing empty segments dropped (`/a/b/` is a, b), empty ones inside kept (`/a//b` is a, '', b).
 */
function segments(target: string): string[] {
  const segs = pathPart(target).split('/').slice(1);
  while (segs.length > 0 && segs[segs.length - 1] === '') segs.pop();
  return segs;
}

/**
 * The first `n` segments as a name, or why not: too few, or an empty one among them (`//`, which
 * Linkerd 1 refuses: a path label cannot be empty).
 */
function firstSegments(target: string, n: number): string[] | Identification {
  const segs = segments(target);
  if (segs.length < n) return { unidentified: `the path has fewer than ${n} segment(s)` };
  const first = segs.slice(0, n);
  if (first.includes('')) return { unidentified: `the path has an empty segment: '${pathPart(target).slice(0, 100)}'` };
  return first;
}

/** A request path read as a dtab path (Linkerd 1's Path.read of it), or why it is not one. */
function uriPath(text: string): Path | Identification {
  try {
    return parsePath(text);
  } catch (err) {
    if (err instanceof DtabParseError) return { unidentified: `the path is not a name: ${err.message}` };
    throw err;
  }
}

function noHost(req: RequestFacts): Identification {
  return { unidentified: `cannot identify ${req.method} ${req.target.slice(0, 100)}: no Host` };
}

/** Builds one identifier from its config; throws (at startup) on a bad option. */
/** Names an io.l5d.header.token identifier keeps made (per identifier), and the longest value kept. */
const NAME_CACHE_ENTRIES = 1000;
const NAME_CACHE_MAX_CHARS = 253; // a DNS name's longest text

export function buildIdentifier(cfg: IdentifierConfig, routerPrefix: Path, deps: IdentifierDeps = {}): Identifier {
  const prefix = typeof cfg['dstPrefix'] === 'string' ? pathOption(cfg, 'dstPrefix', '/svc') : routerPrefix;
  switch (cfg.kind) {
    case 'io.l5d.header.token': {
      const header = str(cfg, 'header', 'Host').toLowerCase();
      // The names of the usual values, made once (a Path and its text per request showed in the
      // profiles). Values come from clients: the cache is capped, first in first out, and keeps
      // only short ones.
      const names = new BoundedMap<string, Path>({ name: 'identifier_names', max: NAME_CACHE_ENTRIES, order: 'insertion' });
      return (req) => {
        // An HTTP/2 request's :authority is its Host (RFC 9113 8.3.1): both read the normalized one.
        const host = header === 'host' || header === ':authority';
        const value = host ? req.host : req.header(header);
        if (value === undefined || value === '') return host ? noHost(req) : { unidentified: `no ${header} header` };
        let name = names.get(value);
        if (name === undefined) {
          name = prefix.concat(new Path([value]));
          if (value.length <= NAME_CACHE_MAX_CHARS) names.set(value, name);
        }
        return { name };
      };
    }
    case 'io.l5d.methodAndHost': {
      const uriInDst = cfg['httpUriInDst'] === true;
      return (req) => {
        // As Linkerd 1: /svc/1.1/GET/host[/uri...]; HTTP/1.0 names carry no host.
        const elems = req.httpVersion === '1.0' ? ['1.0', req.method] : ['1.1', req.method];
        if (req.httpVersion !== '1.0') {
          if (req.host === undefined) return noHost(req);
          elems.push(req.host);
        }
        const name = prefix.concat(new Path(elems));
        if (!uriInDst) return { name };
        // Linkerd 1 reads the path as a dtab path: `/` is nothing more, `/a/` or `/a~b` are refused.
        const uri = uriPath(pathPart(req.target));
        return uri instanceof Path ? { name: name.concat(uri) } : uri;
      };
    }
    case 'io.l5d.path': {
      const n = num(cfg, 'segments', 1);
      const consume = cfg['consume'] === true;
      return (req) => {
        const segs = firstSegments(req.target, n);
        if (!Array.isArray(segs)) return segs;
        const name = prefix.concat(new Path(segs));
        if (!consume) return { name };
        // Drop the consumed segments (none is empty), keep the rest of the path and the query.
        let cut = 0;
        for (let seen = 0; seen < n; seen++) {
          cut = req.target.indexOf('/', cut) + 1;
          const next = req.target.slice(cut).search(/[/?#]/);
          cut = next === -1 ? req.target.length : cut + next;
        }
        const rest = req.target.slice(cut);
        return { name, target: rest === '' ? '/' : rest[0] === '/' ? rest : `/${rest}` };
      };
    }
    case 'io.l5d.header.path': {
      // Linkerd 1's h2 path identifier: a header (`:path` by default) read as a path up to `?`, one
      // trailing `/` dropped; its first `segments`, or all of it when unset; the target unchanged.
      const header = str(cfg, 'header', ':path').toLowerCase();
      const n = typeof cfg['segments'] === 'number' ? num(cfg, 'segments', 1) : undefined;
      return (req) => {
        const value = header === ':path' ? req.target : (req.header(header) ?? '');
        const q = value.indexOf('?');
        const text = (q === -1 ? value : value.slice(0, q)).replace(/\/$/, '');
        const path = text === '' ? Path.empty : uriPath(text);
        if (!(path instanceof Path)) return path;
        if (n === undefined) return path.isEmpty ? { unidentified: `no destination path in ${header}` } : { name: prefix.concat(path) };
        if (path.size < n) return { unidentified: `the path has fewer than ${n} segment(s)` };
        return { name: prefix.concat(path.take(n)) };
      };
    }
    case 'io.l5d.header': {
      const header = str(cfg, 'header', 'l5d-name').toLowerCase();
      return (req) => {
        const value = req.header(header);
        if (value === undefined || value === '') return { unidentified: `no ${header} header` };
        try {
          return { name: prefix.concat(parsePath(value)) };
        } catch (err) {
          if (err instanceof DtabParseError) return { unidentified: `${header} is not a path: ${err.message}` };
          throw err;
        }
      };
    }
    case 'io.l5d.static': {
      const name = prefix.concat(pathOption(cfg, 'path', '/'));
      return () => ({ name });
    }
    case 'io.l5d.ingress': {
      // As Linkerd 1: <dstPrefix>/<namespace>/<port>/<service> of the first matching rule.
      const lookup = deps.ingress?.(cfg);
      if (lookup === undefined) return () => ({ unidentified: 'the ingress watch is not running', code: 'INGRESS_NOT_READY' });
      return (req) => {
        const q = req.target.search(/[?#]/);
        const r = lookup(req.host, q === -1 ? req.target : req.target.slice(0, q));
        if ('backend' in r) return { name: prefix.concat(new Path([r.backend.namespace, r.backend.port, r.backend.service])) };
        return { unidentified: r.unidentified, code: r.notSynced === true ? 'INGRESS_NOT_READY' : 'NO_INGRESS_RULE' };
      };
    }
    default:
      throw new Error(
        `identifier ${cfg.kind} is not supported (io.l5d.header.token, io.l5d.methodAndHost, io.l5d.path, io.l5d.header, io.l5d.static, io.l5d.header.path, io.l5d.ingress)`,
      );
  }
}

/** The router's identifier list: the first that names the request wins. */
export function buildIdentifiers(
  configs: readonly IdentifierConfig[],
  routerPrefix: Path,
  deps: IdentifierDeps = {},
): (req: RequestFacts) => { name: Path; target: string } {
  const ids = configs.map((c) => buildIdentifier(c, routerPrefix, deps));
  return (req) => {
    let why = 'no identifier';
    let code: ErrorCode | undefined;
    for (const id of ids) {
      const r = id(req);
      if ('name' in r) return { name: r.name, target: r.target ?? req.target };
      why = r.unidentified;
      code = r.code;
    }
    throw new HostmeshError(code ?? (req.host === undefined ? 'NO_HOST' : 'BAD_REQUEST'), why);
  };
}
