// Linkerd 1's io.l5d.ingress identifier: Kubernetes Ingress resources (networking.k8s.io/v1) as
// routes. An ingress is served when its class (the kubernetes.io/ingress.class annotation, else
// spec.ingressClassName) is absent or equals the configured class (default `linkerd`). A request
// is matched on its Host (rules[].host, exact or a `*.` one-label wildcard) and path; the backend
// names `<dstPrefix>/<namespace>/<port>/<service>` (port: number or name as written), as Linkerd 1.
//
// Ingresses are tenant input: each object is projected to the fields used (strings bounded), an
// ingress with more paths than maxRulesPerIngress or an unsafe/oversized regex is refused whole,
// and at most maxIngresses are served. See docs/ingress.md.

import type { IngressRefusal, RouterPartEvents } from '../../events.js';
import { setFlagsFromString } from 'node:v8';
import type { K8sClient, KObject } from '../../../k8s/client.js';
import type { BackoffOptions } from '../../../k8s/backoff.js';
import { Informer } from '../../../k8s/informer.js';
import type { Resource } from '../../../k8s/resources.js';
import type { Logger } from '../../../log.js';

export const INGRESSES: Resource = { group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', namespaced: true };
export const CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

export const DEFAULT_MAX_INGRESSES = 1000;
export const DEFAULT_MAX_RULES_PER_INGRESS = 100;
/** Bounds of one kept string: DNS names, paths (and regexes), port names. */
export const MAX_HOST_CHARS = 253;
export const MAX_PATH_CHARS = 256;
export const MAX_PORT_NAME_CHARS = 63;
/** Request paths longer than this never match a regex rule (the regex work stays bounded). */
export const MAX_REGEX_SUBJECT_CHARS = 2048;

export interface Backend {
  readonly namespace: string;
  /** The port as written: a number in decimal, or a port name. */
  readonly port: string;
  readonly service: string;
}

export type PathMatch =
  | { readonly type: 'Any' }
  | { readonly type: 'Prefix'; readonly elems: readonly string[] }
  | { readonly type: 'Exact'; readonly path: string }
  | { readonly type: 'Regex'; readonly re: RegExp };

export interface Rule {
  /** Lowercased host, a `*.suffix` wildcard, or undefined (any host). */
  readonly host: string | undefined;
  readonly path: PathMatch;
  readonly backend: Backend;
}

export interface CompiledIngress {
  readonly key: string;
  readonly rules: readonly Rule[];
  readonly fallback: Backend | undefined;
}

export type Refusal = IngressRefusal;

// --- projection: keep only what routing uses, bounded ---------------------------------------------

/** The projection of an Ingress the informer keeps: small whatever the tenant wrote. */
export interface ProjectedIngress extends KObject {
  readonly l5d: {
    readonly cls: string | undefined;
    /** Why it cannot be served whatever the config (too many paths, oversized strings), or undefined. */
    readonly refused: Refusal | undefined;
    readonly paths: readonly { host?: string; path?: string; pathType?: string; service?: string; port?: string }[];
    readonly fallback: { service?: string; port?: string } | undefined;
  };
}

function s(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function backendOf(b: unknown): { service?: string; port?: string } | undefined {
  const svc = rec(rec(b)['service']);
  const name = s(svc['name']);
  const port = rec(svc['port']);
  const num = port['number'];
  const portStr = typeof num === 'number' && Number.isInteger(num) ? String(num) : s(port['name']);
  if (name === undefined && portStr === undefined) return undefined; // resource backends, nothing
  return { ...(name !== undefined ? { service: name } : {}), ...(portStr !== undefined ? { port: portStr } : {}) };
}

/** Projects a raw Ingress; `maxRules` paths at most are read (one more marks it too_many_rules). */
export function projectIngress(raw: KObject, maxRules: number): ProjectedIngress {
  const md = raw.metadata;
  const annotations = rec((md as unknown as Record<string, unknown>)['annotations']);
  const spec = rec((raw as unknown as Record<string, unknown>)['spec']);
  const cls = s(annotations[CLASS_ANNOTATION]) ?? s(spec['ingressClassName']);
  const paths: { host?: string; path?: string; pathType?: string; service?: string; port?: string }[] = [];
  let refused: Refusal | undefined;
  const tooLong = (v: string | undefined, max: number): boolean => v !== undefined && v.length > max;
  const rules = Array.isArray(spec['rules']) ? (spec['rules'] as unknown[]) : [];
  outer: for (const r of rules) {
    const host = s(rec(r)['host']);
    const http = rec(rec(r)['http']);
    const ps = Array.isArray(http['paths']) ? (http['paths'] as unknown[]) : [];
    for (const p of ps) {
      if (paths.length >= maxRules) {
        refused = 'too_many_rules';
        break outer;
      }
      const path = s(rec(p)['path']);
      const pathType = s(rec(p)['pathType']);
      const b = backendOf(rec(p)['backend']);
      if (
        tooLong(host, MAX_HOST_CHARS) ||
        tooLong(path, MAX_PATH_CHARS) ||
        tooLong(pathType, 32) ||
        tooLong(b?.service, MAX_HOST_CHARS) ||
        tooLong(b?.port, MAX_PORT_NAME_CHARS)
      ) {
        refused = 'too_large';
        break outer;
      }
      paths.push({
        ...(host !== undefined ? { host } : {}),
        ...(path !== undefined ? { path } : {}),
        ...(pathType !== undefined ? { pathType } : {}),
        ...(b ?? {}),
      });
    }
  }
  let fallback = backendOf(spec['defaultBackend']);
  if (fallback !== undefined && (tooLong(fallback.service, MAX_HOST_CHARS) || tooLong(fallback.port, MAX_PORT_NAME_CHARS))) {
    refused ??= 'too_large';
    fallback = undefined;
  }
  const name = md.name.slice(0, MAX_HOST_CHARS);
  const namespace = (md.namespace ?? 'default').slice(0, MAX_HOST_CHARS);
  return {
    metadata: { name, namespace, ...(md.resourceVersion !== undefined ? { resourceVersion: md.resourceVersion } : {}) },
    l5d: {
      cls: cls === undefined ? undefined : cls.slice(0, MAX_HOST_CHARS),
      refused,
      paths: refused === undefined ? paths : [],
      fallback: refused === undefined ? fallback : undefined,
    },
  } as ProjectedIngress;
}

// --- regexes (Linkerd 1's ImplementationSpecific paths) -------------------------------------------

/**
 * Whether a tenant's regex is safe to run on every request: no backreferences, and no quantifier
 * applied to a group that itself holds a quantifier or an alternation (the shapes of catastrophic
 * backtracking, e.g. `(a+)+`, `(a|a)*`). Conservative: some harmless regexes are refused too.
 */
export function safeRegex(src: string): boolean {
  if (src.length > MAX_PATH_CHARS) return false;
  // Per open group: did it contain a quantifier or an alternation?
  const stack: boolean[] = [];
  let lastGroupRisky = false;
  let prevWasGroupEnd = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as string;
    const isQuant = c === '*' || c === '+' || c === '?' || c === '{';
    if (isQuant && !(c === '?' && src[i - 1] === '(')) {
      if (prevWasGroupEnd && lastGroupRisky) return false;
      if (stack.length > 0) stack[stack.length - 1] = true;
      if (c === '{') {
        const end = src.indexOf('}', i);
        if (end !== -1) i = end;
      }
      prevWasGroupEnd = false;
      continue;
    }
    prevWasGroupEnd = false;
    if (c === '\\') {
      const n = src[i + 1];
      if (n !== undefined && (/[1-9]/.test(n) || n === 'k')) return false;
      i++;
      continue;
    }
    if (c === '[') {
      // A class: skip to its end (escapes inside included).
      let j = i + 1;
      if (src[j] === '^') j++;
      if (src[j] === ']') j++;
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? 2 : 1;
      i = j;
      continue;
    }
    if (c === '(') stack.push(false);
    else if (c === '|') {
      if (stack.length > 0) stack[stack.length - 1] = true;
    } else if (c === ')') {
      const risky = stack.pop() ?? false;
      if (stack.length > 0 && risky) stack[stack.length - 1] = true;
      lastGroupRisky = risky;
      prevWasGroupEnd = true;
    }
  }
  return true;
}

/**
 * V8's linear-time regex engine (the `l` flag, enabled by a V8 flag that changes nothing else):
 * a tenant's regex then runs in time linear in the path whatever its shape (`(a+)+`, `a*a*a*...`).
 * Without it (another runtime), only regexes safeRegex accepts with at most two quantifiers run.
 */
const LINEAR_FLAG = 'l';
const LINEAR: boolean = (() => {
  try {
    setFlagsFromString('--enable-experimental-regexp-engine');
    new RegExp('a', LINEAR_FLAG);
    return true;
  } catch {
    return false;
  }
})();

/** Compiles a Linkerd 1 path regex, matched against the whole request path; undefined when refused. */
export function compileRegex(src: string): RegExp | undefined {
  if (src.length > MAX_PATH_CHARS) return undefined;
  try {
    if (LINEAR) return new RegExp(`^(?:${src})$`, LINEAR_FLAG); // refuses backreferences and lookarounds
    if (!safeRegex(src) || (src.match(/[*+?{]/g)?.length ?? 0) > 2) return undefined;
    return new RegExp(`^(?:${src})$`);
  } catch {
    return undefined;
  }
}

function pathElems(p: string): string[] {
  return p.split('/').filter((e) => e !== '');
}

/** The match of one path entry: Prefix and Exact as Kubernetes defines them; else Linkerd 1's regex. */
export function compilePath(path: string | undefined, pathType: string | undefined): PathMatch | undefined {
  if (path === undefined || path === '') return { type: 'Any' };
  if (pathType === 'Prefix') return pathElems(path).length === 0 ? { type: 'Any' } : { type: 'Prefix', elems: pathElems(path) };
  if (pathType === 'Exact') return { type: 'Exact', path };
  const re = compileRegex(path);
  return re === undefined ? undefined : { type: 'Regex', re };
}

export function pathMatches(m: PathMatch, reqPath: string): boolean {
  switch (m.type) {
    case 'Any':
      return true;
    case 'Exact':
      return reqPath === m.path;
    case 'Prefix': {
      const elems = pathElems(reqPath);
      if (elems.length < m.elems.length) return false;
      for (let i = 0; i < m.elems.length; i++) if (elems[i] !== m.elems[i]) return false;
      return true;
    }
    case 'Regex':
      return reqPath.length <= MAX_REGEX_SUBJECT_CHARS && m.re.test(reqPath);
  }
}

// --- compiling and matching ---------------------------------------------------------------------

export interface CompileOptions {
  /** The served class (Linkerd 1's ingressClassAnnotation, default `linkerd`). */
  readonly cls: string;
  readonly ignoreDefaultBackends: boolean;
}

export function compileIngress(p: ProjectedIngress, o: CompileOptions): CompiledIngress | Refusal {
  if (p.l5d.cls !== undefined && p.l5d.cls !== o.cls) return 'class';
  if (p.l5d.refused !== undefined) return p.l5d.refused;
  const namespace = p.metadata.namespace ?? 'default';
  const rules: Rule[] = [];
  for (const e of p.l5d.paths) {
    if (e.service === undefined || e.port === undefined) return 'no_backend';
    const path = compilePath(e.path, e.pathType);
    if (path === undefined) return 'bad_regex';
    rules.push({ host: e.host?.toLowerCase() || undefined, path, backend: { namespace, port: e.port, service: e.service } });
  }
  const f = p.l5d.fallback;
  const fallback = !o.ignoreDefaultBackends && f?.service !== undefined && f.port !== undefined ? { namespace, port: f.port, service: f.service } : undefined;
  return { key: `${namespace}/${p.metadata.name}`, rules, fallback };
}

/** The request's host for matching: lowercased, without its port. */
export function matchHost(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  const h = host.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.lastIndexOf(':');
  return colon === -1 || h.indexOf(':') !== colon ? h : h.slice(0, colon);
}

/**
 * The served ingresses as a lookup. Order (documented): rules whose host equals the request's,
 * then `*.` wildcard rules, then rules without a host; within each, Exact, regex, Prefix (longest
 * first), no path, ties in (namespace/name, rule, path) order; then default backends in ingress
 * order. First match wins.
 */
export class IngressTable {
  readonly #exact = new Map<string, Rule[]>();
  readonly #wild = new Map<string, Rule[]>();
  readonly #any: Rule[] = [];
  readonly #fallbacks: Backend[] = [];
  readonly size: number;
  readonly rules: number;

  constructor(ingresses: readonly CompiledIngress[]) {
    const sorted = [...ingresses].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let n = 0;
    for (const ing of sorted) {
      for (const r of ing.rules) {
        n++;
        if (r.host === undefined) this.#any.push(r);
        else if (r.host.startsWith('*.')) push(this.#wild, r.host.slice(2), r);
        else push(this.#exact, r.host, r);
      }
      if (ing.fallback !== undefined) this.#fallbacks.push(ing.fallback);
    }
    // As Kubernetes: within a host, Exact paths first, then regexes (Linkerd 1's), then Prefix paths
    // longest first, then rules without a path; ties keep the ingress and rule order.
    for (const list of [...this.#exact.values(), ...this.#wild.values(), this.#any]) list.sort((a, b) => rank(b.path) - rank(a.path));
    this.size = sorted.length;
    this.rules = n;
  }

  match(host: string | undefined, path: string): Backend | undefined {
    const h = matchHost(host);
    if (h !== undefined) {
      const exact = first(this.#exact.get(h), path);
      if (exact !== undefined) return exact;
      const dot = h.indexOf('.');
      if (dot > 0) {
        const wild = first(this.#wild.get(h.slice(dot + 1)), path);
        if (wild !== undefined) return wild;
      }
    }
    return first(this.#any, path) ?? this.#fallbacks[0];
  }
}

function rank(p: PathMatch): number {
  switch (p.type) {
    case 'Exact':
      return 1_000_000;
    case 'Regex':
      return 500_000;
    case 'Prefix':
      return 1 + p.elems.length;
    case 'Any':
      return 0;
  }
}

function push(m: Map<string, Rule[]>, k: string, r: Rule): void {
  const l = m.get(k);
  if (l === undefined) m.set(k, [r]);
  else l.push(r);
}

function first(rules: readonly Rule[] | undefined, path: string): Backend | undefined {
  if (rules === undefined) return undefined;
  for (const r of rules) if (pathMatches(r.path, path)) return r.backend;
  return undefined;
}

// --- the source: an informer kept as a table ------------------------------------------------------

export interface IngressSourceOptions extends CompileOptions {
  readonly client: K8sClient;
  readonly namespace?: string;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  readonly maxIngresses?: number;
  readonly maxRulesPerIngress?: number;
  /** Called once per ingress version refused (not served), with why. */
  readonly events?: Pick<RouterPartEvents, 'ingressRefused' | 'ingressServed'>;
  /** Called with the served counts after each rebuild. */
}

export type IngressLookup = { readonly backend: Backend } | { readonly unidentified: string; readonly notSynced?: true };

export class IngressSource {
  readonly #o: IngressSourceOptions;
  readonly informer: Informer<ProjectedIngress>;
  #table = new IngressTable([]);
  #dirty = false;
  /** Keys of the Ingresses kept with their rules (at most maxIngresses). */
  readonly #full = new Set<string>();
  /** Refusals already reported, by key and resourceVersion (so a rebuild does not count them again). */
  #reported = new Map<string, string>();

  constructor(o: IngressSourceOptions) {
    this.#o = o;
    const maxRules = o.maxRulesPerIngress ?? DEFAULT_MAX_RULES_PER_INGRESS;
    const maxIngresses = o.maxIngresses ?? DEFAULT_MAX_INGRESSES;
    this.informer = new Informer<ProjectedIngress>({
      client: o.client,
      resource: INGRESSES,
      ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
      logger: o.logger,
      ...(o.backoff !== undefined ? { backoff: o.backoff } : {}),
      // Past maxIngresses kept with rules, a new Ingress is kept as its name only (over_max_ingresses):
      // what the watch holds stays bounded by maxIngresses x maxRulesPerIngress bounded strings.
      project: (raw) => {
        const key = `${raw.metadata.namespace ?? ''}/${raw.metadata.name}`;
        if (this.#full.size >= maxIngresses && !this.#full.has(key)) return stub(raw, 'over_max_ingresses');
        const p = projectIngress(raw, maxRules);
        // Another controller's Ingress: its class is all that is kept, and it takes no slot.
        if (p.l5d.cls !== undefined && p.l5d.cls !== o.cls) {
          this.#full.delete(key);
          return stub(raw, undefined, p.l5d.cls);
        }
        if (p.l5d.paths.length > 0 || p.l5d.fallback !== undefined) this.#full.add(key);
        else this.#full.delete(key);
        return p;
      },
    });
    // Rebuilt once per burst of events (a list of thousands is one rebuild), and at the latest by
    // the next request.
    this.informer.on((e) => {
      if (e.type === 'delete') this.#full.delete(keyOf(e.object));
      if (this.#dirty) return;
      this.#dirty = true;
      setImmediate(() => {
        if (this.#dirty) this.#rebuild();
      }).unref();
    });
  }

  start(): this {
    this.informer.start();
    return this;
  }

  async stop(): Promise<void> {
    await this.informer.stop();
    await this.#o.client.close();
  }

  get table(): IngressTable {
    if (this.#dirty) this.#rebuild();
    return this.#table;
  }

  #rebuild(): void {
    this.#dirty = false;
    const max = this.#o.maxIngresses ?? DEFAULT_MAX_INGRESSES;
    const all = this.informer.list().sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    const kept: CompiledIngress[] = [];
    const reported = new Map<string, string>();
    for (const p of all) {
      let c = compileIngress(p, this.#o);
      if (typeof c !== 'string' && kept.length >= max) c = 'over_max_ingresses';
      if (typeof c !== 'string') {
        kept.push(c);
        continue;
      }
      if (c === 'class') continue;
      const k = keyOf(p);
      const version = `${p.metadata.resourceVersion ?? ''}:${c}`;
      reported.set(k, version);
      if (this.#reported.get(k) !== version) {
        this.#o.logger.warn({ ingress: k, reason: c }, 'ingress not served');
        this.#o.events?.ingressRefused(c);
      }
    }
    this.#reported = reported;
    this.#table = new IngressTable(kept);
    this.#o.events?.ingressServed(this.#table.size, this.#table.rules);
  }

  lookup(host: string | undefined, path: string): IngressLookup {
    if (!this.informer.synced) {
      return { unidentified: `ingresses not listed yet${this.informer.lastError !== undefined ? ` (${this.informer.lastError})` : ''}`, notSynced: true };
    }
    const b = this.table.match(host, path);
    if (b === undefined) return { unidentified: `no ingress rule matches ${(host ?? '').slice(0, 100)}${path.slice(0, 100)}` };
    return { backend: b };
  }
}

function stub(raw: KObject, refused: Refusal | undefined, cls?: string): ProjectedIngress {
  return {
    metadata: {
      name: raw.metadata.name.slice(0, MAX_HOST_CHARS),
      namespace: (raw.metadata.namespace ?? 'default').slice(0, MAX_HOST_CHARS),
      ...(raw.metadata.resourceVersion !== undefined ? { resourceVersion: raw.metadata.resourceVersion } : {}),
    },
    l5d: { cls, refused, paths: [], fallback: undefined },
  } as ProjectedIngress;
}

function keyOf(p: KObject): string {
  return `${p.metadata.namespace ?? ''}/${p.metadata.name}`;
}
