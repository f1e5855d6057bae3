// Loads a router config: YAML (Linkerd 1 shape) -> `--set` overrides -> unenforced Linkerd 1 keys
// warned and stripped -> zod validation -> typed HostmeshConfig. Every error names file:line:col
// and the key path; several errors are reported together.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { DtabParseError, parseDtab } from '../dtab/parse.js';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { rawConfigSchema, UNENFORCED, type RawConfig } from './schema.js';
import { UNENFORCED_OPTIONS } from './kinds.js';
import type { HostmeshConfig, NamerConfig, RouterConfig } from './types.js';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

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

function showPath(path: readonly Key[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out === '' ? k : `.${k}`;
  return out || '(top level)';
}

class Positions {
  constructor(
    readonly file: string,
    readonly doc: Document,
    readonly lines: LineCounter,
  ) {}

  /** file:line:col of the value at `path` (or of the nearest parent that exists). */
  at(path: readonly Key[], keyOf?: string): string {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      const node = sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true);
      if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
        let offset = node.range[0] as number;
        if (keyOf !== undefined && n === path.length && isMap(node)) {
          const pair = node.items.find((p) => isScalar(p.key) && p.key.value === keyOf);
          if (pair && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
        }
        const { line, col } = this.lines.linePos(offset);
        return `${this.file}:${line}:${col}`;
      }
    }
    return `${this.file}:1:1`;
  }
}

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
function stripUnenforced(raw: Record<string, unknown>, warn: (path: Key[]) => void): void {
  const strip = (obj: unknown, kind: string, path: Key[]): void => {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
    const o = obj as Record<string, unknown>;
    for (const key of UNENFORCED[kind] ?? []) {
      if (key in o) {
        warn([...path, key]);
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
        warn([...path, key]);
        delete o[key];
      }
    }
  };
  strip(raw, 'root', []);
  strip(raw['admin'], 'admin', ['admin']);
  const namers = raw['namers'];
  if (Array.isArray(namers)) namers.forEach((n, i) => strip(n, 'namer', ['namers', i]));
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
    strip(ro['client'], 'client', ['routers', i, 'client']);
    const client = ro['client'] as Record<string, unknown> | undefined;
    if (client && typeof client === 'object') stripKindOptions(client['loadBalancer'], 'loadBalancer', ['routers', i, 'client', 'loadBalancer']);
    if (client && typeof client === 'object') strip(client['tls'], 'clientTls', ['routers', i, 'client', 'tls']);
    const servers = ro['servers'];
    if (Array.isArray(servers)) {
      servers.forEach((s: unknown, j) => {
        strip(s, 'server', ['routers', i, 'servers', j]);
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

function issueText(issue: z.core.$ZodIssue): { path: Key[]; message: string; key?: string } {
  const path = issue.path.filter((k): k is Key => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    return {
      path: [...path, keys[0] as string],
      key: keys[0] as string,
      message: `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')} (not a Linkerd 1 or hostmesh config key)`,
    };
  }
  return { path, message: issue.message };
}

/** Parses and validates config text. Pure except for reading dtabFiles (when `readFile` is given). */
export function parseConfig(text: string, file: string, options: LoadOptions = {}, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): Loaded {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return `${file}:${line}:${col}: ${e.message.split('\n')[0] ?? e.message}`;
      }),
    );
  }
  const pos = new Positions(file, doc, lines);
  const raw: unknown = doc.toJS() ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([`${file}:1:1: the config must be a YAML mapping`]);
  }
  const obj = raw as Record<string, unknown>;
  for (const s of options.set ?? []) applySet(obj, s);
  const warnings: string[] = [];
  stripUnenforced(obj, (path) => warnings.push(`${pos.at(path.slice(0, -1), String(path[path.length - 1]))}: ${showPath(path)}: accepted, not enforced`));

  const result = rawConfigSchema.safeParse(obj);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.flatMap(unionBranch).map((issue) => {
        const { path, message, key } = issueText(issue);
        const where = key === undefined ? pos.at(path) : pos.at(path.slice(0, -1), key);
        return `${where}: ${showPath(path)}: ${message}`;
      }),
    );
  }
  const baseDir = dirname(resolve(file));
  const config = toConfig(result.data, baseDir, options.env ?? process.env);
  const problems: string[] = [];
  config.routers.forEach((r, i) => {
    const raw = result.data.routers[i];
    if (raw?.dtabFile !== undefined) {
      try {
        r.dtab = read(r.dtabFile as string);
      } catch (err) {
        problems.push(`${pos.at(['routers', i, 'dtabFile'])}: routers[${i}].dtabFile: cannot read ${r.dtabFile}: ${(err as Error).message}`);
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
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, warnings };
}

function abs(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function toConfig(raw: RawConfig, baseDir: string, env: NodeJS.ProcessEnv): HostmeshConfig {
  const namers: NamerConfig[] = raw.namers.map((n) =>
    n.kind === 'io.l5d.fs'
      ? { kind: n.kind, prefix: n.prefix ?? '/io.l5d.fs', rootDir: abs(baseDir, n.rootDir), ...(n.idleTtlSecs !== undefined ? { idleTtlSecs: n.idleTtlSecs } : {}) }
      : {
          kind: n.kind,
          prefix: n.prefix ?? '/io.l5d.k8s',
          ...(n.host !== undefined ? { host: n.host } : {}),
          ...(n.port !== undefined ? { port: n.port } : {}),
          ...(n.labelSelector !== undefined ? { labelSelector: n.labelSelector } : {}),
          ...(n.api !== undefined ? { api: n.api } : {}),
          ...(n.maxNamespaces !== undefined ? { maxNamespaces: n.maxNamespaces } : {}),
          ...(n.idleTtlSecs !== undefined ? { idleTtlSecs: n.idleTtlSecs } : {}),
        },
  );
  const routers: RouterConfig[] = raw.routers.map((r, i) => {
    const identifier = r.identifier === undefined ? [{ kind: 'io.l5d.header.token', header: 'Host' }] : Array.isArray(r.identifier) ? r.identifier : [r.identifier];
    const tls = r.client?.tls;
    const out: RouterConfig = {
      protocol: 'http',
      label: r.label ?? `http${i === 0 ? '' : `-${i}`}`,
      dtab: r.dtab ?? '',
      identifier,
      transformers: r.interpreter?.transformers ?? [],
      servers: r.servers.map((s) => ({
        port: s.port,
        ip: s.ip,
        ...(s.headersTimeoutMs !== undefined ? { headersTimeoutMs: s.headersTimeoutMs } : {}),
        ...(s.idleTimeoutMs !== undefined ? { idleTimeoutMs: s.idleTimeoutMs } : {}),
        ...(s.maxHeaderBytes !== undefined ? { maxHeaderBytes: s.maxHeaderBytes } : {}),
        ...(s.maxHeaders !== undefined ? { maxHeaders: s.maxHeaders } : {}),
        ...(s.tls
          ? {
              tls: {
                certPath: abs(baseDir, s.tls.certPath),
                keyPath: abs(baseDir, s.tls.keyPath),
                ...(s.tls.caCertPath !== undefined ? { caCertPath: abs(baseDir, s.tls.caCertPath) } : {}),
                requireClientAuth: s.tls.requireClientAuth,
              },
            }
          : {}),
      })),
      client: {
        loadBalancer: { kind: (r.client?.loadBalancer?.kind as 'p2c' | 'ewma' | 'roundRobin' | undefined) ?? 'p2c' },
        ...(tls
          ? {
              tls: {
                ...(tls.commonName !== undefined ? { commonName: tls.commonName } : {}),
                ...(tls.trustCerts !== undefined ? { trustCerts: tls.trustCerts.map((p) => abs(baseDir, p)) } : {}),
                ...(tls.trustCertsBundle !== undefined ? { trustCertsBundle: abs(baseDir, tls.trustCertsBundle) } : {}),
                ...(tls.disableValidation !== undefined ? { disableValidation: tls.disableValidation } : {}),
                ...(tls.clientAuth !== undefined
                  ? { clientAuth: { certPath: abs(baseDir, tls.clientAuth.certPath), keyPath: abs(baseDir, tls.clientAuth.keyPath) } }
                  : {}),
              },
            }
          : {}),
      },
      maxHops: r.maxHops ?? 64,
    };
    if (r.dtabFile !== undefined) out.dtabFile = abs(baseDir, r.dtabFile);
    if (r.dstPrefix !== undefined) out.dstPrefix = r.dstPrefix;
    if (r.bindingCache !== undefined) out.bindingCache = { ...r.bindingCache };
    if (r.bindingBudget !== undefined) out.bindingBudget = r.bindingBudget;
    return out;
  });
  const nodeName = raw.nodeName ?? env['NODE_NAME'];
  return {
    admin: raw.admin ?? { ip: '0.0.0.0', port: 9990, allowRemoteShutdown: false },
    namers,
    routers,
    ...(nodeName ? { nodeName } : {}),
    shutdownGraceMs: raw.shutdownGraceMs,
    baseDir,
  };
}

export async function loadConfig(file: string, options: LoadOptions = {}): Promise<Loaded> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read config: ${(err as Error).message}`]);
  }
  return parseConfig(text, file, options);
}

