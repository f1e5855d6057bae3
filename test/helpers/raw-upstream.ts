// Hostile upstreams for the e2e suites test/e2e/hostile-upstream-*.test.ts: raw `net` backends
// that write exact bytes (each case controls the upstream's answer byte for byte), a client that
// reports what it saw (status, l5d-err, body whole or cut, trailers, socket reuse), and a mesh per
// upstream client engine: node-a with a direct router (one hop) and outgoing + incoming routers,
// node-b with an incoming router (two hops over mTLS), every router with small client timeouts.

import './test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what these files test
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { ClientConfig, HostmeshConfig, RouterConfig } from '../../src/config/types.js';
import { MESH_NAME } from '../../src/demo/demo.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { A, B } from './mesh.js';
import { freePorts } from './ports.js';

/** Connections per endpoint pool: the bound on sockets to one backend. */
export const POOL = 8;
/** Small timeouts so the slow cases fit in a test; the same code paths as the defaults. */
export const LIMITS: Omit<ClientConfig, 'loadBalancer' | 'tls'> = {
  hostConnectionPool: { maxSize: POOL },
  headersTimeoutMs: 500,
  bodyIdleTimeoutMs: 500,
  requestBodyIdleTimeoutMs: 1000,
  maxWaitMs: 3000,
  failureAccrual: { kind: 'none' },
};

/** What a smuggling answer hides after its body: served to anyone, it is a desync. */
export const SMUGGLED = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: 1\r\n\r\nSMUGGLED';
/** The backends' honest answer to GET /good. */
export const FRESH = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Fresh: 1\r\n\r\nfresh';

// ---------------------------------------------------------------------------------------------
// Raw backends.

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly head: string;
  /** Requests before this one on the same connection. */
  readonly index: number;
  /** Which accepted connection of this backend (0, 1, ...). */
  readonly conn: number;
}

/** Answers one request by writing to the socket (it may also end, destroy or keep writing later). */
export type Reply = (s: net.Socket, req: UpstreamRequest) => void;

export interface Backend {
  readonly name: string;
  readonly server: net.Server;
  /** Sockets the backend holds open now. */
  readonly sockets: Set<net.Socket>;
  /** Every request head the backend saw, in order. */
  readonly seen: UpstreamRequest[];
  /** Connections accepted so far. */
  accepted: number;
}

export interface BackendOptions {
  /** Reply once the head is in, before (or without) reading the body; later bytes are not read. */
  readonly early?: boolean;
}

/** A raw backend: parses request heads (Content-Length bodies), answers GET /good itself and everything else with `reply`. */
export async function rawBackend(name: string, reply: Reply, options: BackendOptions = {}): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const seen: UpstreamRequest[] = [];
  const backend: Backend = { name, server: net.createServer(), sockets, seen, accepted: 0 };
  backend.server.on('connection', (s) => {
    const conn = backend.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let index = 0;
    let stopped = false;
    s.on('data', (chunk: Buffer) => {
      if (stopped) return;
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
        if (!options.early && buf.length < end + 4 + length) return;
        const [method = '', path = ''] = head.split(' ');
        const req: UpstreamRequest = { method, path, head, index: index++, conn };
        seen.push(req);
        if (options.early) {
          stopped = true;
          buf = Buffer.alloc(0);
        } else buf = buf.subarray(end + 4 + length);
        if (path === '/good') s.write(FRESH);
        else reply(s, req);
        if (stopped) return;
      }
    });
  });
  await new Promise<void>((r) => backend.server.listen(0, B, r));
  return backend;
}

// ---------------------------------------------------------------------------------------------
// The client side.

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers: NodeJS.Dict<string>;
  /** The response ended normally (false: cut, or still open at the guard). */
  complete: boolean;
  /** The request went on a connection the agent had used before. */
  reused: boolean;
  ms: number;
}

export interface CallOptions {
  method?: string;
  body?: string | Buffer;
  guardMs?: number;
  agent?: http.Agent;
  /** The outgoing port of the mesh (two hops) instead of the direct router's. */
  twoHop?: boolean;
}

/** One request through the router; resolves with what the client saw by `guardMs` at the latest. */
export function call(mesh: EngineMesh, name: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    let answer: Answer = { status: 0, headers: {}, body: '', trailers: {}, complete: false, reused: false, ms: 0 };
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      answer.ms = performance.now() - started;
      if (!answer.complete) req.destroy();
      resolve(answer);
    };
    const guard = setTimeout(finish, options.guardMs ?? 5000);
    const req = http.request(
      {
        host: A,
        port: options.twoHop ? mesh.outgoing : mesh.direct,
        path,
        method: options.method ?? 'GET',
        headers: { host: name },
        agent: options.agent ?? false,
      },
      (res) => {
        answer = { ...answer, status: res.statusCode ?? 0, headers: res.headers, reused: req.reusedSocket };
        res.setEncoding('latin1');
        res.on('data', (c: string) => (answer.body += c));
        res.on('end', () => {
          answer.complete = res.complete;
          answer.trailers = res.trailers;
          finish();
        });
        res.on('aborted', finish);
        res.on('error', finish);
        res.on('close', finish);
      },
    );
    req.on('error', finish);
    req.end(options.body);
  });
}

export function l5dErr(a: Answer): string {
  const v = a.headers['l5d-err'];
  return typeof v === 'string' ? decodeURIComponent(v) : '';
}

/** A clean refusal: 502 with l5d-err, whole. */
export function isBadGateway(a: Answer): boolean {
  return a.status === 502 && l5dErr(a) !== '' && a.complete;
}

