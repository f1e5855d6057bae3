// The authorization policy's evaluator: a validated policy file (policy-file.ts reads and checks the
// YAML) compiled into matchers indexed by destination namespace, and the decision for a request
// (docs/authz.md).

import { DEFAULT_TRUST_DOMAIN, parseNodeIdentity, parseWorkloadIdentity } from '../identity/names.js';
import { Glob } from './glob.js';
import type { CallerEntry, DestinationEntry, NamespaceDefault, PolicyFile } from './policy-schema.js';

export { PolicyError } from './policy-error.js';
export type { NamespaceDefault, PolicyFile } from './policy-schema.js';

export interface AuthzCaller {
  /** The verified identity (the `l5d-client-id` value): workload or node identity. */
  readonly identity?: string;
  /** Given when known; otherwise read from a workload identity of the policy's trust domain. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
  /** False for plaintext local callers with no workload identity. */
  readonly authenticated: boolean;
}

/** The final destination, after all dtab rewriting. */
export interface AuthzDestination {
  readonly namespace?: string;
  readonly service?: string;
  /** The bound name, e.g. /#/io.l5d.k8s/payments/http/api. */
  readonly name?: string;
  /** A port number or a port name (a string of digits counts as a number). */
  readonly port?: number | string;
  /** The port's name when `port` is its number and the name is known too. */
  readonly portName?: string;
  /** The workload that answers (the incoming router's delivery check): its service account and pod. */
  readonly serviceAccount?: string;
  readonly pod?: string;
}

export interface AuthzRequest {
  readonly caller: AuthzCaller;
  readonly dest: AuthzDestination;
  readonly method: string;
  /** The request target: origin-form (/a?b) or absolute-form (http://h/a?b). */
  readonly path: string;
}

export interface AuthzDecision {
  readonly decision: 'allow' | 'deny';
  /** Allowed only because the destination namespace is in audit mode: a would-deny. */
  readonly audit: boolean;
  /** The rule that allowed it; absent when the namespace default decided. */
  readonly rule?: string;
  /** The namespace default that decided (when no rule did). */
  readonly default?: NamespaceDefault;
  /** One line for `l5d-err`, logs and `hostmesh authz explain` (printable ASCII only). */
  readonly reason: string;
}

interface CallerMatcher {
  readonly unauthenticated: boolean;
  readonly identity: Glob | undefined;
  readonly namespace: Glob | undefined;
  readonly serviceAccount: Glob | undefined;
  readonly node: Glob | undefined;
}

interface PortMatcher {
  readonly numbers: ReadonlySet<number>;
  readonly names: ReadonlySet<string>;
}

interface DestMatcher {
  readonly namespace: Glob | undefined;
  readonly service: Glob | undefined;
  readonly name: Glob | undefined;
  readonly serviceAccount: Glob | undefined;
  readonly ports: PortMatcher | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly paths: readonly string[] | undefined;
}

interface CompiledRule {
  readonly index: number;
  readonly name: string;
  readonly from: readonly CallerMatcher[];
}

/** One `to` entry of one rule, as the index stores it. */
interface Candidate {
  readonly rule: CompiledRule;
  readonly dest: DestMatcher;
}

interface NamespaceSetting {
  readonly default?: NamespaceDefault;
  readonly allowDtabOverride?: boolean;
}

/** A caller after normalization: what the matchers read. */
interface Who {
  readonly authenticated: boolean;
  readonly identity: string | undefined;
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
  readonly node: string | undefined;
}

const glob = (s: string | undefined): Glob | undefined => (s === undefined ? undefined : new Glob(s));
const NO_CANDIDATES: readonly Candidate[] = [];

function compileCaller(c: CallerEntry): CallerMatcher {
  return {
    unauthenticated: c.unauthenticated === true,
    identity: glob(c.identity),
    namespace: glob(c.namespace),
    serviceAccount: glob(c.serviceAccount),
    node: glob(c.node),
  };
}

function compileDest(d: DestinationEntry): DestMatcher {
  return {
    namespace: glob(d.namespace),
    service: glob(d.service),
    name: glob(d.name),
    serviceAccount: glob(d.serviceAccount),
    ports:
      d.ports === undefined
        ? undefined
        : {
            numbers: new Set(d.ports.filter((p): p is number => typeof p === 'number')),
            names: new Set(d.ports.filter((p): p is string => typeof p === 'string')),
          },
    methods: d.methods === undefined ? undefined : new Set(d.methods),
    paths: d.paths,
  };
}

