// `npm run bench:forwarders`: which way of forwarding HTTP/1.1 in Node costs least CPU per
// request (the router's choice between undici and node's http client). Each
// forwarder runs alone in a child process in front of the same nginx backend; wrk drives it at
// 32 connections; CPU comes from /proc. Medians of --runs (default 3), rows interleaved.
//
// Then issue 28's designs as two-hop relays (test/bench/mesh/relay-child.ts): client -> hop A
// (plaintext) -> mutual TLS -> hop B -> backend, each hop its own process, every design against
// the plain Node + undici relay in the same run, rows interleaved per round. Reported: CPU
// microseconds per request of each hop and of both, and each design's ratio to the undici relay,
// computed per round (same machine state) and given as the median and the interquartile range
// over rounds; each round starts at another design. On a shared machine prefer many short rounds
// (--runs 12 --duration 2): the background load drifts less within a round.
// The machine may be shared: only the ratios mean anything, not the absolute figures.
//
// Then the cores table (issue 28's cores row): one plaintext hop (client -> relay -> backend), the
// plain undici relay as one process, as a node:cluster primary with 1 worker and with 2 workers
// sharing the listening port, and nginx with 1 and 2 worker processes (`worker_processes auto` on
// a 2-core machine), rows rotated per round. Reported per row: req/s, CPU us/request (every
// process of the row: primary and workers, nginx master and workers), the cores the row used
// (CPU seconds / seconds) and the whole machine's busy cores during the row; then per round the
// ratios x2 / x1 of req/s and of CPU per request, median and interquartile range over rounds.
// wrk and the backend share the machine with the row: on a 2-core machine 2 workers cannot get 2
// cores, so compare node's ratio with nginx's from the same run, not with 2.0.
//
// Options: --runs N (3) --duration S (5) --tables single,relays,cores
//          --designs undici,h2mux,coalesce,dispatch,h2dispatch,raw  (raw: design 2, mesh/raw-relay.ts;
//          check it first with `node dist/test/bench/mesh/raw-check.js`; `nginx`: issue 28's nginx
//          pair, one worker each, for a same-round ratio to nginx)
//          --hostmesh (cores table: also `hostmesh run` with workers: 1 and workers: 2)
//          --body-kib N (relays table: responses of N KiB instead of 12 bytes)
// (Running a design and the undici relay at the same time was tried and dropped: on a starved
// machine whichever pair gets ahead takes ever more of the CPU, and the ratios came out 1.4-3x
// in favour of the one started first.)
// BENCH_PROFILE=1: CPU profiles of each relay hop (bench-results/profiles/relay-*.cpuprofile);
// summarize with `node dist/test/bench/profile-summary.js FILE...`.

