// `npm run bench:deadline`: issue 18's deadline figure. Through the two-node mesh (node-a's outgoing
// router, mTLS, node-b's incoming router) to a backend that sleeps 1 s, N requests with a 100 ms
// l5d-ctx-deadline: how fast the 503 comes back, and whether the backend saw each request cancelled.

import http from 'node:http';
import { request } from '../helpers/http.js';
import { A, listen, startMesh } from '../helpers/mesh.js';

const N = Number(process.env['N'] ?? 20);
const DEADLINE_MS = Number(process.env['DEADLINE_MS'] ?? 100);
const SLEEP_MS = 1000;

const ns = (ms: number): string => `${BigInt(Math.trunc(ms)) * 1_000_000n}`;

async function main(): Promise<void> {
  const seen = { requests: 0, cancelled: 0, answered: 0, cancelledAfterMs: [] as number[] };
  const backend = await listen(
    http.createServer((req, res) => {
      if (req.url === '/__ready') return void res.end();
      seen.requests++;
      const arrived = Date.now();
      req.resume();
      const timer = setTimeout(() => {
        seen.answered++;
        res.end('late\n');
      }, SLEEP_MS);
      res.on('close', () => {
        if (res.writableFinished) return;
        clearTimeout(timer);
        seen.cancelled++;
        seen.cancelledAfterMs.push(Date.now() - arrived);
      });
    }),
    '127.0.0.1',
  );
  const mesh = await startMesh();
  try {
    await mesh.register('sleepy', backend);
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const started = Date.now();
      const r = await request({
        host: A,
        port: mesh.ports.outgoing,
        path: 'http://sleepy/',
        headers: { 'l5d-ctx-deadline': `${ns(started)} ${ns(started + DEADLINE_MS)}` },
      });
      latencies.push(Date.now() - started);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    // Give the last cancellations time to reach the backend.
    const end = Date.now() + 2000;
    while (seen.cancelled + seen.answered < seen.requests && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
    console.log(`${N} requests, l5d-ctx-deadline ${DEADLINE_MS} ms, two hops, backend sleeps ${SLEEP_MS} ms`);
    console.log(`statuses: ${[...statuses].map(([s, n]) => `${s} x${n}`).join(', ')}`);
    console.log(`answer latency ms: min ${latencies[0]} p50 ${pct(50)} p99 ${pct(99)} max ${latencies.at(-1)}`);
    console.log(`backend: ${seen.requests} received, ${seen.cancelled} cancelled, ${seen.answered} answered`);
    const c = seen.cancelledAfterMs.sort((a, b) => a - b);
    console.log(`backend saw the cancel after (ms since its arrival): min ${c[0]} max ${c.at(-1)}`);
  } finally {
    await mesh.close();
    backend.closeAllConnections();
    backend.close();
  }
}

await main();