function callerMatches(m: CallerMatcher, who: Who): boolean {
  if (m.unauthenticated) return !who.authenticated;
  if (!who.authenticated) return false;
  if (m.identity !== undefined && (who.identity === undefined || !m.identity.test(who.identity))) return false;
  if (m.namespace !== undefined && (who.namespace === undefined || !m.namespace.test(who.namespace))) return false;
  if (m.serviceAccount !== undefined && (who.serviceAccount === undefined || !m.serviceAccount.test(who.serviceAccount))) return false;
  if (m.node !== undefined && (who.node === undefined || !m.node.test(who.node))) return false;
  return true;
}

/** A port as the matchers compare it: digits are a number. */
function portOf(p: number | string | undefined): number | string | undefined {
  if (typeof p === 'string' && /^[0-9]{1,5}$/.test(p)) return Number(p);
  return p;
}

function destMatches(m: DestMatcher, dest: AuthzDestination, port: number | string | undefined, method: string, pathOf: () => string | undefined): boolean {
  if (m.namespace !== undefined && (dest.namespace === undefined || !m.namespace.test(dest.namespace))) return false;
  if (m.service !== undefined && (dest.service === undefined || !m.service.test(dest.service))) return false;
  if (m.name !== undefined && (dest.name === undefined || !m.name.test(dest.name))) return false;
  if (m.serviceAccount !== undefined && (dest.serviceAccount === undefined || !m.serviceAccount.test(dest.serviceAccount))) return false;
  if (m.ports !== undefined) {
    const byNumber = typeof port === 'number' && m.ports.numbers.has(port);
    const byName = (typeof port === 'string' && m.ports.names.has(port)) || (dest.portName !== undefined && m.ports.names.has(dest.portName));
    if (!byNumber && !byName) return false;
  }
  if (m.methods !== undefined && !m.methods.has(method)) return false;
  if (m.paths !== undefined) {
    const path = pathOf();
    if (path === undefined || !m.paths.some((prefix) => pathHasPrefix(path, prefix))) return false;
  }
  return true;
}

/** `/v1` covers /v1 and /v1/x but not /v10; a prefix ending in / covers what starts with it. */
function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 0x2f);
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The path a policy prefix is compared with, or undefined when the path is ambiguous: after the
 * query is cut and escapes of unreserved characters are decoded (RFC 3986 section 6.2.2.2), a path
 * with a dot segment, an empty segment, an escaped / or \, a backslash or a bad escape is one that
 * servers resolve differently, so no path-restricted rule matches it (fail closed).
 */
export function normalizePath(target: string): string | undefined {
  // One pass over the characters, no regex or split: this runs for every request that meets a
  // rule with paths.
  let start = 0;
  if (target.charCodeAt(0) !== 0x2f) {
    const scheme = target.indexOf('://');
    if (scheme === -1) return undefined;
    const slash = target.indexOf('/', scheme + 3);
    if (slash === -1) return '/';
    start = slash;
  }
  let end = start;
  let escaped = false;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x3f || c === 0x23) break; // ? #
    if (c === 0x25) escaped = true; // %
    end++;
  }
  let p = start === 0 && end === target.length ? target : target.slice(start, end);
  if (escaped) {
    const decoded = decodeUnreserved(p);
    if (decoded === undefined) return undefined;
    p = decoded;
  }
  return unambiguous(p) ? p : undefined;
}

/** Decodes escapes of unreserved characters; undefined for a bad escape or an escaped / or \. */
function decodeUnreserved(p: string): string | undefined {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const hex = p.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (ch === '/' || ch === '\\') return undefined;
    out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** No backslash, no `//`, no `.` or `..` segment. */
function unambiguous(p: string): boolean {
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c === 0x5c) return false;
    if (c !== 0x2f) continue;
    const a = i + 1 < n ? p.charCodeAt(i + 1) : -1;
    if (a === 0x2f) return false;
    if (a !== 0x2e) continue;
    const b = i + 2 < n ? p.charCodeAt(i + 2) : -1;
    if (b === -1 || b === 0x2f) return false;
    if (b === 0x2e) {
      const d = i + 3 < n ? p.charCodeAt(i + 3) : -1;
      if (d === -1 || d === 0x2f) return false;
    }
  }
  return true;
}

/** Printable ASCII, bounded: request data quoted in a reason cannot break a header or a log line. */
function safe(s: string, max = 200): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

