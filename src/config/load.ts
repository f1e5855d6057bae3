// Loads a router config: YAML (Linkerd 1 shape) -> `--set` overrides -> unenforced Linkerd 1 keys
// warned and stripped -> zod validation -> typed HostmeshConfig. Every error names file:line:col
// and the key path; several errors are reported together.

import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { parseDtab } from '../dtab/dtab.js';
import { DtabParseError } from '../dtab/parse.js';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { takeObservability } from './linkerd1-observability.js';
import { H2_SERVER_KEYS, rawConfigSchema, UNENFORCED, type RawConfig } from './schema.js';
import { CLIENT_NUMBER_KEYS, UNENFORCED_OPTIONS } from './kinds.js';
import { interpreterProblems, namerdDtab } from './interpreter-config.js';
import { LOST } from './linkerd1-lost.js';
import { applyLinkerd1Keys } from './linkerd1-keys.js';
import { DEFAULT_TRUST_DOMAIN } from '../identity/names.js';
import { printable } from './printable.js';
import { ConfigError } from './config-error.js';
import { InputFileError, readInputFile, readInputFileSync } from '../fs/read-input.js';
import { showPath, YamlFile } from '../fs/yaml-positions.js';
import { tlsPolicyNotes } from '../tls/policy.js';
import type {
  ClientConfig,
  ClientPrefixConfig,
  ClientTlsConfig,
  FailureAccrualConfig,
  H2ServerLimits,
  HostmeshConfig,
  NamerConfig,
  RouterConfig,
  ServiceConfig,
} from './types.js';

export { ConfigError } from './config-error.js';

export interface LoadOptions {
  /** `key.path=value` overrides, applied before validation. */
  readonly set?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export interface Loaded {
  readonly config: HostmeshConfig;
  readonly warnings: string[];
}

type Key = string | number;

/** Parses a `--set key.path=value` into its path and YAML-typed value. */
function parseSet(spec: string): { path: Key[]; value: unknown } {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new ConfigError([`--set ${spec}: expected key.path=value`]);
  const path = spec
    .slice(0, eq)
    .split('.')
    .map((k) => (/^[0-9]+$/.test(k) ? Number(k) : k));
  const text = spec.slice(eq + 1);
  const value: unknown = parseDocument(text).toJS();
  return { path, value: value === null && text !== '' && text !== 'null' ? text : value };
}

function applySet(root: Record<string, unknown>, spec: string): void {
  const { path, value } = parseSet(spec);
  // `__proto__.x=1` would walk into Object.prototype and change every object in the process.
  if (path.some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype')) throw new ConfigError([`--set ${spec}: not a config key path`]);
  let cur: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i] as Key;
    const next = (cur as Record<Key, unknown>)[k];
    if (next === undefined || next === null || typeof next !== 'object') {
      if (typeof k === 'number' || typeof path[i + 1] === 'number') {
        throw new ConfigError([`--set ${spec}: ${showPath(path.slice(0, i + 1))} does not exist`]);
      }
      (cur as Record<Key, unknown>)[k] = {};
    }
    cur = (cur as Record<Key, unknown>)[k];
  }
  const last = path[path.length - 1] as Key;
  if (Array.isArray(cur) && (typeof last !== 'number' || last > cur.length)) {
    throw new ConfigError([`--set ${spec}: ${showPath(path)} is not an element of the list`]);
  }
  (cur as Record<Key, unknown>)[last] = value;
}

