// One in-process hostmesh with resilience traffic of known outcome, for the dashboard's per-service
// resilience figures: retries and an empty budget (/svc/app), timeouts (/svc/slow), requeues and an
// endpoint failure accrual marks dead (/svc/two). The clock is real time plus an offset tests move.

import { clockWithNow } from '../../src/core/clock.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { request } from './http.js';
import { listen } from './mesh.js';
import { freePorts } from './ports.js';
import { testRouter } from './router-config.js';

export const HOST = '127.0.0.1';
/** /svc/app requests: each fails once; the budget (half a retry per request, no reserve) retries every second one. */
export const APP_REQUESTS = 20;
/** /svc/slow requests: each outlives the router's totalTimeoutMs. */
export const SLOW_REQUESTS = 2;
/** /svc/two requests: balanced over a live backend and a port nobody listens on. */
export const TWO_REQUESTS = 40;

export interface ResilienceMesh {
  readonly mesh: Hostmesh;
  readonly ports: { retries: number; requeues: number; admin: number; dead: number };
  /** Moves the router's clock (metrics windows, budgets, failure accrual) forward. */
  advance(ms: number): void;
  /** Sends the traffic above; resolves with the statuses seen per service. */
  traffic(): Promise<Record<'app' | 'slow' | 'two', number[]>>;
  close(): Promise<void>;
}

export async function startResilienceMesh(): Promise<ResilienceMesh> {
  const seen = new Map<string, number>();
  const backend = await listen(
    http.createServer((req, res) => {
      const path = req.url ?? '/';
      const n = (seen.get(path) ?? 0) + 1;
      seen.set(path, n);
      if (path.startsWith('/once/') && n === 1) {
        res.writeHead(503).end('busy\n');
        return;
      }
      if (path.startsWith('/slow/')) {
        const timer = setTimeout(() => res.end('late\n'), 1_000);
        res.once('close', () => clearTimeout(timer));
        return;
      }
      res.end('ok\n');
    }),
    HOST,
  );
  const backendPort = (backend.address() as { port: number }).port;
  const [retries, requeues, admin, dead] = (await freePorts(HOST, 4)) as [number, number, number, number];
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-resilience-'));
  // Nothing listens on `dead`: connecting is refused, so the request is requeued on the backend.
  await writeFile(join(dir, 'two'), `${HOST} ${dead}\n${HOST} ${backendPort}\n`);
  let offset = 0;
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      testRouter('retries', HOST, retries, `/svc => /$/inet/${HOST}/${backendPort};`, {
        service: {
          responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' },
          retries: { budget: { ttlSecs: 60, minRetriesPerSec: 0, percentCanRetry: 0.5 }, backoff: { kind: 'constant', ms: 0 } },
          totalTimeoutMs: 300,
        },
        client: { loadBalancer: { kind: 'p2c' }, failureAccrual: { kind: 'none' } },
      }),
      testRouter('requeues', HOST, requeues, '/svc => /#/io.l5d.fs;', {
        // Two connection failures mark the dead port dead; it stays so (no probe within the test).
        client: {
          loadBalancer: { kind: 'p2c' },
          failureAccrual: { kind: 'io.l5d.consecutiveFailures', failures: 2, backoff: { kind: 'constant', ms: 600_000 } },
        },
      }),
    ],
    shutdownGraceMs: 100,
    baseDir: process.cwd(),
  };
  const mesh = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => Date.now() + offset) });
  const get = async (port: number, host: string, path: string): Promise<number> => (await request({ host: HOST, port, path, headers: { host } })).status;
  return {
    mesh,
    ports: { retries, requeues, admin, dead },
    advance(ms) {
      offset += ms;
    },
    async traffic() {
      const app: number[] = [];
      for (let i = 0; i < APP_REQUESTS; i++) app.push(await get(retries, 'app', `/once/${i}`));
      const slow = await Promise.all(Array.from({ length: SLOW_REQUESTS }, (_, i) => get(retries, 'slow', `/slow/${i}`)));
      const two: number[] = [];
      for (let i = 0; i < TWO_REQUESTS; i++) two.push(await get(requeues, 'two', `/fine/${i}`));
      return { app, slow, two };
    },
    async close() {
      await mesh.close(100);
      backend.closeAllConnections();
      await new Promise((r) => backend.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
