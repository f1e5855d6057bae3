// `npm run bench:inproc` (not a test): CPU per request of the demo mesh in one process (two
// routers with mutual TLS between them, the demo's `hello` app, an undici client), read from the
// process's own CPU counters. A busy machine moves wall-clock throughput a lot and a process's
// CPU time much less, so this is the A/B measure for changes to the forwarding path on a shared
// machine: run the same file from two builds, alternating (`node scripts/bench-ab.mjs --inproc`).
// The client and the app are in the total: read differences, not the absolute figure.
//
// Usage: node dist/test/bench/inproc.js [REQUESTS (20000)] [ROUNDS (3)]; prints one line per
// round and the median, in us of CPU (user + system) per request.

import { Pool } from 'undici';
import { A, startMesh } from '../helpers/mesh.js';
import { helloRounds } from './mesh/hello-rounds.js';

const [requestsArg, roundsArg] = process.argv.slice(2);
const REQUESTS = Number(requestsArg ?? 20_000);
const ROUNDS = Number(roundsArg ?? 3);
const CONCURRENCY = 16;

const mesh = await startMesh();
const pool = new Pool(`http://${A}:${mesh.ports.outgoing}`, { connections: CONCURRENCY });

async function round(n: number): Promise<void> {
  const failed = await helloRounds(pool, n, CONCURRENCY);
  if (failed > 0) throw new Error(`${failed} of ${n} requests were not answered 200`);
}

await round(5_000); // warm: pools, bindings, compiled code
const figures: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const before = process.cpuUsage();
  await round(REQUESTS);
  const used = process.cpuUsage(before);
  const us = (used.user + used.system) / REQUESTS;
  figures.push(us);
  console.log(`round ${i + 1}: ${us.toFixed(1)} us CPU per request`);
}
await pool.close();
await mesh.close();
const sorted = [...figures].sort((a, b) => a - b);
console.log(`median ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(1)} us CPU per request (${REQUESTS} requests a round)`);
