// Linkerd 1 keys that hostmesh enforces under its own names, and Linkerd 1's defaults the schema
// does not express: applied to the raw config before validation, each value checked where it is
// written so an error names the Linkerd 1 key.
//   admin.shutdownGraceMs            -> shutdownGraceMs
//   servers[].serverSession.idleTimeMs -> servers[].idleTimeoutMs
//   servers[].maxCallDepth           -> the router's maxHops (the smallest of its servers')
//   maxHeadersKB + maxInitialLineKB  -> each server's maxHeaderBytes (http routers: Node counts both)
//   servers[].port absent            -> 4140 (http) or 4142 (h2), as Linkerd 1

type Key = string | number;
type Obj = Record<string, unknown>;

export interface KeyReporter {
  problem(path: Key[], message: string): void;
}

/** Linkerd 1's default server ports (HttpConfig, H2Config `defaultServerPort`). */
export const LINKERD1_DEFAULT_PORT: Readonly<Record<string, number>> = { http: 4140, h2: 4142 };

/** Linkerd 1's header limits when one of the pair is given (HttpConfig: 8 KB of headers, a 4 KB initial line). */
const DEFAULT_HEADERS_KB = 8;
const DEFAULT_INITIAL_LINE_KB = 4;
/** The server schema's bounds on maxHeaderBytes. */
const MIN_HEADER_BYTES = 1024;
const MAX_HEADER_BYTES = 1024 * 1024;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** An integer at least `min`, or a problem at `path` (undefined when absent or wrong). */
function intAt(o: Obj, key: string, min: number, path: Key[], report: KeyReporter): number | undefined {
  const given = o[key];
  if (given === undefined) return undefined;
  // A number written as a string, as Jackson read it (load.ts coerceScalars does the same for the schema).
  const v = typeof given === 'string' && /^\s*\d+\s*$/.test(given) ? Number(given) : given;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    report.problem([...path, key], `expected an integer of at least ${min}`);
    return undefined;
  }
  return v;
}

/** Rewrites the Linkerd 1 keys above into hostmesh's in `raw` (in place). */
export function applyLinkerd1Keys(raw: Obj, report: KeyReporter): void {
  const admin = raw['admin'];
  if (isObj(admin) && 'shutdownGraceMs' in admin) {
    const grace = intAt(admin, 'shutdownGraceMs', 0, ['admin'], report);
    if (grace !== undefined && raw['shutdownGraceMs'] !== undefined && raw['shutdownGraceMs'] !== grace) {
      report.problem(['admin', 'shutdownGraceMs'], 'differs from the top-level shutdownGraceMs: give one of them');
    } else if (grace !== undefined) raw['shutdownGraceMs'] = grace;
    delete admin['shutdownGraceMs'];
  }
  const routers = raw['routers'];
  if (!Array.isArray(routers)) return;
  routers.forEach((r: unknown, i) => {
    if (!isObj(r)) return;
    const servers = Array.isArray(r['servers']) ? (r['servers'] as unknown[]) : [];
    const http = r['protocol'] === 'http';
    const headerBytes = http ? headerLimit(r, ['routers', i], report) : undefined;
    const depths: number[] = [];
    servers.forEach((s, j) => {
      if (!isObj(s)) return;
      const at: Key[] = ['routers', i, 'servers', j];
      const port = typeof r['protocol'] === 'string' ? LINKERD1_DEFAULT_PORT[r['protocol']] : undefined;
      if (!('port' in s) && port !== undefined) s['port'] = port;
      const session = s['serverSession'];
      if (isObj(session) && 'idleTimeMs' in session) {
        const idle = intAt(session, 'idleTimeMs', 100, [...at, 'serverSession'], report);
        if (idle !== undefined && s['idleTimeoutMs'] === undefined) s['idleTimeoutMs'] = idle;
        delete session['idleTimeMs'];
        if (Object.keys(session).length === 0) delete s['serverSession'];
      }
      if ('maxCallDepth' in s) {
        const depth = intAt(s, 'maxCallDepth', 1, at, report);
        if (depth !== undefined) depths.push(depth);
        delete s['maxCallDepth'];
      }
      if (headerBytes !== undefined && s['maxHeaderBytes'] === undefined) s['maxHeaderBytes'] = headerBytes;
    });
    if (depths.length > 0 && r['maxHops'] === undefined) r['maxHops'] = Math.min(...depths);
  });
}

/** maxHeadersKB and maxInitialLineKB as one byte limit (Node's maxHeaderSize covers the request line and headers), or undefined. */
function headerLimit(r: Obj, at: Key[], report: KeyReporter): number | undefined {
  if (!('maxHeadersKB' in r) && !('maxInitialLineKB' in r)) return undefined;
  const headers = intAt(r, 'maxHeadersKB', 1, at, report);
  const line = intAt(r, 'maxInitialLineKB', 1, at, report);
  const bad = (r['maxHeadersKB'] !== undefined && headers === undefined) || (r['maxInitialLineKB'] !== undefined && line === undefined);
  delete r['maxHeadersKB'];
  delete r['maxInitialLineKB'];
  if (bad) return undefined;
  const bytes = ((headers ?? DEFAULT_HEADERS_KB) + (line ?? DEFAULT_INITIAL_LINE_KB)) * 1024;
  if (bytes < MIN_HEADER_BYTES || bytes > MAX_HEADER_BYTES) {
    report.problem(
      [...at, headers !== undefined ? 'maxHeadersKB' : 'maxInitialLineKB'],
      `maxHeadersKB + maxInitialLineKB must come to at most ${MAX_HEADER_BYTES / 1024} KB`,
    );
    return undefined;
  }
  return bytes;
}