/** Removes the Linkerd 1 keys hostmesh accepts without enforcing, with one warning each. */
function stripUnenforced(raw: Record<string, unknown>, warn: (path: Key[], lost?: string) => void): void {
  const strip = (obj: unknown, kind: string, path: Key[]): void => {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
    const o = obj as Record<string, unknown>;
    for (const key of UNENFORCED[kind] ?? []) {
      if (key in o) {
        warn([...path, key], LOST[`${kind}.${key}`]);
        delete o[key];
      }
    }
  };
  /** Options of a kinded object (e.g. loadBalancer p2c's maxEffort) accepted with a warning. */
  const stripKindOptions = (obj: unknown, what: string, path: Key[]): void => {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
    const o = obj as Record<string, unknown>;
    for (const key of UNENFORCED_OPTIONS[`${what}:${String(o['kind'])}`] ?? []) {
      if (key in o) {
        warn([...path, key], LOST[`${what}.${key}`]);
        delete o[key];
      }
    }
  };
  const stripTransformers = (list: unknown, path: Key[]): void => {
    if (Array.isArray(list)) list.forEach((t, i) => stripKindOptions(t, 'transformer', [...path, i]));
  };
  // Telemeters are read (and those not built warned about, with what is lost) by linkerd1-observability.ts.
  strip(raw, 'root', []);
  strip(raw['admin'], 'admin', ['admin']);
  const namers = raw['namers'];
  if (Array.isArray(namers)) {
    namers.forEach((n, i) => {
      strip(n, 'namer', ['namers', i]);
      if (n !== null && typeof n === 'object') stripTransformers((n as Record<string, unknown>)['transformers'], ['namers', i, 'transformers']);
    });
  }
  const routers = raw['routers'];
  if (!Array.isArray(routers)) return;
  routers.forEach((r: unknown, i) => {
    if (r === null || typeof r !== 'object') return;
    const ro = r as Record<string, unknown>;
    strip(ro, 'router', ['routers', i]);
    // `kind: default` is what hostmesh does anyway: accepted silently. Any other interpreter
    // (namerd, ...) is warned about like every other unenforced key.
    const interp = ro['interpreter'];
    if (interp !== null && typeof interp === 'object' && (interp as Record<string, unknown>)['kind'] === 'default') {
      delete (interp as Record<string, unknown>)['kind'];
    }
    strip(interp, 'interpreter', ['routers', i, 'interpreter']);
    if (interp !== null && typeof interp === 'object')
      stripTransformers((interp as Record<string, unknown>)['transformers'], ['routers', i, 'interpreter', 'transformers']);
    // Linkerd 1's H2Config keys: accepted on protocol: h2 routers only (elsewhere they stay unknown).
    const h2 = ro['protocol'] === 'h2';
    strip(ro['client'], 'client', ['routers', i, 'client']);
    if (h2) strip(ro['client'], 'h2Client', ['routers', i, 'client']);
    strip(ro['service'], 'service', ['routers', i, 'service']);
    const service = ro['service'] as Record<string, unknown> | undefined;
    if (h2 && service && typeof service === 'object') {
      strip(service, 'h2Service', ['routers', i, 'service']);
      strip(service['retryBufferSize'], 'h2RetryBufferSize', ['routers', i, 'service', 'retryBufferSize']);
    }
    const client = ro['client'] as Record<string, unknown> | undefined;
    if (client && typeof client === 'object') stripKindOptions(client['loadBalancer'], 'loadBalancer', ['routers', i, 'client', 'loadBalancer']);
    if (client && typeof client === 'object') strip(client['tls'], 'clientTls', ['routers', i, 'client', 'tls']);
    const servers = ro['servers'];
    if (Array.isArray(servers)) {
      servers.forEach((s: unknown, j) => {
        strip(s, 'server', ['routers', i, 'servers', j]);
        if (h2) strip(s, 'h2Server', ['routers', i, 'servers', j]);
        if (s && typeof s === 'object') strip((s as Record<string, unknown>)['tls'], 'serverTls', ['routers', i, 'servers', j, 'tls']);
      });
    }
  });
}

/**
 * A value that may be one object or a list of them (`identifier`) fails as a union with zod's bare
 * "Invalid input": report the issues of the branch whose shape the value has (the one that did not
 * fail on the value's type itself), with the union's path in front.
 */
function unionBranch(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const shaped = issue.errors.filter((branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0));
  if (shaped.length !== 1) return [issue];
  return (shaped[0] as z.core.$ZodIssue[]).flatMap((i) => unionBranch({ ...i, path: [...issue.path, ...i.path] } as z.core.$ZodIssue));
}

/**
 * Keys whose absence weakens what a router checks (plaintext instead of TLS, no client
 * certificate asked, no policy, no workload identity, context headers kept): an empty value for
 * one of them is refused, never read as absent.
 */
const NO_EMPTY_KEYS: ReadonlySet<string> = new Set([
  'tls',
  'requireClientAuth',
  'clientAuth',
  'caCertPath',
  'trustCerts',
  'trustCertsBundle',
  'commonName',
  'identity',
  'authz',
  'policyFile',
  'clearContext',
  'localSourcesOnly',
  'allowedSourceCidrs',
]);

