// The server engines side by side (issue 28, Design 2's server half): one hostmesh with one router
// per listener engine (servers[].engine: 'node' is Node's http.Server, 'lean' raw sockets and
// llhttp), every router in front of the same backend, and a raw client that sends exact bytes,
// cut where a test says, and settles (never samples) before it reports what came back.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig, RouterConfig, ServerConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh, type RunningRouter } from '../../src/app/hostmesh.js';
import { leanServerAvailable } from '../../src/server/h1-server.js';
import { freePorts } from './ports.js';
import { testRouter } from './router-config.js';
import { procAddress } from './sockets.js';

export const ENGINES = ['node', 'lean'] as const;
export type ServerEngine = (typeof ENGINES)[number];

/** Engines a run covers: both, or the one SERVER_ENGINES names (SERVER_ENGINES=node before the lean one exists). */
export function enginesUnderTest(): readonly ServerEngine[] {
  const only = process.env.SERVER_ENGINES;
  if (only === undefined || only === '') return ENGINES;
  return ENGINES.filter((e) => only.split(',').includes(e));
}

export interface EngineRouters {
  readonly mesh: Hostmesh;
  readonly ip: string;
  port(engine: ServerEngine): number;
  running(engine: ServerEngine): RunningRouter;
  /** Accepted sockets the engine's listener holds now (Listener.connections). */
  connections(engine: ServerEngine): number;
  /** Requests the engine's router is handling now. */
  inFlight(engine: ServerEngine): number;
  close(): Promise<void>;
}

/**
 * Starts one hostmesh with a router labelled after each engine, every one routing every name to
 * `backendPort` on `ip` (`dtab` overrides), each server with `server`'s keys and its `engine`.
 */