/** The head was relayed and the body cut: never ended as if complete. */
export function isCut(a: Answer): boolean {
  return a.status !== 0 && !a.complete;
}

export function describe(a: Answer): string {
  const err = l5dErr(a);
  return `${a.status} ${a.complete ? 'complete' : 'cut'}${err ? ` l5d-err "${err.slice(0, 120)}"` : ''} body ${JSON.stringify(a.body.slice(0, 60))}`;
}

// ---------------------------------------------------------------------------------------------
// The mesh of one engine: node-a (a direct router, outgoing, incoming) and node-b (incoming).

export interface EngineMesh {
  /** node-a's direct router: client -> router -> backend. */
  direct: number;
  /** node-a's outgoing router: client -> node-a -> mTLS -> node-b -> backend. */
  outgoing: number;
  meshes: Hostmesh[];
  dir: string;
  backends: Backend[];
  healthy: Backend;
}

function clientOf(engine: string | undefined, extra: Partial<ClientConfig>): ClientConfig {
  const engineKey: Partial<ClientConfig> = engine === undefined ? {} : { engine: engine as 'lean' | 'undici' };
  return { loadBalancer: { kind: 'p2c' }, ...LIMITS, ...extra, ...engineKey };
}

/**
 * Starts node-a and node-b for one engine (client.engine, when defined) with `backends` and
 * `healthy` (GET /good answers "fresh") registered in the fs namer; closes both with stopEngineMesh.
 */
export async function startEngineMesh(engine: string | undefined, backends: Backend[], healthy: Backend): Promise<EngineMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-hostile-upstream-'));
  await mkdir(join(dir, 'disco'));
  // Backends sharing a name are one service's endpoints.
  const services = new Map<string, string>();
  for (const b of [...backends, healthy]) {
    const { port } = b.server.address() as net.AddressInfo;
    services.set(b.name, `${services.get(b.name) ?? ''}${B} ${port} node=node-b\n`);
  }
  for (const [name, lines] of services) await writeFile(join(dir, 'disco', name), lines);
  const [direct, outgoing, incoming, adminA, adminB] = (await freePorts(A, 5)) as [number, number, number, number, number];
  const nodes = [
    { name: 'node-a', ip: A },
    { name: 'node-b', ip: B },
  ];
  await writeFile(join(dir, 'disco', 'hostmesh'), nodes.map((n) => `${n.ip} ${incoming} node=${n.name}`).join('\n') + '\n');
  const pki = await writeDemoPki(join(dir, 'certs'), MESH_NAME, nodes);
  const base = {
    protocol: 'http' as const,
    dtab: '/svc => /#/io.l5d.fs;',
    identifier: [{ kind: 'io.l5d.header.token' as const, header: 'Host' }],
    maxHops: 64,
  };
  const meshes: Hostmesh[] = [];
  for (const node of nodes) {
    const certs = pki.nodes.get(node.name) as { cert: string; key: string };
    const inc: RouterConfig = {
      ...base,
      label: 'incoming',
      transformers: [{ kind: 'io.l5d.k8s.localnode' }],
      servers: [{ ip: node.ip, port: incoming, tls: { certPath: certs.cert, keyPath: certs.key, caCertPath: pki.ca, requireClientAuth: true } }],
      client: clientOf(engine, {}),
    };
    const routers: RouterConfig[] = [inc];
    if (node.name === 'node-a') {
      routers.unshift(
        { ...base, label: 'direct', transformers: [], servers: [{ ip: A, port: direct }], client: clientOf(engine, {}) },
        {
          ...base,
          label: 'outgoing',
          transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh' }],
          servers: [{ ip: A, port: outgoing }],
          client: clientOf(engine, {
            tls: { commonName: MESH_NAME, trustCerts: [pki.ca], clientAuth: { certPath: certs.cert, keyPath: certs.key } },
          }),
        },
      );
    }
    const config: HostmeshConfig = {
      admin: { ip: node.ip, port: node.name === 'node-a' ? adminA : adminB, allowRemoteShutdown: false },
      namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: join(dir, 'disco') }],
      routers,
      nodeName: node.name,
      shutdownGraceMs: 0,
      baseDir: dir,
    };
    meshes.push(await startHostmesh(config, { logger: silentLogger() }));
  }
  return { direct, outgoing, meshes, dir, backends, healthy };
}

export async function stopEngineMesh(m: EngineMesh): Promise<void> {
  await Promise.all(m.meshes.map((h) => h.close(0)));
  for (const b of [...m.backends, m.healthy]) {
    for (const s of b.sockets) s.destroy();
    b.server.close();
  }
  await rm(m.dir, { recursive: true, force: true });
}

/** The router still serves a normal request: the healthy backend's fresh answer, within 3 s. */
export async function stillServes(t: Test, m: EngineMesh, twoHop = false): Promise<void> {
  const r = await call(m, 'healthy', '/good', { guardMs: 3000, twoHop });
  t.ok(r.status === 200 && r.body === 'fresh', `the router still serves a normal request (${describe(r)})`);
}

/** Writes `text` one byte each `ms` until done or the socket closes. */
export function trickle(s: net.Socket, text: string, ms: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (s.destroyed || i >= text.length) return void clearInterval(timer);
    s.write(text[i++] as string);
  }, ms);
  s.once('close', () => clearInterval(timer));
}

/** The healthy backend every mesh has: answers GET /good (every backend does) with "fresh". */
export function healthyBackend(): Promise<Backend> {
  return rawBackend('healthy', (s) => s.write(FRESH));
}