/**
 * A key whose value is empty (`dtab:`, `namers:`, `transformers:` with every entry commented out)
 * is absent, as Jackson gave Linkerd 1's optional fields (None); the keys above are refused
 * instead. Entries of lists stay as they are.
 */
function dropNulls(value: unknown, path: Key[], problem: (path: Key[], message: string) => void): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => dropNulls(v, [...path, i], problem));
    return;
  }
  const o = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (v !== null) dropNulls(v, [...path, k], problem);
    else if (NO_EMPTY_KEYS.has(k))
      problem([...path, k], 'empty: give it a value, or remove the key (read as absent, an empty value here would weaken security)');
    else delete o[k];
  }
}

/** Linkerd 1 protocols hostmesh refuses as a whole (namer-kinds.ts protocolError says why). */
const REFUSED_PROTOCOLS: ReadonlySet<string> = new Set(['thrift', 'mux', 'thriftmux']);

const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * Jackson, which read Linkerd 1's configs, takes "4140" where a number is expected, "true" or
 * "false" where a boolean is, and a number where a string is. Each value the schema refused only
 * for being written that way is rewritten in `obj`; returns whether any was.
 */
function coerceScalars(obj: Record<string, unknown>, issues: readonly z.core.$ZodIssue[]): boolean {
  let changed = false;
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.path.length === 0 || issue.path.some((k) => typeof k === 'symbol')) continue;
    const path = issue.path as Key[];
    let parent: unknown = obj;
    for (const k of path.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? (parent as Record<Key, unknown>)[k] : undefined;
    if (parent === null || typeof parent !== 'object') continue;
    const holder = parent as Record<Key, unknown>;
    const key = path[path.length - 1] as Key;
    const v = holder[key];
    let next: unknown;
    if (issue.expected === 'number' && typeof v === 'string' && NUMBER_TEXT.test(v.trim())) next = Number(v.trim());
    else if (issue.expected === 'boolean' && typeof v === 'string' && /^(true|false)$/i.test(v.trim())) next = v.trim().toLowerCase() === 'true';
    else if (issue.expected === 'string' && typeof v === 'number') next = String(v);
    else continue;
    holder[key] = next;
    changed = true;
  }
  return changed;
}

function issueText(issue: z.core.$ZodIssue): { path: Key[]; message: string; key?: string } {
  const path = issue.path.filter((k): k is Key => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    // YAML 1.1's merge key: yaml reads configs as YAML 1.2, as Linkerd 1's Jackson did, where `<<` is a plain key.
    if (keys[0] === '<<' && keys.length === 1) {
      return {
        path: [...path, '<<'],
        key: '<<',
        message: 'YAML merge keys (<<: *anchor) are not read (as in Linkerd 1): write the keys out, or use an alias for a whole value',
      };
    }
    return {
      path: [...path, keys[0] as string],
      key: keys[0] as string,
      message: `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')} (not a Linkerd 1 or hostmesh config key)`,
    };
  }
  return { path, message: issue.message };
}

/**
 * Parses and validates config text. Pure except for reading dtabFiles (when `readFile` is given).
 * Every failure is a ConfigError: an exception nothing expected becomes one line, no stack.
 */
export function parseConfig(
  text: string,
  file: string,
  options: LoadOptions = {},
  read: (p: string) => string = (p) => readInputFileSync(p, 'dtabFile').toString('utf8'),
): Loaded {
  try {
    return parseConfigText(text, file, options, read);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`${file}: cannot load config: ${firstLine(err)}`]);
  }
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n')[0] ?? '').slice(0, 300);
}

