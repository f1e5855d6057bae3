// Linkerd 1's per-prefix (`kind: io.l5d.static`) service and client settings: every config whose
// prefix matches a name applies, in order, later ones overriding earlier ones key by key.

import { BoundedMap } from '../../core/bounded-map.js';
import type { RouterPartEvents } from '../events.js';
import { parsePath, parsePrefix } from '../../dtab/parse.js';
import type { Path, Prefix } from '../../dtab/prefix.js';
import { type ElementPattern, elementPattern, matchElement, substituteVars } from '../../dtab/path-matcher.js';
import type { ClientSettings, ClientSpec, ServiceSettings, ServiceSpec } from './spec.js';

export type { ClientSettings, ServiceSettings } from './spec.js';

/** A config prefix: a dtab prefix (matched as dentry prefixes are) whose `{name}` elements capture a label. */
export interface ConfigPrefix {
  readonly prefix: Prefix;
  /** The capture name of each element that is a whole `{name}` (undefined: a literal label, `*`, or a partial capture). */
  readonly captures: readonly (string | undefined)[];
  /** Elements with `{name}`s inside literal text (`{service}:https`), which the label must also match. */
  readonly partial: readonly { readonly index: number; readonly pattern: ElementPattern }[];
}

/**
 * Parses a config prefix with the dtab parser. A `{name}` element (Linkerd 1's variables, e.g.
 * `/$/inet/{host}/443` with `commonName: "{host}"`) matches like `*`; its label is captured. An
 * element with captures inside literal text (`{service}:https`, Linkerd 1's PathMatcher) matches
 * labels of that form. Throws the dtab parser's DtabParseError for anything else that is not a prefix.
 */
export function parseConfigPrefix(given: string): ConfigPrefix {
  // Linkerd 1's PathMatcher ignored a trailing `/` (`/#/io.l5d.fs/`); a dtab prefix has none.
  const text = given.length > 1 && given.endsWith('/') ? given.slice(0, -1) : given;
  // `/` can only separate elements (an escaped slash is `\x2f`), so splitting finds whole elements.
  const elems = text.split('/');
  const patterns = elems.slice(1).map((e) => elementPattern(e));
  const captures = patterns.map((p) => (p.kind === 'capture' ? p.name : undefined));
  const partial = patterns.flatMap((pattern, index) => (pattern.kind === 'partial' ? [{ index, pattern }] : []));
  if (captures.every((c) => c === undefined) && partial.length === 0) return { prefix: parsePrefix(text), captures, partial };
  // Captures match like `*`; a partial element's literal text must still be label characters.
  for (const { pattern } of partial) if (pattern.kind === 'partial') parsePrefix(`/${pattern.literals.join('x')}`);
  const rewritten = elems.map((e, i) => (i > 0 && (patterns[i - 1]?.kind === 'capture' || patterns[i - 1]?.kind === 'partial') ? '*' : e)).join('/');
  return { prefix: parsePrefix(rewritten), captures, partial };
}

/** Whether `name` falls under the config prefix (partial elements matched whole, as labels). */
export function configPrefixMatches(p: ConfigPrefix, name: Path): boolean {
  if (!p.prefix.matches(name)) return false;
  return p.partial.every(({ index, pattern }) => matchElement(pattern, name.elems[index] as string));
}

/** The labels a matching name gives a prefix's `{name}` elements. */
function captured(p: ConfigPrefix, name: Path, into: Map<string, string>): void {
  p.captures.forEach((c, i) => {
    const label = name.elems[i];
    if (c !== undefined && label !== undefined) into.set(c, label);
  });
  for (const { index, pattern } of p.partial) matchElement(pattern, name.elems[index] as string, into);
}

export interface StaticParamsOptions<T> {
  /** Names whose merged settings are kept (names come from requests: bounded, least recently used first out). */
  readonly maxCached?: number;
  /** A cached name was dropped past maxCached (metrics). */
  readonly onEvicted?: () => void;
  /** The cache's name in hostmesh_bounded_map_* (default static_params). */
  readonly cacheName?: string;
  /** Fills `{name}` captures into the merged settings (called only when some prefix captured). */
  readonly substitute?: (merged: T, vars: ReadonlyMap<string, string>) => T;
}

/** Linkerd 1's bindingCache.clients default; the same bound applies to logical names. */
export const DEFAULT_MAX_CACHED = 1000;

/** Per-name settings: the global ones with every matching prefix config laid over them in order. */
export class StaticParams<T extends object> {
  readonly #global: T;
  readonly #configs: readonly { prefix: ConfigPrefix; values: Partial<T> }[];
  readonly #cache: BoundedMap<string, T>;
  readonly #options: StaticParamsOptions<T>;