function describeCaller(who: Who): string {
  if (!who.authenticated) return 'unauthenticated caller';
  if (who.identity !== undefined) return safe(who.identity);
  if (who.namespace !== undefined) return `${safe(who.serviceAccount ?? '?', 100)}.${safe(who.namespace, 63)} (no identity)`;
  return 'authenticated caller with no identity';
}

function describeDest(dest: AuthzDestination): string {
  const named = describeName(dest);
  return dest.pod === undefined
    ? named
    : `${named} (pod ${safe(dest.namespace ?? '', 63)}/${safe(dest.pod, 253)}, service account ${safe(dest.serviceAccount ?? '', 253)})`;
}

function describeName(dest: AuthzDestination): string {
  if (dest.namespace !== undefined && dest.service !== undefined) {
    return `${safe(dest.namespace, 63)}/${safe(dest.service, 63)}${dest.port !== undefined ? `:${safe(String(dest.port), 15)}` : ''}`;
  }
  return dest.name !== undefined ? safe(dest.name) : 'an unnamed destination';
}

/** A compiled policy: decisions in time proportional to the rules that can concern the destination. */
export class Policy {
  readonly trustDomain: string;
  readonly ruleCount: number;
  /** `to` entries naming one namespace and one service, by namespace then service. */
  readonly #byService = new Map<string, Map<string, Candidate[]>>();
  /** `to` entries naming one namespace and any service (a glob or none). */
  readonly #byNamespace = new Map<string, Candidate[]>();
  /** `to` entries whose namespace is a glob or absent: checked for every destination. */
  readonly #anyNamespace: Candidate[] = [];
  readonly #exactSettings = new Map<string, NamespaceSetting>();
  readonly #globSettings: { readonly glob: Glob; readonly setting: NamespaceSetting }[] = [];

  constructor(file: PolicyFile) {
    this.trustDomain = file.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.ruleCount = file.rules.length;
    for (const [key, setting] of Object.entries(file.namespaces)) {
      const g = new Glob(key);
      if (g.exact) this.#exactSettings.set(key, setting);
      else this.#globSettings.push({ glob: g, setting });
    }
    file.rules.forEach((r, index) => {
      const rule: CompiledRule = { index, name: r.name, from: r.from.map(compileCaller) };
      for (const d of r.to) {
        const candidate: Candidate = { rule, dest: compileDest(d) };
        if (d.namespace !== undefined && !d.namespace.includes('*') && d.service !== undefined && !d.service.includes('*')) {
          let services = this.#byService.get(d.namespace);
          if (services === undefined) this.#byService.set(d.namespace, (services = new Map()));
          let list = services.get(d.service);
          if (list === undefined) services.set(d.service, (list = []));
          list.push(candidate);
        } else if (d.namespace !== undefined && !d.namespace.includes('*')) {
          let list = this.#byNamespace.get(d.namespace);
          if (list === undefined) this.#byNamespace.set(d.namespace, (list = []));
          list.push(candidate);
        } else {
          this.#anyNamespace.push(candidate);
        }
      }
    });
  }

  /** The empty policy: no rules, every namespace `allow` (hostmesh without a policy file). */
  static allowAll(): Policy {
    return new Policy({ namespaces: {}, rules: [] });
  }