function parseConfigText(text: string, file: string, options: LoadOptions, read: (p: string) => string): Loaded {
  const pos = new YamlFile(file, text);
  const syntax = pos.syntaxErrors();
  if (syntax.length > 0) throw new ConfigError(syntax);
  const raw: unknown = pos.doc.toJS() ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([`${file}:1:1: the config must be a YAML mapping`]);
  }
  const obj = raw as Record<string, unknown>;
  for (const s of options.set ?? []) applySet(obj, s);
  const keyProblems: string[] = [];
  dropNulls(obj, [], (path, message) => keyProblems.push(`${pos.at(path.slice(0, -1), String(path[path.length - 1]))}: ${showPath(path)}: ${message}`));
  applyLinkerd1Keys(obj, { problem: (path, message) => keyProblems.push(`${pos.at(path)}: ${showPath(path)}: ${message}`) });
  if (keyProblems.length > 0) throw new ConfigError(keyProblems);
  const warnings: string[] = [];
  stripUnenforced(obj, (path, lost) =>
    warnings.push(
      `${pos.at(path.slice(0, -1), String(path[path.length - 1]))}: ${showPath(path)}: accepted, not enforced${lost !== undefined ? `: ${lost}` : ''}`,
    ),
  );
  // Linkerd 1's telemetry and httpAccessLog* keys: read here, never seen by the schema.
  const observabilityProblems: string[] = [];
  const observability = takeObservability(obj, {
    warn: (path, message) => warnings.push(`${pos.at(path)}: ${showPath(path)}: ${message}`),
    problem: (path, message) => observabilityProblems.push(`${pos.at(path)}: ${showPath(path)}: ${message}`),
  });
  if (observabilityProblems.length > 0) throw new ConfigError(observabilityProblems);

  let result = rawConfigSchema.safeParse(obj);
  for (let round = 0; round < 4 && !result.success && coerceScalars(obj, result.error.issues.flatMap(unionBranch)); round++) {
    result = rawConfigSchema.safeParse(obj);
  }
  if (!result.success) {
    // A thrift or mux router is refused for its protocol; its own keys (thriftFramed, ...) are
    // Linkerd 1's, so "unknown key" about them would mislead.
    const routers = Array.isArray(obj['routers']) ? (obj['routers'] as unknown[]) : [];
    const refusedProtocol = (i: unknown): boolean => {
      const r = typeof i === 'number' ? routers[i] : undefined;
      return r !== null && typeof r === 'object' && REFUSED_PROTOCOLS.has(String((r as Record<string, unknown>)['protocol']));
    };
    const issues = result.error.issues
      .flatMap(unionBranch)
      .filter((issue) => !(issue.path[0] === 'routers' && refusedProtocol(issue.path[1]) && issue.path[2] !== 'protocol'));
    throw new ConfigError(
      issues.map((issue) => {
        const { path, message, key } = issueText(issue);
        const where = key === undefined ? pos.at(path) : pos.at(path.slice(0, -1), key);
        return `${where}: ${showPath(path)}: ${message}`;
      }),
    );
  }
  const baseDir = dirname(resolve(file));
  const config = toConfig(result.data, baseDir, options.env ?? process.env);
  if (observability.telemetry.prometheus !== undefined) config.telemetry = observability.telemetry;
  for (const [i, log] of observability.accessLogs) {
    const r = config.routers[i];
    if (r !== undefined) r.accessLog = { ...log, path: resolve(baseDir, log.path) };
  }
  const problems: string[] = interpreterProblems(result.data, config, (path, message) => warnings.push(`${pos.at(path)}: ${showPath(path)}: ${message}`)).map(
    ({ path, message }) => `${pos.at(path)}: ${showPath(path)}: ${message}`,
  );
  if (problems.length > 0) throw new ConfigError(problems);
  config.routers.forEach((r, i) => {
    const raw = result.data.routers[i];
    if (raw?.dtabFile !== undefined || raw?.interpreter?.kind === 'io.l5d.fs') {
      try {
        r.dtab = read(r.dtabFile as string);
      } catch (err) {
        const why = err instanceof InputFileError ? err.message : `cannot read ${r.dtabFile}: ${firstLine(err)}`;
        const key = raw?.dtabFile !== undefined ? 'dtabFile' : 'interpreter.dtabFile';
        problems.push(`${pos.at(['routers', i, ...key.split('.')])}: routers[${i}].${key}: ${why}`);
        return;
      }
    }
    try {
      parseDtab(r.dtab);
    } catch (err) {
      if (!(err instanceof DtabParseError)) throw err;
      if (r.dtabFile !== undefined) problems.push(formatDtabFileError(r.dtabFile, r.dtab, err));
      else problems.push(`${pos.at(['routers', i, 'dtab'])}: routers[${i}].dtab: ${err.message}`);
    }
  });
  // A server without certificate files takes the node certificate, which needs an issuer.
  result.data.routers.forEach((r, i) =>
    r.servers.forEach((s, j) => {
      if (s.tls === undefined || s.tls.enabled === false) return;
      const where = `${pos.at(['routers', i, 'servers', j, 'tls'])}: routers[${i}].servers[${j}].tls`;
      if ((s.tls.certPath === undefined) !== (s.tls.keyPath === undefined)) problems.push(`${where}: certPath and keyPath go together`);
      else if (s.tls.certPath === undefined && result.data.identity?.issuer === undefined)
        problems.push(`${where}: certPath and keyPath are needed unless identity.issuer issues this node's certificate`);
    }),
  );
  problems.push(...tlsOffProblems(result.data, (path) => pos.at(path)));
  if (problems.length > 0) throw new ConfigError(problems);
  tlsWarnings(result.data, (path, message) => warnings.push(`${pos.at(path)}: ${showPath(path)}: ${message}`));
  return { config, warnings: warnings.map(printable) };
}

