// `npm run bench:retries`: issue 18's retry figure. A backend answers 503 to 30% of GETs at
// random; a router with retryableRead5XX and the default budget sends RATE req/s for SECONDS.

import http from 'node:http';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { getStatus, paced } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const RATE = Number(process.env['RATE'] ?? 100);
const SECONDS = Number(process.env['SECONDS'] ?? 10);
const FAIL = Number(process.env['FAIL'] ?? 0.3);
const HOST = '127.0.0.1';

async function main(): Promise<void> {
  let attempts = 0;
  const backend = http.createServer((req, res) => {
    attempts++;
    req.resume();
    res.statusCode = Math.random() < FAIL ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => backend.listen(0, HOST, () => r()));
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers: [
      {
        protocol: 'http',
        label: 'bench',
        dtab: `/svc => /$/inet/${HOST}/${(backend.address() as { port: number }).port};`,
        identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
        transformers: [],
        servers: [{ ip: HOST, port }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
        service: { responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' } },
      },
    ],
    shutdownGraceMs: 100,
    baseDir: process.cwd(),
  };
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const total = RATE * SECONDS;
  const statuses = paced(total, RATE, (i) => getStatus({ host: HOST, port, path: `/${i}`, headers: { host: 'app' }, agent }));
  const done = await statuses;
  const ok = done.filter((s) => s === 200).length;
  const metrics = parsePrometheus(await (await fetch(`http://${HOST}:${admin}/metrics`)).text());
  const retries = metrics.find((s) => s.name === 'hostmesh_retries_total')?.value ?? 0;
  const exhausted = metrics.find((s) => s.name === 'hostmesh_retry_budget_exhausted_total' && s.labels['kind'] === 'retry')?.value ?? 0;
  const allowed = 0.2 * total + 10 * SECONDS + 10 * 10; // percentCanRetry of the requests, minRetriesPerSec, the first window's reserve
  console.log(`${total} GETs at ${RATE}/s, backend 503 on ${FAIL * 100}%, retryableRead5XX, default budget (10 s, 10/s, 20%)`);
  console.log(
    `success ${((100 * ok) / total).toFixed(2)}% (${total - ok} failed), retries ${retries} = ${((100 * retries) / total).toFixed(1)}% of requests (budget allows <= ${allowed}), budget exhausted ${exhausted} times, backend saw ${attempts}`,
  );
  agent.destroy();
  await mesh.close(100);
  backend.closeAllConnections();
  backend.close();
}

await main();
