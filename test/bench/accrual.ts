// `npm run bench:accrual`: issue 18's failure-accrual figure. Three pods, one answering 500 to
// everything; default accrual (5 consecutive failures) with a constant BACKOFF_MS; RATE req/s.

import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { getStatus, paced } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const RATE = Number(process.env['RATE'] ?? 200);
const SECONDS = Number(process.env['SECONDS'] ?? 10);
const BACKOFF_MS = Number(process.env['BACKOFF_MS'] ?? 1000);
const HOST = '127.0.0.1';

async function main(): Promise<void> {
  let sent = 0;
  let badHits = 0;
  let sentAtDeath = -1;
  const pods: http.Server[] = [];
  for (const bad of [false, false, true]) {
    const s = http.createServer((req, res) => {
      req.resume();
      if (bad) {
        badHits++;
        if (badHits === 5) sentAtDeath = sent;
      }
      res.statusCode = bad ? 500 : 200;
      res.end();
    });
    await new Promise<void>((r) => s.listen(0, HOST, () => r()));
    pods.push(s);
  }
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-accrual-'));
  await writeFile(join(dir, 'web'), pods.map((s) => `${HOST} ${(s.address() as { port: number }).port}\n`).join(''));
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      {
        protocol: 'http',
        label: 'bench',
        dtab: '/svc => /#/io.l5d.fs;',
        identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
        transformers: [],
        servers: [{ ip: HOST, port }],
        client: { loadBalancer: { kind: 'p2c' }, failureAccrual: { kind: 'io.l5d.consecutiveFailures', backoff: { kind: 'constant', ms: BACKOFF_MS } } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 100,
    baseDir: dir,
  };
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const total = RATE * SECONDS;
  const statuses = paced(total, RATE, () => {
    sent++;
    return getStatus({ host: HOST, port, path: '/', headers: { host: 'web' }, agent });
  });
  const done = await statuses;
  const failed = done.filter((s) => s !== 200).length;
  const metrics = parsePrometheus(await (await fetch(`http://${HOST}:${admin}/metrics`)).text());
  const removals = metrics.find((s) => s.name === 'hostmesh_failure_accrual_removals_total')?.value ?? 0;
  const whileDead = badHits - 5; // the probes, one per backoff
  const afterDeath = total - sentAtDeath;
  console.log(`${total} GETs at ${RATE}/s to 3 pods, one answering 500 to all; io.l5d.consecutiveFailures (5), constant backoff ${BACKOFF_MS} ms`);
  console.log(
    `marked dead after ${sentAtDeath >= 0 ? 5 : '-'} failures (request ${sentAtDeath} of ${total}); removals ${removals}; while dead it got ${whileDead} of ${afterDeath} requests = ${((100 * whileDead) / Math.max(1, afterDeath)).toFixed(2)}% (probes, one per backoff: <= ${Math.ceil((SECONDS * 1000) / BACKOFF_MS)}); failed requests ${failed}`,
  );
  agent.destroy();
  await mesh.close(100);
  for (const s of pods) {
    s.closeAllConnections();
    s.close();
  }
  await rm(dir, { recursive: true, force: true });
}

await main();
