// `npm run bench`: hostmesh against a direct connection and a two-hop nginx mesh, on loopback, in
// one run, same trivial backend (nginx) for every row:
//   direct         client -> backend
//   nginx          client -> nginx A (plaintext) -> nginx B (mTLS, client cert verified) -> backend
//   hostmesh       client -> router A :outgoing -> mTLS -> router B :incoming -> backend, the
//                  shipped k8s config (k8s namer against the test API server, daemonset/localnode)
//                  as deployed: each router gets its node certificate from `hostmesh identity`
//                  (a process, as the hostmesh-identity Deployment runs it, checking the routers'
//                  projected tokens with TokenReview on the test API server), and the h2 routers
//                  (4240/4241) run too, idle. Only addresses, ports, in-cluster file paths and
//                  the issuer's URL are overridden (--set), and loopback endpoints are allowed
//                  (namers.0.allowLoopbackEndpoints: the nodes are loopback addresses); nothing
//                  else differs from k8s/.
//   hostmesh-1hop  client -> one router -> backend (no TLS), to separate the two hops' costs
//   relay          issue 28's floor: two plain Node relays (http.Server -> undici Pool.request(),
//                  no routing, no limits, no metrics; test/bench/mesh/relay-child.ts, design
//                  `undici`) with the same mutual TLS between them: what hostmesh's own cost is
//                  measured against
// Per row: max throughput at 32 and 256 connections (wrk), latency at a fixed 1,000 req/s
// (open loop), CPU microseconds per request of the proxy processes (/proc, both hops), router
// RSS idle and under load; then a soak for RSS growth and a large-body transfer. Rows interleave
// and repeat (--runs); medians are reported. Raw figures go to bench-results/mesh-<time>.json.
//
// Options: --runs N (3) --duration S (5, per wrk run) --latency-seconds S (10) --soak S (60)
//          --stream-mib N (1024) --rows direct,nginx,hostmesh,hostmesh-1hop
//          --idle-seconds S (30: how long the routers sit idle before "settled" idle RSS is read)
// Needs nginx and wrk (apt-get install nginx-light wrk); they are installed if missing and root.

import { execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, chmodSync, mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { IdentityRoutes } from '../fixtures/k8s-identity-routes.js';
import { makePki } from '../helpers/identity-issuer.js';
import { endpointSlice, pod, service } from '../helpers/k8s.js';
import { freePorts } from '../helpers/ports.js';
import { download, openLoop, wrk, type LatencyResult } from './mesh/load.js';
import { backendConf, incomingConf, outgoingConf, startNginx, type Nginx } from './mesh/nginx.js';
import { routerNodeFlags } from '../helpers/image-flags.js';
import { anonMb, cpuSeconds, family, rssMb, rssSampler, syscalls } from './mesh/proc.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
// BENCH_MAIN: another build's dist/src/cli/main.js for the routers (a before/after comparison
// against the same peers: run the bench once with each).
const MAIN = process.env['BENCH_MAIN'] ?? join(ROOT, 'dist', 'src', 'cli', 'main.js');
const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    'latency-seconds': { type: 'string', default: '10' },
    'idle-seconds': { type: 'string', default: '30' },
    soak: { type: 'string', default: '60' },
    'stream-mib': { type: 'string', default: '1024' },
    rows: { type: 'string', default: 'direct,nginx,relay,hostmesh,hostmesh-1hop' },
    policy: { type: 'string' },
  },
});
const RUNS = Number(opt.runs);
const DURATION = Number(opt.duration);
const LATENCY_S = Number(opt['latency-seconds']);
const SOAK_S = Number(opt.soak);
const IDLE_S = Number(opt['idle-seconds']);
const STREAM_MIB = Number(opt['stream-mib']);
const ROWS = (opt.rows ?? '').split(',');
// The shipped policy (allow everything) unless --policy names another file (e.g. a 600-rule one).
const POLICY = opt.policy ?? join(ROOT, 'k8s', 'base', 'config', 'policy.yaml');

function ensureTools(): void {
  const missing = ['nginx', 'wrk'].filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`the benchmark needs ${missing.join(' and ')}: apt-get install ${missing.map((m) => (m === 'nginx' ? 'nginx-light' : m)).join(' ')}`);
  console.error(`installing ${missing.join(', ')} (apt-get)`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing.map((m) => (m === 'nginx' ? 'nginx-light' : m))], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitReady(ip: string, port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://${ip}:${port}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`router admin ${ip}:${port} never became ready`);
}

mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
const routerLog = createWriteStream(join(ROOT, 'bench-results', 'routers.log'));

