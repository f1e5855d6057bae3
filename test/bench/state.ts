// `npm run bench:state` (not a test): RSS of a router after 100,000 distinct Hosts and after
// 10,000 distinct 8 KB dtab overrides, while the state is held and after idle eviction (the
// router's clock is advanced past idleTtl over IPC). Run twice: with hostmesh's defaults, and with
// the caps and TTLs set so large that nothing is evicted (what the router did before the limits;
// at a fifth of the load, since unbounded it takes minutes and gigabytes: BENCH_BEFORE_SCALE).

import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { join } from 'node:path';

const HOSTS = Number(process.env['BENCH_HOSTS'] ?? 100_000);
const OVERRIDES = Number(process.env['BENCH_OVERRIDES'] ?? 10_000);
const BEFORE_SCALE = Number(process.env['BENCH_BEFORE_SCALE'] ?? 0.2);
const CONCURRENCY = 16;
const HOUR = 3_600_000;

interface Report {
  rssMb: number;
  heapMb: number;
  bindings: number;
  lookups: number;
}

async function ask(child: ChildProcess, msg: object): Promise<Report> {
  child.send(msg);
  const [r] = (await once(child, 'message')) as [Report];
  return r;
}

async function flood(port: number, n: number, make: (i: number) => http.OutgoingHttpHeaders): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const headers = make(next++);
        await new Promise<void>((resolve) => {
          const req = http.request({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
            res.resume();
            res.on('end', () => resolve());
          });
          req.on('error', () => {
            failed++;
            resolve();
          });
          req.end();
        });
      }
    }),
  );
  agent.destroy();
  return failed;
}

const row = (what: string, r: Report): string =>
  `  ${what.padEnd(34)} RSS ${r.rssMb.toFixed(0).padStart(5)} MB  heap ${r.heapMb.toFixed(0).padStart(5)} MB  bindings ${String(r.bindings).padStart(7)}  lookups ${String(r.lookups).padStart(7)}`;

async function scenario(label: string, start: object, hosts: number, overrides: number): Promise<void> {
  const child = fork(join(import.meta.dirname, 'state-child.js'), { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send(start);
  const [hello] = (await once(child, 'message')) as [Report & { port: number }];
  console.log(`${label}`);
  console.log(row('idle at start', hello));
  const hostsFailed = await flood(hello.port, hosts, (i) => ({ host: `h-${i}.example` }));
  console.log(row(`${hosts.toLocaleString('en')} distinct Hosts, held`, await ask(child, { cmd: 'report' })));
  console.log(row('  after idleTtl (clock +1 h)', await ask(child, { cmd: 'advance', ms: HOUR })));
  console.log(row("  after the namers' idleTtl too", await ask(child, { cmd: 'advance', ms: HOUR })));
  const pad = 'p'.repeat(8 * 1024 - 60);
  const overridesFailed = await flood(hello.port, overrides, (i) => ({ host: 'web', 'l5d-dtab': `/pad/${i} => /x/${pad}; /svc/web => /#/io.l5d.fs/web` }));
  console.log(row(`${overrides.toLocaleString('en')} distinct 8 KB overrides, held`, await ask(child, { cmd: 'report' })));
  console.log(row('  after idleTtl (clock +1 h)', await ask(child, { cmd: 'advance', ms: HOUR })));
  if (hostsFailed + overridesFailed > 0) console.log(`  (${hostsFailed + overridesFailed} requests failed at the socket)`);
  child.send({ cmd: 'stop' });
  await once(child, 'exit');
}

await scenario('hostmesh defaults (bindingCache paths 1000, overrides 100, idleTtlSecs 600; namer idleTtlSecs 60, maxIdleNames 1000)', {}, HOSTS, OVERRIDES);
await scenario(
  'nothing evicted (caps and TTLs out of reach: the behaviour before the limits)',
  {
    bindingCache: { paths: 1_000_000, trees: 1_000_000, overrides: 1_000_000, idleTtlSecs: 1_000_000_000 },
    namerIdleTtlSecs: 1_000_000_000,
    namerMaxIdleNames: 1_000_000,
  },
  Math.round(HOSTS * BEFORE_SCALE),
  Math.round(OVERRIDES * BEFORE_SCALE),
);