/**
 * `tls: {enabled: false}` in a prefix config after one that sets TLS: Linkerd 1 sent those names
 * in plaintext. hostmesh's merged per-prefix settings cannot take TLS away (a TLS prefix never
 * falls back to plaintext), so the config is refused rather than run with TLS the user turned off.
 * Where no earlier config sets TLS, the block changes nothing and loads.
 */
function tlsOffProblems(raw: RawConfig, at: (path: Key[]) => string): string[] {
  const out: string[] = [];
  raw.routers.forEach((r, i) => {
    const c = r.client;
    if (c?.kind !== 'io.l5d.static') return;
    c.configs.forEach((pc, j) => {
      if (pc.tls?.enabled !== false) return;
      const earlier = c.configs.findIndex((e, k) => k < j && e.tls !== undefined && e.tls.enabled !== false);
      if (earlier === -1) return;
      const path: Key[] = ['routers', i, 'client', 'configs', j, 'tls', 'enabled'];
      out.push(
        `${at(path)}: ${showPath(path)}: turning TLS off under configs[${earlier}] (${c.configs[earlier]?.prefix}), which sets it, is not supported: hostmesh never sends a name plaintext that a TLS prefix covers; narrow that prefix instead`,
      );
    });
  });
  return out;
}

/** Old protocols and weak or missing suites a valid config names (each with its position). */
function tlsWarnings(raw: RawConfig, warn: (path: Key[], message: string) => void): void {
  raw.routers.forEach((r, i) => {
    r.servers.forEach((s, j) => {
      if (s.tls !== undefined) for (const n of tlsPolicyNotes(s.tls.protocols, s.tls.ciphers)) warn(['routers', i, 'servers', j, 'tls', ...n.path], n.message);
    });
    const c = r.client;
    const t = c?.kind === 'io.l5d.static' ? undefined : c?.tls;
    if (t !== undefined) for (const n of tlsPolicyNotes(t.protocols, t.ciphers)) warn(['routers', i, 'client', 'tls', ...n.path], n.message);
    if (c?.kind === 'io.l5d.static') {
      c.configs.forEach((pc, j) => {
        const pt = pc.tls;
        if (pt === undefined) return;
        for (const n of tlsPolicyNotes(pt.protocols, pt.ciphers)) warn(['routers', i, 'client', 'configs', j, 'tls', ...n.path], n.message);
        // Linkerd 1 allowed it; said out loud, since a prefix usually names a host outside the mesh.
        if (pt.disableValidation === true) {
          warn(['routers', i, 'client', 'configs', j, 'tls', 'disableValidation'], `servers under ${pc.prefix} are not verified: any certificate is accepted`);
        }
      });
    }
  });
}

