// `npm run bench:leak` (not a test): does a router keep anything per ordinary request? The demo
// mesh (two routers, mutual TLS between them, the demo's `hello` app behind node-b) runs in this
// process; ROUNDS rounds of REQUESTS requests go through node-a's outgoing port, 32 at a time, and
// after each round the heap in use is read after two full collections. A leak shows as a heap
// that keeps rising round after round; garbage a collection has not reached yet cannot show.
// This is the leak check `npm run bench`'s soak can only estimate from heap samples (its floor
// per 30 s window moves with when the old generation was last collected).
//
// Usage: node dist/test/bench/leak.js [REQUESTS (20000)] [ROUNDS (6)]

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Pool } from 'undici';
import { A, startMesh } from '../helpers/mesh.js';
import { helloRounds } from './mesh/hello-rounds.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const REQUESTS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 6);
const CONCURRENCY = 32;

const heapMb = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576;
};

const mesh = await startMesh();
const pool = new Pool(`http://${A}:${mesh.ports.outgoing}`, { connections: CONCURRENCY });

const heaps = [heapMb()];
console.log(`start: heap ${heaps[0]?.toFixed(2)} MB after full GC`);
for (let i = 1; i <= ROUNDS; i++) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const failed = await helloRounds(pool, REQUESTS, CONCURRENCY);
  const cpu = process.cpuUsage(cpu0);
  heaps.push(heapMb());
  // CPU of the whole process (client, both routers, the app) per request: a before/after figure
  // for the same build's hot path, steadier than a multi-process bench on a small machine.
  const cpuUs = (cpu.user + cpu.system) / REQUESTS;
  console.log(
    `round ${i}: ${REQUESTS} requests (${failed} not 200) in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${cpuUs.toFixed(0)} us CPU each; heap ${heaps[i]?.toFixed(2)} MB after full GC`,
  );
}
await pool.close();
await mesh.close();
// Rounds 1-2 warm caches (pools, bindings, compiled code); what the later rounds add is per request.
const warm = heaps[Math.min(2, ROUNDS)] ?? 0;
const last = heaps[ROUNDS] ?? 0;
const perRequest = ROUNDS > 2 ? ((last - warm) * 1048576) / ((ROUNDS - 2) * REQUESTS) : Number.NaN;
console.log(`after warm-up: ${(last - warm).toFixed(2)} MB over ${(ROUNDS - 2) * REQUESTS} requests (${perRequest.toFixed(2)} bytes per request)`);