/** NODE_OPTIONS as the DaemonSet sets it (k8s/base/daemonset.yaml), '' when it sets none. */
function daemonSetNodeOptions(): string {
  const m = /- name: NODE_OPTIONS\n\s+value: "([^"]*)"/.exec(readFileSync(join(ROOT, 'k8s', 'base', 'daemonset.yaml'), 'utf8'));
  return m?.[1] ?? '';
}

/** The DaemonSet's glibc allocator settings (MALLOC_* env entries with a value), as the routers run with them. */
function daemonSetMallocEnv(): Record<string, string> {
  const yaml = readFileSync(join(ROOT, 'k8s', 'base', 'daemonset.yaml'), 'utf8');
  return Object.fromEntries([...yaml.matchAll(/- name: (MALLOC_[A-Z_]+)\n\s+value: "([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]));
}

/** BENCH_ROUTER_ENV='K=V K=V': environment for routers A, B and single only (BENCH_ROUTER_ENV= : none of the DaemonSet's MALLOC_*). */
function routerEnv(): Record<string, string> {
  const given = process.env['BENCH_ROUTER_ENV'];
  if (given === undefined) return daemonSetMallocEnv();
  return Object.fromEntries(
    given
      .split(' ')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

function startRouter(args: string[], env: Record<string, string>): ChildProcess {
  // Node flags as the DaemonSet runs it: the image's (test/helpers/image-flags.ts; BENCH_NODE_FLAGS tries
  // others) and its NODE_OPTIONS (BENCH_NODE_OPTIONS tries others; BENCH_NODE_OPTIONS= : none).
  // BENCH_PROFILE=1: CPU profiles in bench-results/profiles; BENCH_NODE_ARGS: extra node flags
  // (e.g. --trace-gc, whose output lands in bench-results/routers.log).
  const extra = [
    ...routerNodeFlags(),
    ...(process.env['BENCH_PROFILE'] ? ['--cpu-prof', '--cpu-prof-dir', join(ROOT, 'bench-results', 'profiles')] : []),
    ...(process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? []),
  ];
  const child = spawn(process.execPath, [...extra, MAIN, ...args], {
    env: { ...process.env, NODE_OPTIONS: process.env['BENCH_NODE_OPTIONS'] ?? daemonSetNodeOptions(), ...routerEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(routerLog, { end: false });
  // Router logs go to bench-results/routers.log, not into the report.
  child.stderr?.pipe(routerLog, { end: false });
  return child;
}

interface Row {
  readonly name: string;
  readonly origin: string;
  readonly pids: () => number[];
  /** Router processes whose RSS is reported. */
  readonly routers: () => number[];
}

interface Sample {
  rps32: number;
  rps256: number;
  cpuUsPerRequest: number;
  /**
   * CPU per request at the fixed 1,000 req/s of the latency phase (its warm-up second included):
   * no process is saturated there, so every row batches alike; under wrk's saturation the
   * figure moves with how the scheduler interleaves the processes.
   */
  cpuUsPerRequestFixed: number;
  /** read and write system calls per request, all of the row's processes (both hops). */
  readsPerRequest: number;
  writesPerRequest: number;
  latency: LatencyResult;
  rssLoadMb: number;
  errors: number;
}

async function main(): Promise<void> {
  ensureTools();
  const dir = mkdtempSync(join(tmpdir(), 'hostmesh-bench-'));
  chmodSync(dir, 0o755); // nginx workers run as nobody when started by root
  const cleanup: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    // Certificates: one mesh CA, one certificate for every hop (as k8s/ ships it).
    const ca = createCa({ commonName: 'bench CA' });
    const leaf = issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'], uris: ['spiffe://hostmesh/mesh'] });
    const tls = { ca: join(dir, 'ca.crt'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
    writeFileSync(tls.ca, ca.certPem, { mode: 0o644 });
    writeFileSync(tls.cert, leaf.certPem, { mode: 0o644 });
    writeFileSync(tls.key, leaf.keyPem, { mode: 0o644 });
    const big = join(dir, 'big.bin');
    const fd = openSync(big, 'w', 0o644);
    ftruncateSync(fd, STREAM_MIB * 1048576); // sparse: reads cost no disk
    closeSync(fd);

    const A = '127.0.0.2';
    const B = '127.0.0.3';
    const BACKEND = '127.0.0.4';
    const SINGLE = '127.0.0.5';
    const [backendPort, nginxA, nginxB] = (await freePorts(BACKEND, 3)) as [number, number, number];
    const [outgoing, incoming, admin, h2Outgoing, h2Incoming] = (await freePorts(A, 5)) as [number, number, number, number, number];
    const [singlePort, singleAdmin] = (await freePorts(SINGLE, 2)) as [number, number];

    const nginxes: Nginx[] = [];
    cleanup.push(() => Promise.all(nginxes.map((n) => n.stop())).then(() => undefined));
    nginxes.push(await startNginx(dir, 'backend', backendConf(dir, BACKEND, backendPort, big), { ip: BACKEND, port: backendPort }));
    nginxes.push(
      await startNginx(dir, 'nginx-b', incomingConf(dir, { ip: B, port: nginxB }, { ip: BACKEND, port: backendPort }, tls), { ip: B, port: nginxB }),
    );
    nginxes.push(await startNginx(dir, 'nginx-a', outgoingConf(dir, { ip: A, port: nginxA }, { ip: B, port: nginxB }, tls), { ip: A, port: nginxA }));
    const [, nginxBProc, nginxAProc] = nginxes as [Nginx, Nginx, Nginx];

    // The plain Node + undici relay pair (the same certificate, checked as `hostmesh` both ways).
    const [relayA] = (await freePorts(A, 1)) as [number];
    const [relayB] = (await freePorts(B, 1)) as [number];
    const relays: ChildProcess[] = [];
    cleanup.push(() => {
      for (const r of relays) r.kill('SIGTERM');
    });
    const startRelay = async (args: string[]): Promise<ChildProcess> => {
      const profile = process.env['BENCH_PROFILE'] ? ['--cpu-prof', '--cpu-prof-dir', join(ROOT, 'bench-results', 'profiles')] : [];
      const child = fork(join(import.meta.dirname, 'mesh', 'relay-child.js'), [...args, tls.ca, tls.cert, tls.key], { execArgv: profile });
      relays.push(child);
      await new Promise((r) => child.once('message', r));
      return child;
    };
    const relayBProc = await startRelay(['undici', 'b', B, String(relayB), BACKEND, String(backendPort)]);
    const relayAProc = await startRelay(['undici', 'a', A, String(relayA), B, String(relayB)]);

    // The cluster the routers see: their own headless Service, and `world` on node-b.
    const api = await new FakeApiServer().start();
    cleanup.push(() => api.close());
    const routerPorts = [
      { name: 'incoming', port: incoming },
      { name: 'h2-incoming', port: h2Incoming },
    ];
    api.apply(service('hostmesh', 'hostmesh', routerPorts));
    api.apply(
      endpointSlice(
        'hostmesh',
        'hostmesh-1',
        'hostmesh',
        [
          { ip: A, node: 'node-a' },
          { ip: B, node: 'node-b' },
        ],
        routerPorts,
      ),
    );
    api.apply(service('default', 'world'));
    api.apply(pod('default', 'world-1', 'node-b', BACKEND)); // the incoming router delivers only to known pods
    api.apply(endpointSlice('default', 'world-1', 'world', [{ ip: BACKEND, node: 'node-b' }], [{ name: 'http', port: backendPort }]));

    // Per-node identity as k8s/ deploys it (docs/identity.md): a trust anchor and an issuer CA
    // (the hostmesh-identity-issuer Secret), `hostmesh identity` reaching the API server with a
    // kubeconfig, and router pods (namespace hostmesh, service account hostmesh) whose projected
    // tokens the issuer reviews.
    const identity = new IdentityRoutes(api);
    const pki = makePki('bench anchor');
    cleanup.push(() => rmSync(pki.dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: bench, cluster: {server: '${api.url}'}}]\nusers: [{name: bench, user: {}}]\ncontexts: [{name: bench, context: {cluster: bench, user: bench}}]\ncurrent-context: bench\n`,
    );
    const ISSUER = '127.0.0.1';
    const [issuerPort, issuerAdmin] = (await freePorts(ISSUER, 2)) as [number, number];
    const issuer = spawn(
      process.execPath,
      [
        MAIN,
        'identity',
        ...['--issuer-cert', pki.issuerCertPath, '--issuer-key', pki.issuerKeyPath, '--dns-name', 'localhost'],
        ...['--ip', ISSUER, '--port', String(issuerPort), '--admin-ip', ISSUER, '--admin-port', String(issuerAdmin)],
      ],
      { env: { ...process.env, KUBECONFIG: kubeconfig, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    issuer.stdout?.pipe(routerLog, { end: false });
    issuer.stderr?.pipe(routerLog, { end: false });
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          if (issuer.exitCode !== null) return resolve();
          issuer.once('exit', () => resolve());
          issuer.kill('SIGTERM');
        }),
    );
    const tokenFile = (node: string): string => {
      const routerPod = api.apply(pod('hostmesh', `hostmesh-${node}`, node, node === 'node-a' ? A : B, { sa: 'hostmesh', hostNetwork: true }));
      const file = join(dir, `token-${node}`);
      const token = identity.token({
        namespace: 'hostmesh',
        serviceAccount: 'hostmesh',
        pod: { name: routerPod.metadata.name, uid: routerPod.metadata.uid ?? '' },
        audiences: ['hostmesh-identity'],
        expiresAt: Date.now() + 24 * 3_600_000,
      });
      writeFileSync(file, token, { mode: 0o644 });
      return file;
    };

    const routers: ChildProcess[] = [];
    // SIGTERM: the routers drain and exit (and write their CPU profiles under BENCH_PROFILE=1).
    cleanup.push(() =>
      Promise.all(
        routers.map(
          (r) =>
            new Promise<void>((resolve) => {
              if (r.exitCode !== null) return resolve();
              const kill = setTimeout(() => r.kill('SIGKILL'), 15_000);
              r.once('exit', () => (clearTimeout(kill), resolve()));
              r.kill('SIGTERM');
            }),
        ),
      ).then(() => undefined),
    );
    const config = join(ROOT, 'k8s', 'base', 'config', 'config.yaml');
    for (const [ip, node] of [
      [A, 'node-a'],
      [B, 'node-b'],
    ] as const) {
      const set = [
        `admin.ip=${ip}`,
        `admin.port=${admin}`,
        'namers.0.host=127.0.0.1',
        `namers.0.port=${api.port}`,
        // The bench's nodes and pods are loopback addresses (a cluster simulated on one machine).
        'namers.0.allowLoopbackEndpoints=true',
        `routers.0.dtabFile=${join(ROOT, 'k8s/base/config/outgoing.dtab')}`,
        `routers.0.servers.0.ip=${ip}`,
        `routers.0.servers.0.port=${outgoing}`,
        `identity.issuer.url=https://${ISSUER}:${issuerPort}`,
        'identity.issuer.serverName=localhost',
        `identity.issuer.tokenFile=${tokenFile(node)}`,
        `identity.issuer.trustBundle=${pki.bundlePath}`,
        `routers.0.client.tls.trustCerts.0=${pki.bundlePath}`,
        `routers.1.dtabFile=${join(ROOT, 'k8s/base/config/incoming.dtab')}`,
        `routers.1.servers.0.ip=${ip}`,
        `routers.1.servers.0.port=${incoming}`,
        `routers.1.servers.0.tls.caCertPath=${pki.bundlePath}`,
        `routers.2.dtabFile=${join(ROOT, 'k8s/base/config/h2-outgoing.dtab')}`,
        `routers.2.servers.0.ip=${ip}`,
        `routers.2.servers.0.port=${h2Outgoing}`,
        `routers.2.client.tls.trustCerts.0=${pki.bundlePath}`,
        `routers.3.dtabFile=${join(ROOT, 'k8s/base/config/h2-incoming.dtab')}`,
        `routers.3.servers.0.ip=${ip}`,
        `routers.3.servers.0.port=${h2Incoming}`,
        `routers.3.servers.0.tls.caCertPath=${pki.bundlePath}`,
        `authz.policyFile=${POLICY}`,
        // BENCH_SET='k=v k=v': more overrides for routers A and B (trying a setting's cost).
        ...(process.env['BENCH_SET']?.split(' ').filter(Boolean) ?? []),
      ].flatMap((s) => ['--set', s]);
      routers.push(startRouter(['run', '-c', config, ...set], { NODE_NAME: node }));
    }
    const singleConfig = join(dir, 'single.yaml');
    writeFileSync(
      singleConfig,
      `admin: {ip: ${SINGLE}, port: ${singleAdmin}}\nrouters:\n- protocol: http\n  label: outgoing\n  dtab: /svc/world => /$/inet/${BACKEND}/${backendPort};\n  servers: [{ip: ${SINGLE}, port: ${singlePort}}]\n`,
    );
    routers.push(startRouter(['run', '-c', singleConfig], {}));
    await Promise.all([waitReady(A, admin), waitReady(B, admin), waitReady(SINGLE, singleAdmin)]);
    const [routerA, routerB, single] = routers.map((r) => r.pid ?? 0) as [number, number, number];

    const allRows: Row[] = [
      { name: 'direct', origin: `http://${BACKEND}:${backendPort}`, pids: () => [], routers: () => [] },
      {
        name: 'nginx',
        origin: `http://${A}:${nginxA}`,
        pids: () => [...family(nginxAProc.pid), ...family(nginxBProc.pid)],
        routers: () => [...family(nginxAProc.pid), ...family(nginxBProc.pid)],
      },
      {
        name: 'relay',
        origin: `http://${A}:${relayA}`,
        pids: () => [relayAProc.pid ?? 0, relayBProc.pid ?? 0],
        routers: () => [relayAProc.pid ?? 0, relayBProc.pid ?? 0],
      },
      { name: 'hostmesh', origin: `http://${A}:${outgoing}`, pids: () => [routerA, routerB], routers: () => [routerA, routerB] },
      { name: 'hostmesh-1hop', origin: `http://${SINGLE}:${singlePort}`, pids: () => [single], routers: () => [single] },
    ];
    const rows = allRows.filter((r) => ROWS.includes(r.name));

    // Idle RSS before any traffic: 1 s after ready (start-up's young generation still held), and
    // settled, after --idle-seconds of idleness (V8's memory reducer returns what start-up grew:
    // a router on a quiet node sits idle for hours, so that is its idle figure).
    await sleep(1000);
    const started = { routerA: rssMb(routerA), routerB: rssMb(routerB) };
    const idleCpu0 = cpuSeconds([routerA, routerB]);
    const idleT0 = performance.now();
    await sleep(Math.max(0, IDLE_S - 1) * 1000);
    // CPU an idle router spends anyway (file watchers, timers, the API watches): at a fixed
    // request rate it is part of every request's share, so it is reported on its own.
    const idleCpuMsPerS = ((cpuSeconds([routerA, routerB]) - idleCpu0) * 1e3) / 2 / ((performance.now() - idleT0) / 1e3);
    const idle = { routerA: rssMb(routerA), routerB: rssMb(routerB), single: rssMb(single), anonA: anonMb(routerA), anonB: anonMb(routerB) };
    console.error(
      `idle RSS 1 s after ready: router A ${started.routerA.toFixed(1)} MB, router B ${started.routerB.toFixed(1)} MB; after ${IDLE_S} s idle: router A ${idle.routerA.toFixed(1)} MB (anon ${idle.anonA.toFixed(1)}), router B ${idle.routerB.toFixed(1)} MB (anon ${idle.anonB.toFixed(1)}), single ${idle.single.toFixed(1)} MB; idle CPU ${idleCpuMsPerS.toFixed(2)} ms/s per router`,
    );

    // Warm-up: JIT, pools, TLS sessions.
    for (const row of rows) {
      const r = await wrk(`${row.origin}/`, 32, 2);
      // A broken setup fails every request; on a starved machine wrk times out a few (reported).
      if (r.requests === 0 || r.errors * 10 > r.requests) throw new Error(`${row.name}: warm-up saw ${r.errors} errors of ${r.requests}`);
      if (r.errors > 0) console.error(`${row.name}: warm-up saw ${r.errors} errors of ${r.requests} (wrk timeouts on a busy machine?)`);
    }

    const samples = new Map<string, Sample[]>(rows.map((r) => [r.name, []]));
    for (let run = 1; run <= RUNS; run++) {
      for (const row of rows) {
        // Latency first, on a quiet machine (after a row's wrk runs, the routers are still freeing
        // hundreds of connections).
        await sleep(2000); // let the previous row's connections close
        const pids = row.pids();
        const cpuFixed0 = cpuSeconds(pids);
        const latency = await openLoop(row.origin, '/', { host: 'world' }, 1000, LATENCY_S);
        const cpuFixed = pids.length > 0 ? ((cpuSeconds(pids) - cpuFixed0) * 1e6) / (latency.sent + 1000) : 0;
        const sampler = rssSampler(row.routers());
        const cpu0 = cpuSeconds(pids);
        const io0 = syscalls(pids);
        const w32 = await wrk(`${row.origin}/`, 32, DURATION);
        const cpu1 = cpuSeconds(pids);
        const io1 = syscalls(pids);
        const w256 = await wrk(`${row.origin}/`, 256, DURATION);
        const peaks = sampler.stop();
        const s: Sample = {
          rps32: w32.requestsPerSecond,
          rps256: w256.requestsPerSecond,
          cpuUsPerRequest: pids.length > 0 ? ((cpu1 - cpu0) * 1e6) / w32.requests : 0,
          cpuUsPerRequestFixed: cpuFixed,
          readsPerRequest: (io1.reads - io0.reads) / w32.requests,
          writesPerRequest: (io1.writes - io0.writes) / w32.requests,
          latency,
          rssLoadMb: peaks.length > 0 ? Math.max(...peaks) : 0,
          errors: w32.errors + w256.errors + latency.errors,
        };
        samples.get(row.name)?.push(s);
        if (process.env['BENCH_DEBUG'] && row.name === 'hostmesh') {
          const m = await fetch(`http://${A}:${admin}/metrics`).then((r) => r.text());
          console.error(
            m
              .split('\n')
              .filter((l) => l.startsWith('hostmesh_connections_total'))
              .join('\n'),
          );
        }
        console.error(
          `run ${run} ${row.name}: ${s.rps32.toFixed(0)} req/s @32, ${s.rps256.toFixed(0)} @256, ${s.cpuUsPerRequest.toFixed(0)} us/req (${s.cpuUsPerRequestFixed.toFixed(0)} at 1,000 req/s), ${s.readsPerRequest.toFixed(1)} reads + ${s.writesPerRequest.toFixed(1)} writes/req, p99 ${latency.p99.toFixed(2)} ms, p99.9 ${latency.p999.toFixed(2)} ms, rss ${s.rssLoadMb.toFixed(1)} MB, errors ${s.errors}`,
        );
      }
    }

    // Large body: STREAM_MIB through each path, router RSS peak.
    const stream = new Map<string, { mbPerSecond: number; rssPeakMb: number }>();
    for (const row of rows.filter((r) => r.name !== 'hostmesh-1hop' && r.name !== 'relay')) {
      const rates: number[] = [];
      let peak = 0;
      for (let run = 1; run <= RUNS; run++) {
        const sampler = rssSampler(row.routers(), 50);
        const d = await download(row.origin, '/big', 'world');
        peak = Math.max(peak, ...sampler.stop(), 0);
        if (d.bytes !== STREAM_MIB * 1048576) throw new Error(`${row.name}: /big gave ${d.bytes} bytes`);
        rates.push(d.mbPerSecond);
      }
      stream.set(row.name, { mbPerSecond: median(rates), rssPeakMb: peak });
      console.error(`stream ${row.name}: ${median(rates).toFixed(0)} MB/s, peak RSS ${peak.toFixed(1)} MB`);
    }

    // Soak: hostmesh at 1,000 req/s. Every second, each router's RSS and V8 heap in use (from its
    // /metrics). The heap saws between collections; its lower envelope (the minimum per 30 s
    // window, i.e. what survives a full GC) rising is what a leak looks like. RSS is reported too,
    // but it also steps up while V8 grows its young generation to the maximum, then holds.
    const soak: { t: number; a: number; b: number; heapA: number; heapB: number }[] = [];
    const heapMb = async (ip: string): Promise<number> => {
      const text = await fetch(`http://${ip}:${admin}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      const m = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
      return m ? Number(m[1]) / 1048576 : NaN;
    };
    if (SOAK_S > 0 && rows.some((r) => r.name === 'hostmesh')) {
      const t0 = Date.now();
      const timer = setInterval(() => {
        void Promise.all([heapMb(A), heapMb(B)]).then(([heapA, heapB]) =>
          soak.push({ t: (Date.now() - t0) / 1000, a: rssMb(routerA), b: rssMb(routerB), heapA, heapB }),
        );
      }, 1000);
      await openLoop(`http://${A}:${outgoing}`, '/', { host: 'world' }, 1000, SOAK_S);
      clearInterval(timer);
    }
    const slope = (ys: number[], xs: number[]): number => {
      const n = ys.length;
      if (n < 2) return 0;
      const mx = xs.reduce((a, b) => a + b, 0) / n;
      const my = ys.reduce((a, b) => a + b, 0) / n;
      const num = xs.reduce((a, x, i) => a + (x - mx) * ((ys[i] ?? 0) - my), 0);
      const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
      return den === 0 ? 0 : (num / den) * 60; // MB per minute
    };
    const windows = new Map<number, { t: number; a: number; b: number; n: number }>();
    for (const s of soak) {
      const w = Math.floor(s.t / 30);
      const cur = windows.get(w) ?? { t: w * 30 + 15, a: Infinity, b: Infinity, n: 0 };
      windows.set(w, { t: cur.t, a: Math.min(cur.a, s.heapA), b: Math.min(cur.b, s.heapB), n: cur.n + 1 });
    }
    // A window's minimum is a floor only when the window saw collections: the soak's last window
    // (a sample or two past its end) would put a mid-cycle heap at the end of the fit.
    const floors = [...windows.values()].filter((w) => w.n >= 20 && Number.isFinite(w.a) && Number.isFinite(w.b));
    const heapGrowth = Math.max(
      slope(
        floors.map((w) => w.a),
        floors.map((w) => w.t),
      ),
      slope(
        floors.map((w) => w.b),
        floors.map((w) => w.t),
      ),
    );
    const rssGrowth = Math.max(
      slope(
        soak.map((s) => s.a),
        soak.map((s) => s.t),
      ),
      slope(
        soak.map((s) => s.b),
        soak.map((s) => s.t),
      ),
    );

    // Report.
    const med = (name: string, f: (s: Sample) => number): number => median((samples.get(name) ?? []).map(f));
    const table = rows.map((r) => ({
      row: r.name,
      'req/s @32': med(r.name, (s) => s.rps32),
      'req/s @256': med(r.name, (s) => s.rps256),
      'CPU us/req': med(r.name, (s) => s.cpuUsPerRequest),
      'CPU us/req @1k/s': med(r.name, (s) => s.cpuUsPerRequestFixed),
      'syscalls/req': med(r.name, (s) => s.readsPerRequest + s.writesPerRequest),
      'p50 ms': med(r.name, (s) => s.latency.p50),
      'p99 ms': med(r.name, (s) => s.latency.p99),
      'p99.9 ms': med(r.name, (s) => s.latency.p999),
      'RSS load MB': med(r.name, (s) => s.rssLoadMb),
      'stream MB/s': stream.get(r.name)?.mbPerSecond ?? NaN,
      errors: (samples.get(r.name) ?? []).reduce((a, s) => a + s.errors, 0),
    }));
    const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2)) : String(v));
    const headers = Object.keys(table[0] ?? {});
    const lines = [headers, ...table.map((t) => headers.map((h) => fmt((t as Record<string, unknown>)[h])))];
    const widths = headers.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
    const print = (l: string[]) => console.log('| ' + l.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |');
    print(lines[0] ?? []);
    console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
    for (const l of lines.slice(1)) print(l);

    const ratio = (a: number, b: number) => (b === 0 ? NaN : a / b);
    const has = (n: string) => samples.has(n);
    const verdicts: [string, number, string, boolean][] = [];
    if (has('hostmesh') && has('nginx')) {
      const tp = ratio(
        med('hostmesh', (s) => s.rps32),
        med('nginx', (s) => s.rps32),
      );
      const cpu = ratio(
        med('hostmesh', (s) => s.cpuUsPerRequest),
        med('nginx', (s) => s.cpuUsPerRequest),
      );
      const st = ratio(stream.get('hostmesh')?.mbPerSecond ?? 0, stream.get('nginx')?.mbPerSecond ?? 0);
      verdicts.push(['throughput @32, hostmesh/nginx', tp, '>= 0.5', tp >= 0.5]);
      verdicts.push([
        'throughput @256, hostmesh/nginx',
        ratio(
          med('hostmesh', (s) => s.rps256),
          med('nginx', (s) => s.rps256),
        ),
        '(info)',
        true,
      ]);
      verdicts.push(['CPU per request, hostmesh/nginx', cpu, '<= 2.5', cpu <= 2.5]);
      verdicts.push(['stream rate, hostmesh/nginx', st, '>= 0.5', st >= 0.5]);
    }
    if (has('hostmesh') && has('relay')) {
      const own = ratio(
        med('hostmesh', (s) => s.cpuUsPerRequest),
        med('relay', (s) => s.cpuUsPerRequest),
      );
      verdicts.push(["hostmesh's CPU per request over the plain Node + undici relay's", own, '<= 1.15', own <= 1.15]);
      const fixed = ratio(
        med('hostmesh', (s) => s.cpuUsPerRequestFixed),
        med('relay', (s) => s.cpuUsPerRequestFixed),
      );
      verdicts.push(['the same at a fixed 1,000 req/s (neither saturated)', fixed, '(info)', true]);
      // Per run (the two rows measured within seconds of each other): steadier on a busy machine
      // than the ratio of the medians, whose rows may come from different runs.
      const perRun = (f: (s: Sample) => number): number[] => {
        const h = samples.get('hostmesh') ?? [];
        const r = samples.get('relay') ?? [];
        return h.map((s, i) => ratio(f(s), f(r[i] as Sample))).filter((x) => Number.isFinite(x));
      };
      const show = (xs: number[]): string => `${xs.map((x) => x.toFixed(2)).join(', ')} (median ${median(xs).toFixed(2)})`;
      console.error(
        `hostmesh / relay CPU per request, run by run: saturated ${show(perRun((s) => s.cpuUsPerRequest))}; at 1,000 req/s ${show(perRun((s) => s.cpuUsPerRequestFixed))}`,
      );
    }
    if (has('relay') && has('nginx')) {
      verdicts.push([
        "CPU per request, plain relay/nginx (Node's http.Server + undici; the lean core's floor is lower: bench:forwarders)",
        ratio(
          med('relay', (s) => s.cpuUsPerRequest),
          med('nginx', (s) => s.cpuUsPerRequest),
        ),
        '(info)',
        true,
      ]);
    }
    if (has('hostmesh') && has('direct')) {
      verdicts.push([
        'throughput @32, hostmesh/direct',
        ratio(
          med('hostmesh', (s) => s.rps32),
          med('direct', (s) => s.rps32),
        ),
        '(info)',
        true,
      ]);
      const p99 = med('hostmesh', (s) => s.latency.p99) - med('direct', (s) => s.latency.p99);
      const p999 = med('hostmesh', (s) => s.latency.p999) - med('direct', (s) => s.latency.p999);
      verdicts.push(['added p99 ms over direct @1000 req/s', p99, '<= 1', p99 <= 1]);
      verdicts.push(['added p99.9 ms over direct @1000 req/s', p999, '<= 3', p999 <= 3]);
    }
    // The same tail for the peers of the same run: what two nginx hops, and two hops of any Node
    // relay, add on this machine (the scheduler's and the load generator's share is in every row).
    for (const peer of ['nginx', 'relay']) {
      if (!has(peer) || !has('direct')) continue;
      const p99 = med(peer, (s) => s.latency.p99) - med('direct', (s) => s.latency.p99);
      const p999 = med(peer, (s) => s.latency.p999) - med('direct', (s) => s.latency.p999);
      verdicts.push([`added p99 / p99.9 ms over direct @1000 req/s, ${peer}`, p99, `(info; p99.9 ${p999.toFixed(2)})`, true]);
    }
    if (has('hostmesh')) {
      const idleMax = Math.max(idle.routerA, idle.routerB);
      const loadMax = Math.max(
        med('hostmesh', (s) => s.rssLoadMb),
        ...soak.map((s) => Math.max(s.a, s.b)),
      );
      verdicts.push([`router RSS idle MB (after ${IDLE_S} s idle)`, idleMax, '<= 60', idleMax <= 60]);
      verdicts.push(['router RSS 1 s after ready MB (start-up transient)', Math.max(started.routerA, started.routerB), '(info)', true]);
      verdicts.push(['router private (anon) memory idle MB', Math.max(idle.anonA, idle.anonB), '(info)', true]);
      verdicts.push(['router RSS under load MB', loadMax, '<= 100', loadMax <= 100]);
      verdicts.push(['router RSS streaming MB', stream.get('hostmesh')?.rssPeakMb ?? NaN, '<= 150', (stream.get('hostmesh')?.rssPeakMb ?? 0) <= 150]);
      if (floors.length >= 3) verdicts.push([`heap floor growth MB/min over a ${SOAK_S} s soak (leak check)`, heapGrowth, '~0 (< 0.2)', heapGrowth < 0.2]);
      if (soak.length > 0)
        verdicts.push([
          `RSS slope MB/min over the soak (${Math.min(...soak.map((x) => Math.min(x.a, x.b))).toFixed(0)}-${Math.max(...soak.map((x) => Math.max(x.a, x.b))).toFixed(0)} MB)`,
          rssGrowth,
          '(info)',
          true,
        ]);
    }
    console.log('');
    for (const [what, value, target, pass] of verdicts) console.log(`${pass ? 'PASS' : 'MISS'}  ${what}: ${fmt(value)} (target ${target})`);
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    console.log(
      `\n${cpus().length} x ${cpu}, Node ${process.version}, ${spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim()}; medians of ${RUNS} runs; wrk ${DURATION} s per point, latency ${LATENCY_S} s open loop`,
    );

    const outDir = join(ROOT, 'bench-results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `mesh-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          machine: { cpus: cpus().length, model: cpu, node: process.version },
          options: opt,
          idle,
          idleStarted: started,
          samples: Object.fromEntries(samples),
          stream: Object.fromEntries(stream),
          soak,
          table,
          verdicts,
        },
        null,
        2,
      ),
    );
    console.log(`raw figures: ${file}`);
  } finally {
    for (const c of cleanup.reverse()) await c();
  }
}

await main();
process.exit(0);
