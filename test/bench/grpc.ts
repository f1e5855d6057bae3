// `npm run bench:grpc`: gRPC unary calls through two HTTP/2 hops with mutual TLS between them, CPU
// per call of the hops alone. Each pair of hops runs in a process of its own, so /proc charges it
// alone (the client and the greeter app share this process, which is not counted):
//   direct    the client dials the greeter (no hops: calls/s only)
//   relay     two plain Node http2 relays (mesh/h2-relay-child.ts): h2c in, ONE h2 session with
//             mTLS to the second, h2c to the app. No routing, no limits: the floor of a Node pair
//   hostmesh  two hostmesh h2 routers (helpers/h2-mesh-child.ts, the same two routers the gRPC
//             tests run): h2c outgoing router -> mTLS h2 -> incoming router -> h2c to the app,
//             with the fs namer, authorization policy, identity, accrual and metrics on; node
//             flags of the image (test/helpers/image-flags.ts)
// Closed loop: CONCURRENCY calls in flight on one grpc-js channel for SECONDS, ROUNDS rounds with
// the rows in a rotating order; per round hostmesh's CPU per call over the relay's (measured
// seconds apart), then medians.
// Options (env): BENCH_SECONDS (5), BENCH_CONCURRENCY (32), BENCH_ROUNDS (4); BENCH_PROFILE=1 writes
// the hops' CPU profiles to bench-results/profiles; BENCH_H2_MESH=<other checkout>/dist/test/helpers/
// h2-mesh-child.js adds a row `other` running that build's routers (an A/B in the same rounds).

import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { greeterClient, startGreeter, unary, type GreeterClient } from '../helpers/grpc-greeter.js';
import { routerNodeFlags } from '../helpers/image-flags.js';
import { childModule, ROOT } from '../helpers/paths.js';
import { cpuSeconds } from './mesh/proc.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? '5');
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? '32');
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? '4');
const PROFILE = process.env['BENCH_PROFILE'] ? ['--cpu-prof', '--cpu-prof-dir', join(ROOT, 'bench-results', 'profiles')] : [];
const APP_HOST = '127.0.0.3';

interface Hops {
  readonly pid: number | undefined;
  readonly client: GreeterClient;
  close(): Promise<void>;
}

/** Starts a child that prints {"target"} once it listens and exits when its stdin closes. */
async function startChild(module: string, args: string[], nodeFlags: string[]): Promise<Hops> {
  const { file, execArgv } = module.startsWith('/') ? { file: module, execArgv: [] } : childModule(module);
  const child = fork(file, args, { execArgv: [...execArgv, ...nodeFlags, ...PROFILE], stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const target = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${module} exited (${code}) before listening`)));
    // The first JSON line (a node flag such as --trace-gc may print before it).
    const onLine = (l: string): void => {
      if (!l.startsWith('{"target"')) return;
      lines.off('line', onLine);
      resolve((JSON.parse(l) as { target: string }).target);
    };
    lines.on('line', onLine);
  });
  const client = greeterClient(target);
  return {
    pid: child.pid,
    client,
    close: async () => {
      client.close();
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin?.end();
      await exited;
    },
  };
}

/** Calls until the path answers (routers reading their namer and policy after start). */
async function ready(client: GreeterClient): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await unary(client, 'SayHello', { name: 'probe' });
      return;
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

interface Sample {
  readonly callsPerSec: number;
  readonly cpuUsPerCall: number;
  readonly errors: number;
}

async function measure(h: Hops, seconds = SECONDS): Promise<Sample> {
  for (let i = 0; i < 200; i++) await unary(h.client, 'SayHello', { name: 'warm' });
  let calls = 0;
  let errors = 0;
  const pids = h.pid === undefined ? [] : [h.pid];
  const cpu0 = cpuSeconds(pids);
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        try {
          await unary(h.client, 'SayHello', { name: 'bench' });
          calls++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const cpu = cpuSeconds(pids) - cpu0;
  return { callsPerSec: calls / seconds, cpuUsPerCall: calls > 0 ? (cpu * 1e6) / calls : 0, errors };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-grpc-'));
const app = await startGreeter(APP_HOST, 'bench');
const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', [{ name: 'node-a', ip: '127.0.0.2' }]);
const node = pki.nodes.get('node-a') as { cert: string; key: string };
const rows: [string, Hops][] = [['direct', { pid: undefined, client: greeterClient(`${APP_HOST}:${app.port}`), close: async () => undefined }]];
const OTHER = process.env['BENCH_H2_MESH'];
try {
  // Each child joins the rows as it starts, so one that fails to start leaves none running.
  rows.push(['relay', await startChild('test/bench/mesh/h2-relay-child.ts', [APP_HOST, String(app.port), pki.ca, node.cert, node.key], [])]);
  rows.push(['hostmesh', await startChild('test/helpers/h2-mesh-child.ts', [APP_HOST, String(app.port)], routerNodeFlags())]);
  if (OTHER !== undefined) rows.push(['other', await startChild(OTHER, [APP_HOST, String(app.port)], routerNodeFlags())]);
  for (const [, h] of rows) await ready(h.client);
  // Warm-up, not counted: the hops' JIT, their sessions and pools.
  for (const [, h] of rows) await measure(h, 3);
  const samples = new Map<string, Sample[]>(rows.map(([n]) => [n, []]));
  const ratios: number[] = [];
  const otherRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = rows.map((_, i) => rows[(i + round) % rows.length] as [string, Hops]);
    const got = new Map<string, Sample>();
    for (const [name, h] of order) {
      const s = await measure(h);
      got.set(name, s);
      samples.get(name)?.push(s);
      console.error(`round ${round + 1} ${name}: ${s.callsPerSec.toFixed(0)} calls/s, ${s.cpuUsPerCall.toFixed(0)} us/call (hops), errors ${s.errors}`);
    }
    const relay = got.get('relay')?.cpuUsPerCall ?? Number.NaN;
    ratios.push((got.get('hostmesh')?.cpuUsPerCall ?? Number.NaN) / relay);
    if (OTHER !== undefined) otherRatios.push((got.get('other')?.cpuUsPerCall ?? Number.NaN) / relay);
  }
  console.log(`gRPC unary, ${CONCURRENCY} in flight, ${SECONDS} s x ${ROUNDS} rounds; CPU of the two hops' process only; medians`);
  console.log('| path | calls/s | CPU us/call, both hops | errors |');
  console.log('|---|---|---|---|');
  for (const [name] of rows) {
    const ss = samples.get(name) ?? [];
    const cpu = name === 'direct' ? '-' : median(ss.map((s) => s.cpuUsPerCall)).toFixed(0);
    console.log(`| ${name} | ${median(ss.map((s) => s.callsPerSec)).toFixed(0)} | ${cpu} | ${ss.reduce((a, s) => a + s.errors, 0)} |`);
  }
  console.log(`\nhostmesh / relay CPU per call, round by round: ${ratios.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`);
  if (OTHER !== undefined) {
    console.log(`other / relay CPU per call, round by round: ${otherRatios.map((x) => x.toFixed(2)).join(', ')} (median ${median(otherRatios).toFixed(2)})`);
  }
} finally {
  for (const [, h] of rows) await h.close();
  await app.close();
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