export async function startEngineRouters(
  ip: string,
  backendPort: number,
  server: Partial<ServerConfig>,
  engines: readonly ServerEngine[] = ENGINES,
  dtab = `/svc => /$/inet/${ip}/${backendPort};`,
): Promise<EngineRouters> {
  // The listener falls back to Node's server where the lean one cannot run: a comparison of Node
  // with itself would pass for nothing.
  if (engines.includes('lean') && !leanServerAvailable()) throw new Error('the lean server engine is not available on this Node');
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-server-engines-'));
  const ports = (await freePorts(ip, engines.length + 1)) as number[];
  const admin = ports.pop() as number;
  const routers: RouterConfig[] = engines.map((engine, i) => {
    const s: ServerConfig = { ip, port: ports[i] as number, ...server, engine };
    return testRouter(engine, ip, ports[i] as number, dtab, { identifier: [], servers: [s] });
  });
  const config: HostmeshConfig = {
    admin: { ip, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers,
    shutdownGraceMs: 0,
    baseDir: dir,
  };
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  const running = (engine: ServerEngine): RunningRouter => {
    const r = mesh.routers[engines.indexOf(engine)];
    if (r === undefined) throw new Error(`no router for engine ${engine}`);
    return r;
  };
  return {
    mesh,
    ip,
    port: (engine) => ports[engines.indexOf(engine)] as number,
    running,
    connections: (engine) => running(engine).listeners.reduce((n, l) => n + l.connections, 0),
    inFlight: (engine) => running(engine).router.inFlight,
    close: async () => {
      await mesh.close(0);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Settling: progress is counted in event-loop probes, not in milliseconds, so a busy machine
// slows the probes as much as the work they wait for.

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function probe(): Promise<void> {
  for (let i = 0; i < 3; i++) await immediate();
  await tick(1);
}

/**
 * Bytes waiting unread in the kernel on either end of one loopback connection (the server's
 * receive queue: the engine has not read them; the client's: the test has not), from
 * /proc/net/tcp. 0 once the connection is gone.
 */
export function unread(ip: string, serverPort: number, clientPort: number): number {
  const server = procAddress(ip, serverPort);
  const client = procAddress(ip, clientPort);
  // The table has a line per socket on the machine (thousands when busy): found by the address
  // pair in its fixed columns, "<local> <remote> <st> <tx_queue>:<rx_queue>", not by splitting every line.
  const table = readFileSync('/proc/net/tcp');
  let n = 0;
  for (const pair of [`${server} ${client} `, `${client} ${server} `]) {
    for (let at = table.indexOf(pair); at >= 0; at = table.indexOf(pair, at + pair.length)) {
      const rx = at + pair.length + 'st '.length + 'tx_queue:'.length;
      n += Number.parseInt(table.toString('latin1', rx, rx + 8), 16);
    }
  }
  return n;
}

export interface Exchange {
  /** Everything the engine wrote back, in order. */
  readonly bytes: Buffer;
  /** The engine closed (or reset) the connection. */
  readonly closed: boolean;
  /** Nothing moved for HANG_PROBES probes while something was still open or in flight. */
  readonly hung: boolean;
}

/** Probes without progress after which an unfinished exchange counts as waiting for good. */
export const HANG_PROBES = 100;

export interface ExchangeOptions {
  /** Whether the router and its backend have nothing in flight. */
  readonly idle: () => boolean;
  /** A value that changes whenever the backend makes progress (requests seen, bytes read). */
  readonly progress: () => string;
  /** Probes between pieces (default 1): each piece is read by the engine on its own. */
  readonly gap?: number;
  /** Connect with TLS (a peer router's options) instead of plaintext. */
  readonly tls?: ConnectionOptions;
}

/**
 * Connects to `port`, writes `pieces` one by one (each read on its own by the engine), then
 * settles: done once the engine has read every byte, the test every answer byte, nothing is in
 * flight and nothing moved for 3 probes; or, with something still waiting, after HANG_PROBES
 * probes without progress. The socket is destroyed before this returns.
 */
export async function exchange(ip: string, port: number, pieces: readonly Buffer[], options: ExchangeOptions): Promise<Exchange> {
  const s = options.tls === undefined ? net.connect({ host: ip, port }) : tls.connect({ host: ip, port, ...options.tls });
  s.setNoDelay(true);
  const chunks: Buffer[] = [];
  let received = 0;
  let closed = false;
  s.on('data', (d: Buffer) => {
    chunks.push(d);
    received += d.length;
  });
  s.on('error', () => undefined);
  s.on('close', () => (closed = true));
  await new Promise<void>((resolve) => {
    s.once(options.tls === undefined ? 'connect' : 'secureConnect', () => resolve());
    s.once('close', () => resolve());
  });
  const clientPort = s.localPort ?? 0;
  for (const piece of pieces) {
    if (closed) break;
    if (piece.length > 0) s.write(piece);
    for (let i = 0; i < (options.gap ?? 1); i++) await immediate();
  }
  let last = '';
  let still = 0;
  let hung = false;
  for (;;) {
    await probe();
    const signature = `${received} ${closed} ${options.progress()} ${options.idle()}`;
    still = signature === last ? still + 1 : 0;
    last = signature;
    // unread() last, only when all else holds: it reads all of /proc/net/tcp, which on a busy
    // machine (thousands of sockets) costs milliseconds of CPU; on every probe it was most of the
    // differential tests' time.
    if (still >= 3 && options.idle() && (closed || s.writableLength === 0) && unread(ip, port, clientPort) === 0) break;
    if (still >= HANG_PROBES) {
      hung = true;
      break;
    }
  }
  s.destroy();
  return { bytes: Buffer.concat(chunks), closed, hung };
}

/** Resolves once `check` holds (probing), or with false after `ceilingMs` (a precondition's bound, not an assertion's). */
export async function settled(check: () => boolean, ceilingMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + ceilingMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await probe();
  }
  return check();
}

// ---------------------------------------------------------------------------------------------
// Reading answers off the wire, as a client would.

export interface Answered {
  readonly status: number;
  /** Field names lowercased, values as sent, in order. */
  readonly fields: readonly [string, string][];
  readonly body: Buffer;
  readonly trailers: readonly [string, string][];
  /** The answer ended (false: the bytes stopped inside it). */
  readonly complete: boolean;
}

export interface ReadAnswers {
  readonly answers: Answered[];
  /** Bytes after the last answer that are no answer (empty when all were read). */
  readonly rest: Buffer;
}

/**
 * Splits an engine's bytes into answers. `methods` are the request methods in order: an answer to
 * HEAD has no body (RFC 9112 6.3), nor does a 1xx, 204 or 304; others are framed by chunked
 * coding, Content-Length, or the close. A 1xx is an answer of its own (the next one answers the
 * same request).
 */
export function readAnswers(bytes: Buffer, methods: readonly string[]): ReadAnswers {
  const answers: Answered[] = [];
  let at = 0;
  let request = 0;
  const text = bytes.toString('latin1');
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text.slice(at, at + 200));
    if (m === null || end < 0) break;
    const status = Number(m[1]);
    const fields: [string, string][] = [];
    for (const line of text.slice(at + m[0].length, end).split('\r\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      fields.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
    }
    at = end + 4;
    const get = (name: string): string | undefined => fields.find(([k]) => k === name)?.[1];
    const method = methods[request] ?? 'GET';
    let body: Buffer = Buffer.alloc(0);
    const trailers: [string, string][] = [];
    let complete = true;
    if (status >= 100 && status < 200) {
      answers.push({ status, fields, body, trailers, complete });
      continue;
    }
    request++;
    if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (/chunked/i.test(get('transfer-encoding') ?? '')) {
      const parts: Buffer[] = [];
      complete = false;
      for (;;) {
        const lineEnd = text.indexOf('\r\n', at);
        if (lineEnd < 0) break;
        const size = Number.parseInt(text.slice(at, lineEnd).split(';')[0] ?? '', 16);
        if (!Number.isFinite(size)) break;
        at = lineEnd + 2;
        if (size === 0) {
          const tEnd = text.indexOf('\r\n\r\n', at - 2);
          if (tEnd < 0) break;
          for (const line of text.slice(at, tEnd).split('\r\n')) {
            if (line === '') continue;
            const colon = line.indexOf(':');
            trailers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
          }
          at = tEnd + 4;
          complete = true;
          break;
        }
        if (at + size + 2 > text.length) break;
        parts.push(bytes.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (get('content-length') !== undefined) {
      const n = Number(get('content-length'));
      body = bytes.subarray(at, Math.min(text.length, at + n));
      complete = at + n <= text.length;
      at += n;
    } else {
      body = bytes.subarray(at);
      at = text.length;
    }
    answers.push({ status, fields, body, trailers, complete });
    if (!complete) break;
  }
  return { answers, rest: bytes.subarray(Math.min(at, bytes.length)) };
}

/** A counter of one engine's router in `routers`' metrics, summed over the label values not given in `labels`. */
export function engineCounter(routers: EngineRouters, engine: ServerEngine, name: string, labels: Record<string, string>): number {
  const metric = routers.mesh.metrics.registry.getSingleMetric(name) as unknown as
    | { hashMap?: Record<string, { labels: Record<string, string>; value: number }> }
    | undefined;
  let sum = 0;
  for (const v of Object.values(metric?.hashMap ?? {})) {
    if (v.labels['router'] === engine && Object.entries(labels).every(([k, want]) => v.labels[k] === want)) sum += v.value;
  }
  return sum;
}
