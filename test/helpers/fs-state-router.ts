// The router the state-bounds floods attack (test/namer/state-bounds*.test.ts): one outgoing HTTP
// router over the fs namer with small binding caches, time on an injected clock, a backend named
// `web`, and the tools the floods use (requests 8 at a time, metrics, "a normal request within 1 s").

import http from 'node:http';
import type net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { clockWithNow } from '../../src/core/clock.js';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from './ports.js';
import { request } from './http.js';
import { parsePrometheus } from './prometheus.js';
import { promptBound, timed } from './prompt.js';

const HOST = '127.0.0.1';
export const PATHS = 200;
export const OVERRIDES = 50;
export const MAX_IDLE = 100;

export interface FsStateRouter {
  readonly hm: Hostmesh;
  /** Moves the router's clock forward. */
  advance(ms: number): void;
  /** A GET with this Host (and headers) through the router: its status, 0 on a socket error. */
  get(host: string, headers?: Record<string, string>): Promise<number>;
  /**
   * Sends `n` requests built by `make`, 8 at a time; returns the status counts. The first flood
   * times a normal request before it starts: the baseline normalWithin1s measures against.
   */
  flood(n: number, make: (i: number) => Promise<number>): Promise<Map<number, number>>;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  /**
   * A normal request is served "within 1 s", measured so a busy machine cannot trip it: within 10x
   * the same request before the first flood (at least 2 s); during a flood, also by order (the
   * flood still runs when it is answered, so it was not queued behind it).
   */
  normalWithin1s(t: Test, what: string): Promise<void>;
}

/** Starts the router for `t` (closed in its teardown). */
export async function startFsStateRouter(t: Test): Promise<FsStateRouter> {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const backend = http.createServer((req, res) => {
    req.resume();
    res.end('web');
  });
  await new Promise<void>((r) => backend.listen(0, HOST, r));
  t.teardown(() => {
    backend.closeAllConnections();
    return new Promise<void>((r) => backend.close(() => r()));
  });
  await writeFile(join(dir, 'web'), `${HOST} ${(backend.address() as net.AddressInfo).port}\n`);
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir, idleTtlSecs: 30, maxIdleNames: MAX_IDLE }],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: '/svc => /#/io.l5d.fs;',
        identifier: [],
        transformers: [],
        servers: [{ ip: HOST, port }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
        bindingCache: { paths: PATHS, trees: PATHS, bounds: 1000, clients: 1000, idleTtlSecs: 600, overrides: OVERRIDES },
      },
    ],
    shutdownGraceMs: 0,
    baseDir: dir,
  };
  let clock = 1_000_000;
  const hm = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => clock) });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(async () => {
    agent.destroy();
    await hm.close(0);
  });

  const get = (host: string, headers: Record<string, string> = {}): Promise<number> =>
    new Promise((resolve) => {
      const req = http.request({ host: HOST, port, path: '/', agent, headers: { host, ...headers } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
      req.end();
    });

  let baselineMs: Promise<number> | undefined;
  let flooding = 0;
  return {
    hm,
    advance: (ms) => {
      clock += ms;
    },
    get,
    async flood(n, make) {
      flooding++;
      baselineMs ??= timed(() => get('web')).then((r) => r.ms);
      await baselineMs;
      const counts = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < n) {
            const status = await make(next++);
            counts.set(status, (counts.get(status) ?? 0) + 1);
          }
        }),
      ).finally(() => flooding--);
      return counts;
    },
    async metric(name, labels = {}) {
      const text = (await request({ host: HOST, port: admin, path: '/metrics' })).body;
      const samples = parsePrometheus(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      return samples.length === 0 ? undefined : samples.reduce((a, s) => a + s.value, 0);
    },
    async normalWithin1s(t, what) {
      const bound = promptBound(await (baselineMs ?? 0), 2000);
      const during = flooding > 0;
      const started = performance.now();
      const status = await get('web');
      const ms = performance.now() - started;
      t.equal(status, 200, `${what}: a normal request is served`);
      t.ok(ms < bound, `${what}: within 1 s (${ms.toFixed(0)} ms; bound ${bound} ms, 10x before the flood)`);
      if (during) t.ok(flooding > 0, `${what}: answered while the flood still ran`);
    },
  };
}