import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { relayPki } from './mesh/relay-pki.js';
import { freePorts } from '../helpers/ports.js';
import { wrk } from './mesh/load.js';
import { backendConf, incomingConf, outgoingConf, proxyConf, startNginx, type Nginx } from './mesh/nginx.js';
import { cpuSeconds, family, machineCpu, syscalls } from './mesh/proc.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    tables: { type: 'string', default: 'single,relays,cores' },
    designs: { type: 'string', default: 'undici,h2mux,coalesce,dispatch,h2dispatch,raw' },
    hostmesh: { type: 'boolean', default: false },
    'body-kib': { type: 'string', default: '0' },
  },
});
const TABLES = (values.tables ?? '').split(',');
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const KINDS = ['undici-request', 'undici-dispatch', 'node-http'];
const dir = mkdtempSync(join(tmpdir(), 'hostmesh-fwd-'));
chmodSync(dir, 0o755);
const [backendPort] = (await freePorts('127.0.0.4', 1)) as [number];
// --body-kib N (relays table): wrk fetches /big, a file of N KiB, instead of the 12-byte `hello world`.
const BODY_KIB = Number(values['body-kib']);
const bigFile = BODY_KIB > 0 ? join(dir, 'big.bin') : '/dev/null';
if (BODY_KIB > 0) writeFileSync(bigFile, Buffer.alloc(BODY_KIB * 1024, 'x'));
const RELAY_PATH = BODY_KIB > 0 ? '/big' : '/';
const backend = await startNginx(dir, 'backend', backendConf(dir, '127.0.0.4', backendPort, bigFile), { ip: '127.0.0.4', port: backendPort });
const results = new Map<string, { rps: number[]; us: number[] }>(KINDS.map((k) => [k, { rps: [], us: [] }]));
const children = [];
const ports = new Map<string, number>();
for (const kind of TABLES.includes('single') ? KINDS : []) {
  const [port] = (await freePorts('127.0.0.6', 1)) as [number];
  const child = fork(join(import.meta.dirname, 'mesh', 'forwarder-child.js'), [kind, String(port), String(backendPort)], {
    execArgv: ['--max-semi-space-size=4'],
  });
  await new Promise((r) => child.once('message', r));
  children.push(child);
  ports.set(kind, port);
  await wrk(`http://127.0.0.6:${port}/`, 32, 2); // warm-up
}
for (let run = 0; run < (TABLES.includes('single') ? Number(values.runs) : 0); run++) {
  for (const [i, kind] of KINDS.entries()) {
    const pid = children[i]?.pid ?? 0;
    const c0 = cpuSeconds([pid]);
    const r = await wrk(`http://127.0.0.6:${ports.get(kind)}/`, 32, Number(values.duration));
    const us = ((cpuSeconds([pid]) - c0) * 1e6) / r.requests;
    results.get(kind)?.rps.push(r.requestsPerSecond);
    results.get(kind)?.us.push(us);
    console.error(`${kind}: ${r.requestsPerSecond.toFixed(0)} req/s, ${us.toFixed(1)} us/req`);
  }
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
if (TABLES.includes('single')) {
  console.log('| forwarder | req/s @32 | CPU us/req |\n|---|---|---|');
  for (const [kind, r] of results) console.log(`| ${kind} | ${median(r.rps).toFixed(0)} | ${median(r.us).toFixed(1)} |`);
}
for (const c of children) c.kill();

try {
  if (TABLES.includes('relays')) await relays();
  if (TABLES.includes('cores')) await cores();
} finally {
  await backend.stop();
  rmSync(dir, { recursive: true, force: true });
}

/** Issue 28's designs as two-hop relays with mutual TLS between the hops. */
async function relays(): Promise<void> {
  const DESIGNS = (values.designs ?? '').split(',').filter(Boolean);
  if (DESIGNS[0] !== 'undici') DESIGNS.unshift('undici'); // the reference row, always measured
  const files = relayPki(dir);
  const A = '127.0.0.6';
  const B = '127.0.0.7';
  const PROFILES = join(import.meta.dirname, '..', '..', '..', 'bench-results', 'profiles');
  interface Hops {
    readonly port: number;
    readonly pidsA: () => number[];
    readonly pidsB: () => number[];
    stop(): Promise<void>;
  }
  const hops = new Map<string, Hops>();
  const stopChild = (c: ChildProcess): Promise<void> =>
    new Promise((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', () => resolve()), c.kill())));
  const start = async (args: string[]): Promise<ChildProcess> => {
    // BENCH_PROFILE=1: a CPU profile of every hop in bench-results/profiles/relay-<design>-<hop>.
    const profile = process.env['BENCH_PROFILE'] ? ['--cpu-prof', '--cpu-prof-dir', PROFILES, '--cpu-prof-name', `relay-${args[0]}-${args[1]}.cpuprofile`] : [];
    const child = fork(join(import.meta.dirname, 'mesh', 'relay-child.js'), [...args, ...files], { execArgv: ['--max-semi-space-size=4', ...profile] });
    await new Promise((r) => child.once('message', r));
    return child;
  };
  try {
    for (const design of DESIGNS) {
      const [portA] = (await freePorts(A, 1)) as [number];
      const [portB] = (await freePorts(B, 1)) as [number];
      if (design === 'nginx') {
        // The nginx pair of issue 28's table (one worker each; master and worker charged).
        const tls = { ca: files[0], cert: files[1], key: files[2] };
        const nb = await startNginx(dir, 'nginx-b', incomingConf(dir, { ip: B, port: portB }, { ip: '127.0.0.4', port: backendPort }, tls), {
          ip: B,
          port: portB,
        });
        const na = await startNginx(dir, 'nginx-a', outgoingConf(dir, { ip: A, port: portA }, { ip: B, port: portB }, tls), { ip: A, port: portA });
        hops.set(design, {
          port: portA,
          pidsA: () => family(na.pid),
          pidsB: () => family(nb.pid),
          stop: () => Promise.all([na.stop(), nb.stop()]).then(() => undefined),
        });
      } else {
        const b = await start([design, 'b', B, String(portB), '127.0.0.4', String(backendPort)]);
        const a = await start([design, 'a', A, String(portA), B, String(portB)]);
        hops.set(design, {
          port: portA,
          pidsA: () => [a.pid ?? 0],
          pidsB: () => [b.pid ?? 0],
          stop: () => Promise.all([stopChild(a), stopChild(b)]).then(() => undefined),
        });
      }
      const check = await fetch(`http://${A}:${portA}/`, { headers: { host: 'world' } });
      const text = await check.text();
      if (check.status !== 200 || text !== 'hello world\n') throw new Error(`${design}: relay answered ${check.status} ${JSON.stringify(text)}`);
      const warm = await wrk(`http://${A}:${portA}${RELAY_PATH}`, 32, 2);
      // The fetch above proved the relay answers; a starved machine makes wrk time out a few.
      if (warm.errors > 0 || warm.requests === 0) console.error(`${design}: warm-up saw ${warm.errors} errors of ${warm.requests} (a busy machine?)`);
    }
    interface Round {
      rps: number;
      a: number;
      b: number;
      errors: number;
      sysA: number; // read + write system calls per request
      sysB: number;
      kernelA: number; // of the CPU us/request, those in the kernel (stime): system calls, loopback TCP
      kernelB: number;
    }
    const rounds: Map<string, Round>[] = [];
    // Per round and design, the undici relay's figures it is compared with (the same round's).
    const bases: Map<string, Round>[] = [];
    const measure = async (design: string, run: number): Promise<Round | undefined> => {
      const h = hops.get(design);
      if (h === undefined) return undefined;
      const pa = h.pidsA();
      const pb = h.pidsB();
      const a0 = cpuSeconds(pa);
      const b0 = cpuSeconds(pb);
      const ka0 = kernelSeconds(pa);
      const kb0 = kernelSeconds(pb);
      const sa0 = syscalls(pa);
      const sb0 = syscalls(pb);
      const r = await wrk(`http://${A}:${h.port}${RELAY_PATH}`, 32, Number(values.duration));
      if (r.requests === 0) {
        console.error(`round ${run + 1} ${design}: no request completed (a starved machine?), round not counted for it`);
        return undefined;
      }
      const a = ((cpuSeconds(pa) - a0) * 1e6) / r.requests;
      const b = ((cpuSeconds(pb) - b0) * 1e6) / r.requests;
      const sa1 = syscalls(pa);
      const sb1 = syscalls(pb);
      const sysA = (sa1.reads + sa1.writes - sa0.reads - sa0.writes) / r.requests;
      const sysB = (sb1.reads + sb1.writes - sb0.reads - sb0.writes) / r.requests;
      const kernelA = ((kernelSeconds(pa) - ka0) * 1e6) / r.requests;
      const kernelB = ((kernelSeconds(pb) - kb0) * 1e6) / r.requests;
      console.error(
        `round ${run + 1} ${design}: ${r.requestsPerSecond.toFixed(0)} req/s, A ${a.toFixed(1)} + B ${b.toFixed(1)} = ${(a + b).toFixed(1)} us/req, read+write syscalls/req A ${sysA.toFixed(2)} B ${sysB.toFixed(2)}, kernel us/req A ${kernelA.toFixed(1)} B ${kernelB.toFixed(1)}, errors ${r.errors}`,
      );
      return { rps: r.requestsPerSecond, a, b, errors: r.errors, sysA, sysB, kernelA, kernelB };
    };
    for (let run = 0; run < Number(values.runs); run++) {
      const round = new Map<string, Round>();
      const base = new Map<string, Round>();
      // Each round starts at a different design, so none is always measured first or last.
      const order = DESIGNS.map((_, i) => DESIGNS[(i + run) % DESIGNS.length] ?? '');
      for (const design of order) {
        const r = await measure(design, run);
        if (r !== undefined) round.set(design, r);
      }
      const u = round.get('undici');
      if (u !== undefined) for (const design of DESIGNS) base.set(design, u);
      bases.push(base);
      rounds.push(round);
    }
    const of = (design: string, f: (r: Round) => number): number[] =>
      rounds
        .map((r) => r.get(design))
        .filter((r): r is Round => r !== undefined)
        .map(f);
    const ratios = (design: string, f: (r: Round) => number): number[] =>
      rounds.map((r, i) => {
        const d = r.get(design);
        const base = bases[i]?.get(design);
        return d === undefined || base === undefined || f(base) === 0 ? NaN : f(d) / f(base);
      });
    // The median and the quartiles over rounds (min-max with fewer than 4 rounds).
    const range = (xs: number[]): string => {
      const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
      const q = (f: number): number => s[Math.min(s.length - 1, Math.max(0, Math.round(f * (s.length - 1))))] ?? NaN;
      return s.length < 4
        ? `${median(s).toFixed(2)} (${q(0).toFixed(2)}-${q(1).toFixed(2)})`
        : `${median(s).toFixed(2)} (${q(0.25).toFixed(2)}-${q(0.75).toFixed(2)})`;
    };
    console.log(
      `\nTwo hops, mutual TLS between them; ${BODY_KIB > 0 ? `${BODY_KIB} KiB` : '12-byte'} responses; CPU us/request per hop; ratio = design / undici relay in the same round (median over rounds, interquartile range; min-max under 4 rounds); load average at the end: ${loadavg()}`,
    );
    console.log(
      '| design | req/s @32 | hop A us/req | hop B us/req | both us/req | CPU ratio both | CPU ratio A | CPU ratio B | req/s ratio | read+write syscalls/req A, B | kernel us/req A, B | errors |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const design of DESIGNS) {
      console.log(
        `| ${design} | ${median(of(design, (r) => r.rps)).toFixed(0)} | ${median(of(design, (r) => r.a)).toFixed(1)} | ${median(of(design, (r) => r.b)).toFixed(1)} | ${median(of(design, (r) => r.a + r.b)).toFixed(1)} | ${range(ratios(design, (r) => r.a + r.b))} | ${range(ratios(design, (r) => r.a))} | ${range(ratios(design, (r) => r.b))} | ${range(ratios(design, (r) => r.rps))} | ${median(of(design, (r) => r.sysA)).toFixed(2)}, ${median(of(design, (r) => r.sysB)).toFixed(2)} | ${median(of(design, (r) => r.kernelA)).toFixed(1)}, ${median(of(design, (r) => r.kernelB)).toFixed(1)} | ${of(design, (r) => r.errors).reduce((x, y) => x + y, 0)} |`,
      );
    }
    if (DESIGNS.includes('nginx')) {
      // Issue 28's targets are ratios to nginx: each design against the nginx pair of the same round.
      const toNginx = (design: string, f: (r: Round) => number): number[] =>
        rounds.map((r) => {
          const d = r.get(design);
          const n = r.get('nginx');
          return d === undefined || n === undefined || f(n) === 0 ? NaN : f(d) / f(n);
        });
      console.log('\nThe same rounds against the nginx pair (design / nginx, median and interquartile range)');
      console.log('| design | CPU ratio both | CPU ratio A | CPU ratio B | req/s ratio |\n|---|---|---|---|---|');
      for (const design of DESIGNS.filter((d) => d !== 'nginx')) {
        console.log(
          `| ${design} | ${range(toNginx(design, (r) => r.a + r.b))} | ${range(toNginx(design, (r) => r.a))} | ${range(toNginx(design, (r) => r.b))} | ${range(toNginx(design, (r) => r.rps))} |`,
        );
      }
    }
  } finally {
    await Promise.all([...hops.values()].map((h) => h.stop()));
  }
}

/** The cores row: does a second worker process (node:cluster, nginx) double a relay's requests? */
async function cores(): Promise<void> {
  const IP = '127.0.0.8';
  const files = relayPki(dir); // relay-child reads TLS files at start even for the plaintext hop
  interface Row {
    readonly name: string;
    readonly port: number;
    readonly pids: () => number[];
    stop(): Promise<void>;
  }
  const relay = async (name: string, workers: number): Promise<Row> => {
    const [port] = (await freePorts(IP, 1)) as [number];
    const child = fork(join(import.meta.dirname, 'mesh', 'relay-child.js'), ['undici', 'plain', IP, String(port), '127.0.0.4', String(backendPort), ...files], {
      execArgv: ['--max-semi-space-size=4'],
      env: { ...process.env, RELAY_WORKERS: String(workers) },
    });
    const msg = await new Promise<unknown>((r) => child.once('message', r));
    const workerPids = typeof msg === 'object' && msg !== null && 'pids' in msg ? (msg.pids as number[]) : [];
    return {
      name,
      port,
      pids: () => [child.pid ?? 0, ...workerPids],
      stop: () => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill()))),
    };
  };
  const nginx = async (name: string, workers: number): Promise<Row> => {
    const [port] = (await freePorts(IP, 1)) as [number];
    const file = `cores-nginx-${workers}`;
    const n: Nginx = await startNginx(dir, file, proxyConf(dir, file, workers, { ip: IP, port }, { ip: '127.0.0.4', port: backendPort }), { ip: IP, port });
    return { name, port, pids: () => family(n.pid), stop: () => n.stop() };
  };
  // hostmesh itself (`hostmesh run`, one plaintext router straight to the backend by /$/inet) with
  // workers: 1 and workers: 2 (the primary and its workers charged together).
  const hostmesh = async (name: string, workers: number): Promise<Row> => {
    const [port, admin] = (await freePorts(IP, 2)) as [number, number];
    const config = join(dir, `cores-hostmesh-${workers}.yaml`);
    writeFileSync(
      config,
      `admin: {ip: ${IP}, port: ${admin}}\nworkers: ${workers}\nrouters:\n- protocol: http\n  label: outgoing\n  dtab: /svc/world => /$/inet/127.0.0.4/${backendPort};\n  servers: [{ip: ${IP}, port: ${port}}]\n`,
    );
    const main = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');
    const child = spawn(process.execPath, [main, 'run', '-c', config], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://${IP}:${admin}/ready`).then(
        (r) => r.status === 200 && (workers === 1 || family(child.pid ?? 0).length === workers + 1),
        () => false,
      );
      if (ok) break;
      if (i > 600 || child.exitCode !== null) throw new Error(`${name} never became ready`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      name,
      port,
      pids: () => family(child.pid ?? 0),
      stop: () => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill()))),
    };
  };
  const rows: Row[] = [];
  interface Sample {
    rps: number;
    us: number;
    cores: number;
    machine: number;
    errors: number;
  }
  const rounds: Map<string, Sample>[] = [];
  try {
    rows.push(await relay('node x1 (one process)', 0), await relay('node cluster x1', 1), await relay('node cluster x2', 2));
    rows.push(await nginx('nginx x1', 1), await nginx('nginx x2', 2));
    if (values.hostmesh) rows.push(await hostmesh('hostmesh workers: 1', 1), await hostmesh('hostmesh workers: 2', 2));
    for (const row of rows) {
      const warm = await wrk(`http://${IP}:${row.port}/`, 32, 2);
      if (warm.requests === 0) throw new Error(`${row.name}: no request completed in the warm-up`);
    }
    const seconds = Number(values.duration);
    for (let run = 0; run < Number(values.runs); run++) {
      const round = new Map<string, Sample>();
      for (let i = 0; i < rows.length; i++) {
        const row = rows[(i + run) % rows.length] as Row;
        const pids = row.pids();
        const c0 = cpuSeconds(pids);
        const m0 = machineCpu();
        const t0 = performance.now();
        const r = await wrk(`http://${IP}:${row.port}/`, 32, seconds);
        const wall = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(pids) - c0;
        const m1 = machineCpu();
        if (r.requests === 0) {
          console.error(`round ${run + 1} ${row.name}: no request completed, not counted`);
          continue;
        }
        const sample = { rps: r.requestsPerSecond, us: (cpu * 1e6) / r.requests, cores: cpu / wall, machine: m1.busy - m0.busy, errors: r.errors };
        sample.machine /= wall;
        round.set(row.name, sample);
        console.error(
          `round ${run + 1} ${row.name}: ${sample.rps.toFixed(0)} req/s, ${sample.us.toFixed(1)} us/req, row ${sample.cores.toFixed(2)} cores, machine ${sample.machine.toFixed(2)} cores busy, errors ${r.errors}`,
        );
      }
      rounds.push(round);
    }
  } finally {
    await Promise.all(rows.map((r) => r.stop()));
  }
  const of = (name: string, f: (s: Sample) => number): number[] =>
    rounds
      .map((r) => r.get(name))
      .filter((s): s is Sample => s !== undefined)
      .map(f);
  const ratio = (top: string, bottom: string, f: (s: Sample) => number): number[] =>
    rounds.map((r) => {
      const a = r.get(top);
      const b = r.get(bottom);
      return a === undefined || b === undefined || f(b) === 0 ? NaN : f(a) / f(b);
    });
  const range = (xs: number[]): string => {
    const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    const q = (f: number): number => s[Math.min(s.length - 1, Math.max(0, Math.round(f * (s.length - 1))))] ?? NaN;
    return s.length < 4
      ? `${median(s).toFixed(2)} (${q(0).toFixed(2)}-${q(1).toFixed(2)})`
      : `${median(s).toFixed(2)} (${q(0.25).toFixed(2)}-${q(0.75).toFixed(2)})`;
  };
  console.log(`\nCores: one plaintext hop, wrk 1 thread 32 connections; medians over ${rounds.length} rounds (load average at the end: ${loadavg()})`);
  console.log('| row | req/s @32 | CPU us/req | cores used by the row | machine busy cores | errors |\n|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${median(of(row.name, (s) => s.rps)).toFixed(0)} | ${median(of(row.name, (s) => s.us)).toFixed(1)} | ${median(of(row.name, (s) => s.cores)).toFixed(2)} | ${median(of(row.name, (s) => s.machine)).toFixed(2)} | ${of(row.name, (s) => s.errors).reduce((a, b) => a + b, 0)} |`,
    );
  }
  console.log('\nRatios per round (median, interquartile range; min-max under 4 rounds)');
  console.log('| pair | req/s ratio | CPU us/req ratio | cores used ratio |\n|---|---|---|---|');
  const pairs: [string, string, string][] = [
    ['node cluster x2 / node x1 (one process)', 'node cluster x2', 'node x1 (one process)'],
    ['node cluster x2 / node cluster x1', 'node cluster x2', 'node cluster x1'],
    ['node cluster x1 / node x1 (one process)', 'node cluster x1', 'node x1 (one process)'],
    ['nginx x2 / nginx x1', 'nginx x2', 'nginx x1'],
    ...(values.hostmesh ? [['hostmesh workers: 2 / workers: 1', 'hostmesh workers: 2', 'hostmesh workers: 1'] as [string, string, string]] : []),
  ];
  for (const [label, top, bottom] of pairs) {
    console.log(
      `| ${label} | ${range(ratio(top, bottom, (s) => s.rps))} | ${range(ratio(top, bottom, (s) => s.us))} | ${range(ratio(top, bottom, (s) => s.cores))} |`,
    );
  }
}

/** System (kernel) CPU seconds of the processes: /proc/<pid>/stat stime (field 15). */
function kernelSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      ticks += Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[12]);
    } catch {
      // gone
    }
  }
  return ticks / TICKS_PER_SECOND;
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
