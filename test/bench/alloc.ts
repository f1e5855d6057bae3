// `npm run bench:alloc` (not a test): where a request's allocations come from. The demo mesh (two
// routers, mutual TLS between them, the demo's `hello` app behind node-b) runs in this process;
// after a warm-up, V8's sampling heap profiler records every allocation (objects the young and
// the old generation collections freed included) while REQUESTS requests go through node-a's
// outgoing port, 16 at a time. It prints bytes per request by the frame that allocated them, and
// by the nearest hostmesh frame on the stack (what hostmesh's code caused, Node's and undici's
// work under it included). The client, the demo app and both routers share the process: the
// totals are the whole exchange's, the hostmesh rows are the two routers'.
// Allocation volume drives the young generation's collections; what outlives two of them is
// promoted and brings the full collections behind the latency tail (docs/perf-notes.md).
//
// With --promoted, only what the young generation's collections did NOT free is counted: the
// objects that were promoted to the old generation (those the full collections later freed
// included) and what is still alive at the end. That is what fills the old generation. In this
// one process the young generation fills every few dozen requests (the client and the app
// allocate too), so the objects of requests in flight are promoted far more often than in a
// router of its own, where a scavenge comes every few hundred requests: read the ranking, not
// the total.
//
// With --paced, requests go one at a time with a 1 ms pause between them (~1,000 req/s, one in
// flight): with --promoted, what then reaches the old generation is not there for being in flight
// but for living long (tables of long-lived maps, sites V8 pretenured; docs/perf-notes.md,
// "Session 12"). Run it with the heap flags of interest, e.g. `node --max-semi-space-size=8
// --min-semi-space-size=8 dist/test/bench/alloc.js --promoted --paced 8000`.
//
// Usage: node dist/test/bench/alloc.js [--promoted] [--paced] [REQUESTS (10000)] [TOP (25)]; the
// raw profile goes to bench-results/alloc.heapprofile (Chrome DevTools opens it).

import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { A, startMesh } from '../helpers/mesh.js';
import { helloRounds } from './mesh/hello-rounds.js';
import { ROOT } from '../helpers/paths.js';

const PROMOTED = process.argv.includes('--promoted');
const PACED = process.argv.includes('--paced');
const [requestsArg, topArg] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const REQUESTS = Number(requestsArg ?? 10_000);
const TOP = Number(topArg ?? 25);
const CONCURRENCY = 16;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const mesh = await startMesh();
const pool = new Pool(`http://${A}:${mesh.ports.outgoing}`, { connections: CONCURRENCY });

/** `n` requests, all answered 200 (a failing mesh would profile its error path instead). */
async function round(n: number): Promise<void> {
  const failed = PACED ? await paced(n) : await helloRounds(pool, n, CONCURRENCY);
  if (failed > 0) throw new Error(`${failed} of ${n} requests were not answered 200`);
}

/** `n` requests one at a time, 1 ms apart; resolves with how many were not answered 200. */
async function paced(n: number): Promise<number> {
  let failed = 0;
  for (let i = 0; i < n; i++) {
    failed += await helloRounds(pool, 1, 1);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return failed;
}

await round(Math.min(5_000, REQUESTS)); // warm: pools, bindings, compiled code
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 512,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: !PROMOTED,
});
await round(REQUESTS);
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
session.disconnect();
await pool.close();
await mesh.close();
mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
writeFileSync(join(ROOT, 'bench-results', 'alloc.heapprofile'), JSON.stringify(profile));

const bySelf = new Map<string, number>();
const byHostmesh = new Map<string, number>();
let total = 0;
const label = (n: ProfileNode): string => {
  const f = n.callFrame;
  return `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
};
const walk = (node: ProfileNode, owner: string): void => {
  const here = label(node);
  const mine = node.callFrame.url.includes('/dist/src/') ? here : owner;
  if (node.selfSize > 0) {
    total += node.selfSize;
    bySelf.set(here, (bySelf.get(here) ?? 0) + node.selfSize);
    byHostmesh.set(mine, (byHostmesh.get(mine) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, mine);
};
walk(profile.head, '(no hostmesh frame: the client, the demo app, Node and undici on their own)');
const table = (m: Map<string, number>): string =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([name, bytes]) => `| ${(bytes / REQUESTS).toFixed(0)} | ${name} |`)
    .join('\n');
const what = PROMOTED ? 'promoted (not freed by a young-generation collection)' : 'allocated';
console.log(`${REQUESTS} requests through two routers: ${(total / REQUESTS).toFixed(0)} bytes ${what} per request in the whole process\n`);
console.log(`| bytes/request | allocated in (self) |\n|---|---|\n${table(bySelf)}\n`);
console.log(`| bytes/request | under the nearest hostmesh frame |\n|---|---|\n${table(byHostmesh)}`);
