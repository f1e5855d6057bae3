// `npm run bench:slow`: latency of normal traffic through two routers (the demo mesh, default
// client limits) with and without 64 slow uploads (one byte per 5 s) from another pod.
//
// The routers and backends run in a child process; this process drives the load: one source
// (127.0.0.1) at 100 req/s for 5 s, open loop, to another service (world) and to the attacked
// one (upload); the attacker is 127.0.0.10. Options: --rate N (100) --seconds S (5) --uploads N (64)

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { openLoop, type LatencyResult } from './mesh/load.js';

const A = '127.0.0.2';
const B = '127.0.0.3';
const ATTACKER = '127.0.0.10';

interface Ready {
  outgoing: number;
}

async function child(): Promise<void> {
  const { startMesh, listen } = await import('../helpers/mesh.js');
  const mesh = await startMesh();
  // The attacked service answers once the whole body arrived (as most upload handlers do).
  const upload = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`got ${n}\n`));
  });
  await listen(upload, B);
  await mesh.register('upload', upload);
  process.send?.({ outgoing: mesh.ports.outgoing } satisfies Ready);
  process.on('disconnect', () => {
    upload.closeAllConnections();
    upload.close();
    void mesh.close().then(() => process.exit(0));
  });
}

/** `n` slow uploads from the attacker's address: a 1,000-byte body, one byte each `everyMs`. */
function slowUploads(port: number, n: number, everyMs: number): { statuses: Map<number, number>; stop: () => void } {
  const statuses = new Map<number, number>();
  const reqs: http.ClientRequest[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < n; i++) {
    const req = http.request({
      host: A,
      port,
      localAddress: ATTACKER,
      path: '/',
      method: 'POST',
      agent: false,
      headers: { host: 'upload', 'content-length': '1000' },
    });
    req.on('response', (res) => {
      statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
      res.resume();
    });
    req.on('error', () => undefined);
    req.write('x');
    timers.push(setInterval(() => req.write('x'), everyMs));
    reqs.push(req);
  }
  return {
    statuses,
    stop: () => {
      timers.forEach(clearInterval);
      reqs.forEach((r) => r.destroy());
    },
  };
}

/** The open loop, or undefined if it has not finished 10 s after its time (the traffic stalled). */
async function measure(origin: string, host: string, rate: number, seconds: number): Promise<LatencyResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), (seconds + 11) * 1000)));
  const result = await Promise.race([openLoop(origin, '/', { host }, rate, seconds), stalled]);
  clearTimeout(timer);
  return result;
}

function row(name: string, r: LatencyResult | undefined): string {
  if (r === undefined) return `${name.padEnd(44)} stalled: not all answered 10 s after the run`;
  return `${name.padEnd(44)} p50 ${r.p50.toFixed(2).padStart(7)} ms   p99 ${r.p99.toFixed(2).padStart(7)} ms   max ${r.max.toFixed(1).padStart(7)} ms   errors ${r.errors}/${r.sent}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rate: { type: 'string', default: '100' }, seconds: { type: 'string', default: '5' }, uploads: { type: 'string', default: '64' } },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const uploads = Number(values.uploads);
  const proc: ChildProcess = fork(import.meta.filename, ['--child'], { execArgv: process.execArgv, stdio: 'inherit' });
  const ready = await new Promise<Ready>((resolve) => proc.once('message', (m) => resolve(m as Ready)));
  const origin = `http://${A}:${ready.outgoing}`;
  try {
    const lines: string[] = [];
    lines.push(row('world, quiet', await measure(origin, 'world', rate, seconds)));
    lines.push(row('upload (GET, same service), quiet', await measure(origin, 'upload', rate, seconds)));
    const attack = slowUploads(ready.outgoing, uploads, 5000);
    await new Promise((r) => setTimeout(r, 1000)); // the uploads reach both routers
    lines.push(row(`world, ${uploads} slow uploads from another pod`, await measure(origin, 'world', rate, seconds)));
    lines.push(row(`upload (GET, same service), ${uploads} slow uploads`, await measure(origin, 'upload', rate, seconds)));
    const shed = [...attack.statuses].map(([s, n]) => `${n} x ${s}`).join(', ');
    attack.stop();
    console.log(`\nnormal traffic: ${rate} req/s for ${seconds} s from 127.0.0.1 through node-a -> mTLS -> node-b (default client limits)`);
    for (const l of lines) console.log(l);
    console.log(
      `attacker (${ATTACKER}): ${uploads} uploads, one byte per 5 s; answered during the run: ${shed || 'none'} (the rest held their slots or waited)`,
    );
  } finally {
    proc.disconnect();
    // A stalled run leaves requests open: do not wait for them.
    setTimeout(() => process.exit(0), 2000).unref();
  }
}

if (process.argv.includes('--child')) await child();
else await main();