  /**
   * A setting of a namespace: its own entry if it sets the key, else the first glob entry (file
   * order) that does. Keys resolve separately, so `payments: {allowDtabOverride: false}` keeps the
   * default of `"*"`. A destination outside Kubernetes has namespace '' (only `*` matches it).
   */
  #setting<K extends keyof NamespaceSetting>(namespace: string, key: K): NamespaceSetting[K] {
    const own = this.#exactSettings.get(namespace)?.[key];
    if (own !== undefined) return own;
    for (const { glob: g, setting } of this.#globSettings) {
      if (setting[key] !== undefined && g.test(namespace)) return setting[key];
    }
    return undefined;
  }

  /** The default for a destination namespace when no rule allows (`allow` when unset). */
  namespaceDefault(namespace: string | undefined): NamespaceDefault {
    return this.#setting(namespace ?? '', 'default') ?? 'allow';
  }

  /** Whether a caller may send `l5d-dtab` overrides (per caller namespace; true when unset). */
  dtabOverrideAllowed(caller: AuthzCaller): boolean {
    return this.#setting(this.#who(caller).namespace ?? '', 'allowDtabOverride') ?? true;
  }

  #who(caller: AuthzCaller): Who {
    if (!caller.authenticated) return { authenticated: false, identity: undefined, namespace: undefined, serviceAccount: undefined, node: undefined };
    const id = caller.identity;
    const workload =
      id === undefined || (caller.namespace !== undefined && caller.serviceAccount !== undefined) ? undefined : parseWorkloadIdentity(id, this.trustDomain);
    return {
      authenticated: true,
      identity: id,
      namespace: caller.namespace ?? workload?.namespace,
      serviceAccount: caller.serviceAccount ?? workload?.serviceAccount,
      node: id === undefined ? undefined : parseNodeIdentity(id),
    };
  }

  /** The rule (first in file order) that allows the request, if any. */
  #firstRule(who: Who, req: AuthzRequest, path: () => string | undefined): CompiledRule | undefined {
    const ns = req.dest.namespace;
    const svc = req.dest.service;
    const a = ns === undefined || svc === undefined ? NO_CANDIDATES : (this.#byService.get(ns)?.get(svc) ?? NO_CANDIDATES);
    const b = ns === undefined ? NO_CANDIDATES : (this.#byNamespace.get(ns) ?? NO_CANDIDATES);
    const c = this.#anyNamespace;
    const port = portOf(req.dest.port);
    // The three lists are each in rule order; walking them merged meets the earliest rule first.
    let i = 0;
    let j = 0;
    let k = 0;
    for (;;) {
      const ia = a[i]?.rule.index ?? Infinity;
      const ib = b[j]?.rule.index ?? Infinity;
      const ic = c[k]?.rule.index ?? Infinity;
      let next: Candidate;
      if (ia <= ib && ia <= ic) {
        if (ia === Infinity) return undefined;
        next = a[i++] as Candidate;
      } else if (ib <= ic) next = b[j++] as Candidate;
      else next = c[k++] as Candidate;
      if (destMatches(next.dest, req.dest, port, req.method, path) && next.rule.from.some((m) => callerMatches(m, who))) return next.rule;
    }
  }

  decide(req: AuthzRequest): AuthzDecision {
    const who = this.#who(req.caller);
    // Normalized on first use: most candidates are ruled out before their paths are read.
    let normalized: string | undefined | null = null;
    const pathOf = (): string | undefined => (normalized === null ? (normalized = normalizePath(req.path)) : normalized);
    const rule = this.#firstRule(who, req, pathOf);
    if (rule !== undefined)
      return decision('allow', false, rule.name, undefined, () => `rule '${rule.name}' allows ${describeCaller(who)} to ${describeDest(req.dest)}`);
    const ns = req.dest.namespace;
    const fallback = this.namespaceDefault(ns);
    const reason = (): string => {
      const where = ns === undefined ? 'destinations outside Kubernetes default' : `namespace '${safe(ns, 63)}' defaults`;
      const ambiguous = pathOf() === undefined ? ' (the request path is ambiguous, so no path rule applies)' : '';
      const head = fallback === 'allow' ? 'no rule matches' : fallback === 'audit' ? 'would deny: no rule allows' : 'no rule allows';
      return `${head} ${describeCaller(who)} to ${describeDest(req.dest)}${fallback === 'allow' ? '' : ambiguous}; ${where} to ${fallback}`;
    };
    return decision(fallback === 'deny' ? 'deny' : 'allow', fallback === 'audit', undefined, fallback, reason);
  }
}

/**
 * A decision whose reason is written on first read: an allowed request on the hot path never
 * reads it, and building it was most of the cost of a decision (measured by npm run bench:authz).
 */
class Decision implements AuthzDecision {
  readonly decision: 'allow' | 'deny';
  readonly audit: boolean;
  readonly rule: string | undefined;
  readonly default: NamespaceDefault | undefined;
  #reason: string | (() => string);

  constructor(verdict: 'allow' | 'deny', audit: boolean, rule: string | undefined, fallback: NamespaceDefault | undefined, reason: () => string) {
    this.decision = verdict;
    this.audit = audit;
    this.rule = rule;
    this.default = fallback;
    this.#reason = reason;
  }

  get reason(): string {
    if (typeof this.#reason !== 'string') this.#reason = this.#reason();
    return this.#reason;
  }

  toJSON(): Record<string, unknown> {
    return { decision: this.decision, audit: this.audit, rule: this.rule, default: this.default, reason: this.reason };
  }
}

function decision(
  verdict: 'allow' | 'deny',
  audit: boolean,
  rule: string | undefined,
  fallback: NamespaceDefault | undefined,
  reason: () => string,
): AuthzDecision {
  return new Decision(verdict, audit, rule, fallback, reason);
}
