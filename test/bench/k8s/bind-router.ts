// `npm run bench:k8s-bind` (not a test): issue 28's "<= 100 MB peak while binding 1,000 services",
// measured on the router itself. A child serves the 50-node cluster of `bench:k8s` (1,000 Services,
// 5,000 endpoints) from the test API server; the compiled router (`hostmesh run`, io.l5d.k8s namer)
// gets one request per service (50 in flight), so it binds all 1,000 names. Reports the router's
// RSS before, its peak while binding (sampled every 10 ms), and 10 s later; once with Node's
// defaults and once as deployed: the image's node flags (the Dockerfile's ENTRYPOINT, or
// BENCH_NODE_FLAGS; test/helpers/image-flags.ts) and the DaemonSet's NODE_OPTIONS (k8s/base/daemonset.yaml).
// The endpoints are 127.x addresses where nothing listens (the namer's allowLoopbackEndpoints): each
// request ends in a refused connection (502/503) after the binding, which is what is measured.

import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../helpers/ports.js';
import { routerNodeFlags } from '../../helpers/image-flags.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
// BENCH_MAIN: another build's dist/src/cli/main.js (before/after comparisons).
const MAIN = process.env['BENCH_MAIN'] || join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SERVICES = 1000;
const IN_FLIGHT = 50;
const IP = '127.0.0.31';

const statusMb = (pid: number, field: string): number =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const rssMb = (pid: number): number => statusMb(pid, 'VmRSS');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const daemonSetOptions = /- name: NODE_OPTIONS\n\s+value: "([^"]*)"/.exec(readFileSync(join(ROOT, 'k8s', 'base', 'daemonset.yaml'), 'utf8'))?.[1] ?? '';

const child = fork(join(import.meta.dirname, 'api-child.js'), {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  env: { ...process.env, BENCH_LOOPBACK_PODS: '1' },
});
const [hello] = (await once(child, 'message')) as [{ port: number; pods: number }];
// BENCH_ENDPOINTS_ANSWER=1: every pod address answers (200, one http server per 127.x address on
// the pods' port 8080), so each request is one attempt instead of five refused connections: what
// binding costs without the refused attempts' churn (issue 28).
const podServers: http.Server[] = [];
if (process.env['BENCH_ENDPOINTS_ANSWER']) {
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.end('ok');
  };
  for (let p = 0; p < hello.pods; p++) {
    const server = http.createServer(answer);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(8080, `127.${(p >> 16) & 255}.${(p >> 8) & 255}.${p & 255}`, resolve);
    });
    podServers.push(server);
  }
}
const dir = mkdtempSync(join(tmpdir(), 'hostmesh-bind-'));

function get(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: IP, port, path: '/', headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function run(flags: readonly string[], nodeOptions: string): Promise<string> {
  const [port, admin] = (await freePorts(IP, 2)) as [number, number];
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `admin: {ip: ${IP}, port: ${admin}}\nnamers:\n- kind: io.l5d.k8s\n  host: 127.0.0.1\n  port: ${hello.port}\n  allowLoopbackEndpoints: true\nrouters:\n- protocol: http\n  label: outgoing\n  dtab: /svc => /#/io.l5d.k8s/default/http;\n  servers: [{ip: ${IP}, port: ${port}}]\n  client: {connectTimeoutMs: 200}\n`,
  );
  // BENCH_ROUTER_LOG: a file for the router's stdout (its log, and --trace-gc's lines with BENCH_NODE_ARGS=--trace-gc).
  const log = process.env['BENCH_ROUTER_LOG'] ? openSync(process.env['BENCH_ROUTER_LOG'], 'w') : 'ignore';
  const router = spawn(process.execPath, [...flags, ...(process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), MAIN, 'run', '-c', config], {
    stdio: ['ignore', log, 'inherit'],
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  const pid = router.pid ?? 0;
  try {
    for (let i = 0; ; i++) {
      if (
        await fetch(`http://${IP}:${admin}/ready`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 600) throw new Error('the router never became ready');
      await sleep(100);
    }
    await sleep(1000);
    const before = rssMb(pid);
    if (process.env['BENCH_SNAPSHOT']) {
      router.kill('SIGUSR2'); // a snapshot before binding too, to diff against the one after
      await sleep(Number(process.env['BENCH_SNAPSHOT']));
    }
    let peak = before;
    let peakAnon = 0;
    const timer = setInterval(() => {
      const rss = rssMb(pid);
      if (rss > peak) {
        peak = rss;
        peakAnon = statusMb(pid, 'RssAnon');
      }
    }, 10);
    const statuses = new Map<number, number>();
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < SERVICES) {
          const s = await get(port, `svc-${next++}`);
          statuses.set(s, (statuses.get(s) ?? 0) + 1);
        }
      }),
    );
    const ms = performance.now() - t0;
    clearInterval(timer);
    peak = Math.max(peak, rssMb(pid));
    await sleep(10_000);
    const later = rssMb(pid);
    const metrics = await fetch(`http://${IP}:${admin}/metrics`).then((r) => r.text());
    const gauge = (name: string): string => (Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) / 1048576).toFixed(1);
    const heap = `heap used ${gauge('nodejs_heap_size_used_bytes')} MB of ${gauge('nodejs_heap_size_total_bytes')}, external ${gauge('nodejs_external_memory_bytes')} MB`;
    if (process.env['BENCH_SNAPSHOT']) {
      router.kill('SIGUSR2'); // --heapsnapshot-signal=SIGUSR2 in BENCH_NODE_ARGS: a heap snapshot in the cwd
      await sleep(Number(process.env['BENCH_SNAPSHOT']));
    }
    const codes = [...statuses].map(([s, n]) => `${s}: ${n}`).join(', ');
    return `node ${[...flags, ''].join(' ')}NODE_OPTIONS='${nodeOptions}': RSS before ${before.toFixed(1)} MB, peak while binding ${peak.toFixed(1)} MB (target <= 100; anon ${peakAnon.toFixed(1)}), 10 s later ${later.toFixed(1)} MB (${heap}); ${SERVICES} services in ${ms.toFixed(0)} ms (statuses ${codes})`;
  } finally {
    router.kill('SIGKILL');
    await once(router, 'exit');
  }
}

try {
  process.stdout.write(`${await run([], '')}\n`);
  process.stdout.write(`${await run(routerNodeFlags(), daemonSetOptions)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  for (const server of podServers) server.close();
  child.disconnect();
}