function abs(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

type RawClient = NonNullable<RawConfig['routers'][number]['client']>;
/** An io.l5d.global client's keys, or one io.l5d.static prefix config's (the same keys, bar loadBalancer). */
type RawClientKeys = Exclude<RawClient, { kind: 'io.l5d.static' }> | Extract<RawClient, { kind: 'io.l5d.static' }>['configs'][number];

/** A client TLS block with its file paths resolved against the config's directory. */
function toClientTls(tls: NonNullable<RawClientKeys['tls']>, baseDir: string): ClientTlsConfig {
  return {
    ...(tls.commonName !== undefined ? { commonName: tls.commonName } : {}),
    ...(tls.trustCerts !== undefined ? { trustCerts: tls.trustCerts.map((p) => abs(baseDir, p)) } : {}),
    ...(tls.trustCertsBundle !== undefined ? { trustCertsBundle: abs(baseDir, tls.trustCertsBundle) } : {}),
    ...(tls.disableValidation !== undefined ? { disableValidation: tls.disableValidation } : {}),
    ...(tls.clientAuth !== undefined
      ? {
          clientAuth: {
            certPath: abs(baseDir, tls.clientAuth.certPath),
            keyPath: abs(baseDir, tls.clientAuth.keyPath),
            ...(tls.clientAuth.intermediateCertsPath !== undefined ? { intermediateCertsPath: abs(baseDir, tls.clientAuth.intermediateCertsPath) } : {}),
          },
        }
      : {}),
    ...(tls.protocols !== undefined ? { protocols: tls.protocols } : {}),
    ...(tls.ciphers !== undefined ? { ciphers: tls.ciphers } : {}),
  };
}

/** A client's keys as typed config: io.l5d.global inline, io.l5d.static as `configs` in order. */
function toClient(c: RawClient | undefined, baseDir: string): ClientConfig {
  if (c?.kind === 'io.l5d.static') {
    const configs: ClientPrefixConfig[] = c.configs.map((pc) => ({
      prefix: pc.prefix,
      ...clientLimits(pc),
      ...(pc.tls !== undefined && pc.tls.enabled !== false ? { tls: toClientTls(pc.tls, baseDir) } : {}),
    }));
    return { loadBalancer: { kind: 'p2c' }, configs };
  }
  return {
    loadBalancer: { kind: (c?.loadBalancer?.kind as 'p2c' | 'ewma' | 'roundRobin' | undefined) ?? 'p2c' },
    ...clientLimits(c),
    // Linkerd 1's `enabled: false` turns the block off.
    ...(c?.tls !== undefined && c.tls.enabled !== false ? { tls: toClientTls(c.tls, baseDir) } : {}),
  };
}

/** The typed service block: `kind` dropped (io.l5d.static leaves only `configs`). */
function toService(s: NonNullable<RawConfig['routers'][number]['service']>): ServiceConfig {
  const { kind: _kind, ...rest } = structuredClone(s) as typeof s & { kind?: string };
  return rest as ServiceConfig;
}

/** The pool, fairness and timeout keys of a client, as given (defaults apply where they are used). */
function clientLimits(c: RawClientKeys | undefined): Partial<ClientConfig> {
  if (c === undefined) return {};
  const out: Partial<ClientConfig> = {};
  if (c.hostConnectionPool !== undefined) {
    const p = c.hostConnectionPool;
    out.hostConnectionPool = {
      ...(p.minSize !== undefined ? { minSize: p.minSize } : {}),
      ...(p.maxSize !== undefined ? { maxSize: p.maxSize } : {}),
      ...(p.maxWaiters !== undefined ? { maxWaiters: p.maxWaiters } : {}),
      ...(p.idleTimeMs !== undefined ? { idleTimeMs: p.idleTimeMs } : {}),
    };
  }
  for (const key of CLIENT_NUMBER_KEYS) {
    const v = c[key];
    if (v !== undefined) out[key] = v;
  }
  if (c.requeueBudget !== undefined) out.requeueBudget = { ...c.requeueBudget };
  if (c.failureAccrual !== undefined) out.failureAccrual = structuredClone(c.failureAccrual) as FailureAccrualConfig;
  if (c.engine !== undefined) out.engine = c.engine;
  return out;
}

function toConfig(raw: RawConfig, baseDir: string, env: NodeJS.ProcessEnv): HostmeshConfig {
  const namers: NamerConfig[] = raw.namers.map((n) =>
    n.kind === 'io.l5d.rewrite'
      ? { kind: n.kind, prefix: n.prefix, pattern: n.pattern, name: n.name }
      : n.kind === 'io.l5d.fs'
        ? {
            kind: n.kind,
            prefix: n.prefix ?? '/io.l5d.fs',
            rootDir: abs(baseDir, n.rootDir),
            ...(n.idleTtlSecs !== undefined ? { idleTtlSecs: n.idleTtlSecs } : {}),
            ...(n.maxIdleNames !== undefined ? { maxIdleNames: n.maxIdleNames } : {}),
            ...(n.transformers !== undefined ? { transformers: n.transformers } : {}),
          }
        : {
            kind: n.kind,
            prefix: n.prefix ?? '/io.l5d.k8s',
            ...(n.host !== undefined ? { host: n.host } : {}),
            ...(n.port !== undefined ? { port: n.port } : {}),
            ...(n.labelSelector !== undefined ? { labelSelector: n.labelSelector } : {}),
            ...(n.api !== undefined ? { api: n.api } : {}),
            ...(n.maxNamespaces !== undefined ? { maxNamespaces: n.maxNamespaces } : {}),
            ...(n.idleTtlSecs !== undefined ? { idleTtlSecs: n.idleTtlSecs } : {}),
            ...(n.maxIdleNames !== undefined ? { maxIdleNames: n.maxIdleNames } : {}),
            ...(n.transformers !== undefined ? { transformers: n.transformers } : {}),
            ...(n.maxEndpointsPerService !== undefined ? { maxEndpointsPerService: n.maxEndpointsPerService } : {}),
            ...(n.allowLoopbackEndpoints !== undefined ? { allowLoopbackEndpoints: n.allowLoopbackEndpoints } : {}),
          },
  );
  const routers: RouterConfig[] = raw.routers.map((r, i) => {
    // An h2 router names requests by :authority unless told otherwise (Linkerd 1's h2 default).
    const defaultHeader = r.protocol === 'h2' ? ':authority' : 'Host';
    const identifier =
      r.identifier === undefined
        ? [{ kind: 'io.l5d.header.token' as const, header: defaultHeader }]
        : Array.isArray(r.identifier)
          ? r.identifier
          : [r.identifier];
    const out: RouterConfig = {
      protocol: r.protocol,
      label: r.label ?? defaultLabel(raw.routers, i),
      dtab: r.dtab ?? '',
      identifier,
      transformers: r.interpreter?.transformers ?? [],
      servers: r.servers.map((s) => ({
        port: s.port,
        ip: s.ip,
        ...(s.direction !== undefined ? { direction: s.direction } : {}),
        ...(s.headersTimeoutMs !== undefined ? { headersTimeoutMs: s.headersTimeoutMs } : {}),
        ...(s.idleTimeoutMs !== undefined ? { idleTimeoutMs: s.idleTimeoutMs } : {}),
        ...(s.maxHeaderBytes !== undefined ? { maxHeaderBytes: s.maxHeaderBytes } : {}),
        ...(s.tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: s.tunnelIdleTimeoutMs } : {}),
        ...(s.maxConnections !== undefined ? { maxConnections: s.maxConnections } : {}),
        ...(s.maxConnectionsPerSource !== undefined ? { maxConnectionsPerSource: s.maxConnectionsPerSource } : {}),
        ...(s.maxHeaders !== undefined ? { maxHeaders: s.maxHeaders } : {}),
        ...(s.maxPipelinedRequests !== undefined ? { maxPipelinedRequests: s.maxPipelinedRequests } : {}),
        ...(s.engine !== undefined ? { engine: s.engine } : {}),
        ...(s.clearContext !== undefined ? { clearContext: s.clearContext } : {}),
        ...(s.localSourcesOnly !== undefined ? { localSourcesOnly: s.localSourcesOnly } : {}),
        ...(s.allowedSourceCidrs !== undefined ? { allowedSourceCidrs: s.allowedSourceCidrs } : {}),
        ...(s.sourceWaitMs !== undefined ? { sourceWaitMs: s.sourceWaitMs } : {}),
        ...h2ServerLimits(s),
        ...(s.tls && s.tls.enabled !== false
          ? {
              tls: {
                ...(s.tls.certPath !== undefined ? { certPath: abs(baseDir, s.tls.certPath) } : {}),
                ...(s.tls.keyPath !== undefined ? { keyPath: abs(baseDir, s.tls.keyPath) } : {}),
                ...(s.tls.caCertPath !== undefined ? { caCertPath: abs(baseDir, s.tls.caCertPath) } : {}),
                ...(s.tls.intermediateCertsPath !== undefined ? { intermediateCertsPath: abs(baseDir, s.tls.intermediateCertsPath) } : {}),
                requireClientAuth: s.tls.requireClientAuth,
                ...(s.tls.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: s.tls.handshakeTimeoutMs } : {}),
                ...(s.tls.maxPendingHandshakes !== undefined ? { maxPendingHandshakes: s.tls.maxPendingHandshakes } : {}),
                ...(s.tls.protocols !== undefined ? { protocols: s.tls.protocols } : {}),
                ...(s.tls.ciphers !== undefined ? { ciphers: s.tls.ciphers } : {}),
              },
            }
          : {}),
      })),
      client: toClient(r.client, baseDir),
      maxHops: r.maxHops ?? 64,
    };
    if (r.dtabFile !== undefined) out.dtabFile = abs(baseDir, r.dtabFile);
    if (r.dstPrefix !== undefined) out.dstPrefix = r.dstPrefix;
    if (r.bindingBudget !== undefined) out.bindingBudget = r.bindingBudget;
    if (r.bindingTimeoutMs !== undefined) out.bindingTimeoutMs = r.bindingTimeoutMs;
    if (r.drainingPeers !== undefined) out.drainingPeers = { ...r.drainingPeers };
    if (r.bindingCache !== undefined) out.bindingCache = { ...r.bindingCache };
    if (r.service !== undefined) out.service = toService(r.service);
    if (r.interpreter?.kind === 'io.l5d.fs') out.dtabFile = abs(baseDir, r.interpreter.dtabFile);
    const namerd = namerdDtab(r.interpreter);
    if (namerd !== undefined) out.namerd = namerd;
    return out;
  });
  const nodeName = raw.nodeName ?? env['NODE_NAME'];
  return {
    admin: raw.admin ?? { ip: '0.0.0.0', port: 9990, allowRemoteShutdown: false },
    namers,
    routers,
    ...(nodeName ? { nodeName } : {}),
    identity: {
      trustDomain: raw.identity?.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      ...(raw.identity?.podWatch !== undefined ? { podWatch: raw.identity.podWatch } : {}),
      ...(raw.identity?.claimWaitMs !== undefined ? { claimWaitMs: raw.identity.claimWaitMs } : {}),
      ...(raw.identity?.maxClaimWaits !== undefined ? { maxClaimWaits: raw.identity.maxClaimWaits } : {}),
      ...(raw.identity?.issuer !== undefined
        ? {
            issuer: {
              ...raw.identity.issuer,
              tokenFile: abs(baseDir, raw.identity.issuer.tokenFile),
              trustBundle: abs(baseDir, raw.identity.issuer.trustBundle),
            },
          }
        : {}),
    },
    ...(raw.inet !== undefined ? { inet: { ...raw.inet } } : {}),
    shutdownGraceMs: raw.shutdownGraceMs,
    ...(raw.drainAnnounceMs !== undefined ? { drainAnnounceMs: raw.drainAnnounceMs } : {}),
    ...(raw.workers !== undefined ? { workers: raw.workers } : {}),
    ...(raw.authz !== undefined
      ? {
          authz: {
            policyFile: abs(baseDir, raw.authz.policyFile),
            ...(raw.authz.pollMs !== undefined ? { pollMs: raw.authz.pollMs } : {}),
            ...(raw.authz.parserMemoryMb !== undefined ? { parserMemoryMb: raw.authz.parserMemoryMb } : {}),
          },
        }
      : {}),
    baseDir,
  };
}

/**
 * Linkerd 1 names an unlabelled router after its protocol (`http`, `h2`), and those names show in
 * metrics (`rt`). Another unlabelled router of the same protocol (Linkerd 1 refused the clash)
 * gets `<protocol>-<index>`.
 */
function defaultLabel(routers: RawConfig['routers'], i: number): string {
  const p = (routers[i] as RawConfig['routers'][number]).protocol;
  const first = routers.findIndex((r) => r.label === undefined && r.protocol === p);
  return first === i ? p : `${p}-${i}`;
}

/** An h2 server's HTTP/2 keys, grouped (the schema allows them on h2 routers only). */
function h2ServerLimits(s: RawConfig['routers'][number]['servers'][number]): { h2?: H2ServerLimits } {
  const h2: H2ServerLimits = {};
  for (const k of H2_SERVER_KEYS) if (s[k] !== undefined) h2[k] = s[k];
  return Object.keys(h2).length > 0 ? { h2 } : {};
}

export async function loadConfig(file: string, options: LoadOptions = {}): Promise<Loaded> {
  let text: string;
  try {
    text = (await readInputFile(file, 'config')).toString('utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read config: ${firstLine(err)}`]);
  }
  return parseConfig(text, file, options);
}