  constructor(global: T, configs: readonly (Partial<T> & { prefix: string })[] = [], options: StaticParamsOptions<T> = {}) {
    this.#global = global;
    this.#configs = configs.map(({ prefix, ...values }) => ({ prefix: parseConfigPrefix(prefix), values: values as Partial<T> }));
    this.#cache = new BoundedMap({
      name: options.cacheName ?? 'static_params',
      max: options.maxCached ?? DEFAULT_MAX_CACHED,
      ...(options.onEvicted !== undefined ? { onEvict: options.onEvicted } : {}),
    });
    this.#options = options;
  }

  /** Whether any prefix config exists (else every name gets the global settings). */
  get perPrefix(): boolean {
    return this.#configs.length > 0;
  }

  /** The settings every name gets unless a prefix config says otherwise. */
  get global(): T {
    return this.#global;
  }

  get cached(): number {
    return this.#cache.size;
  }

  /** The settings of `name` (a path, or a path as shown: the cache is keyed by it, so a hit parses nothing). */
  resolve(name: Path | string): T {
    if (this.#configs.length === 0) return this.#global;
    const key = typeof name === 'string' ? name : name.show();
    const hit = this.#cache.get(key); // a hit becomes the most recently used
    if (hit !== undefined) return hit;
    const path = typeof name === 'string' ? parsePath(name) : name;
    let merged: T = { ...this.#global };
    const vars = new Map<string, string>();
    for (const c of this.#configs) {
      if (!configPrefixMatches(c.prefix, path)) continue;
      for (const [k, v] of Object.entries(c.values)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
      captured(c.prefix, path, vars);
    }
    if (vars.size > 0 && this.#options.substitute !== undefined) merged = this.#options.substitute(merged, vars);
    this.#cache.set(key, merged);
    return merged;
  }
}

/** `{name}` in a TLS commonName, filled from the prefix's captures (an unknown name stays as written). */
function substituteClient(merged: ClientSettings, vars: ReadonlyMap<string, string>): ClientSettings {
  const cn = merged.tls?.commonName;
  if (cn === undefined || merged.tls === undefined) return merged;
  const filled = substituteVars(cn, vars);
  return { ...merged, tls: { ...merged.tls, commonName: filled } };
}

export interface RouterParamsOptions {
  readonly maxCachedServices?: number;
  readonly maxCachedClients?: number;
  /** Where settings dropped past their cap are reported (default: nowhere). */
  readonly events?: Pick<RouterPartEvents, 'paramsEvicted'>;
}

/** A router's per-name settings: `forService(/svc/...)` by logical name, `forClient(/$/inet/...)` by bound id. */
export class RouterParams {
  readonly #service: StaticParams<ServiceSettings>;
  readonly #client: StaticParams<ClientSettings>;

  constructor(service: ServiceSpec | undefined, client: ClientSpec, options: RouterParamsOptions = {}) {
    const { configs: serviceConfigs, ...serviceGlobal } = service ?? {};
    const { configs: clientConfigs, ...clientGlobal } = client;
    this.#service = new StaticParams<ServiceSettings>(serviceGlobal, serviceConfigs ?? [], {
      cacheName: 'static_params_services',
      ...(options.maxCachedServices !== undefined ? { maxCached: options.maxCachedServices } : {}),
      ...(options.events !== undefined ? { onEvicted: () => options.events?.paramsEvicted('service') } : {}),
    });
    this.#client = new StaticParams<ClientSettings>(clientGlobal, clientConfigs ?? [], {
      cacheName: 'static_params_clients',
      ...(options.maxCachedClients !== undefined ? { maxCached: options.maxCachedClients } : {}),
      ...(options.events !== undefined ? { onEvicted: () => options.events?.paramsEvicted('client') } : {}),
      substitute: substituteClient,
    });
  }

  /** The router's own service settings (what a name no prefix config matches gets). */
  get service(): ServiceSettings {
    return this.#service.global;
  }

  /** The router's own client settings (what a bound id no prefix config matches gets). */
  get client(): ClientSettings {
    return this.#client.global;
  }

  get perPrefix(): { service: boolean; client: boolean } {
    return { service: this.#service.perPrefix, client: this.#client.perPrefix };
  }

  forService(name: Path | string): ServiceSettings {
    return this.#service.resolve(name);
  }

  forClient(id: Path | string): ClientSettings {
    return this.#client.resolve(id);
  }
}
