// `npm run bench:tenants` (not a test): issue 23's bench lines, the router (compiled, in a child
// process) against the test API server holding hostile tenants' objects.
// 1. Start-up: 5,000 pods of which 150 are ~1.5 MB (8,000 labels, 750 KB of annotations, on a node
//    that does not exist): peak RSS (getrusage maxrss) and time to /ready, against 5,000 normal pods.
// 2. Slice churn: a Service of 30 slices x 1,000 endpoints edited 27 times a second for 10 s while
//    another tenant's Service is called at 100 req/s through the router: its p50/p99/max and failures,
//    the router's peak RSS and CPU.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { FakeApiServer, type KObject } from '../../fixtures/k8s-api-server.js';

const CHILD = join(import.meta.dirname, '../../fixtures/k8s-router-child.js');

function pod(i: number, big: boolean): KObject {
  const labels: Record<string, string> = { app: `app-${i % 50}` };
  if (big) for (let k = 0; k < 8000; k++) labels[`tenant.example/label-${k}`] = 'v'.repeat(63);
  const a = 'x'.repeat(250_000);
  return {
    kind: 'Pod',
    metadata: { namespace: big ? 'attacker' : `team-${i % 20}`, name: `pod-${i}`, labels, ...(big ? { annotations: { a, b: a, c: a } } : {}) },
    spec: { nodeName: big ? 'no-such-node' : `node-${i % 50}`, serviceAccountName: 'default', containers: [{ name: 'app', image: 'example/app:1' }] },
    status: big ? { phase: 'Pending' } : { phase: 'Running', podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
  };
}

interface Ready {
  readyMs: number;
  peakRssMB: number;
  heapMB: number;
  port: number;
}

async function router(api: FakeApiServer, env: Record<string, string> = {}) {
  const child = fork(CHILD, {
    execArgv: ['--expose-gc'],
    env: { ...process.env, API_PORT: String(api.port), ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(child, 'message')) as [Ready];
  return {
    ready,
    async stop(): Promise<{ peakRssMB: number; cpuMs: number }> {
      child.send('exit');
      const [end] = (await once(child, 'message')) as [{ peakRssMB: number; cpuMs: number }];
      await once(child, 'exit');
      return end;
    },
  };
}

// --- 1. start-up with big pods -------------------------------------------------------------------
// PHASE=startup or PHASE=churn runs one part only.
const phase = process.env['PHASE'];
for (const bigCount of phase === 'churn' ? [] : [0, 150]) {
  const api = await new FakeApiServer().start();
  for (let i = 0; i < 5000; i++) api.apply(pod(i, i < bigCount));
  const r = await router(api);
  await r.stop();
  console.log(
    `startup: 5,000 pods, ${bigCount} of ~1.5 MB: /ready in ${r.ready.readyMs.toFixed(0)} ms, router peak RSS ${r.ready.peakRssMB.toFixed(0)} MB, heap after GC ${r.ready.heapMB.toFixed(1)} MB`,
  );
  await api.close();
}

// --- 2. slice churn while another tenant calls ---------------------------------------------------
if (phase !== 'startup') {
  const backend = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendPort = (backend.address() as AddressInfo).port;
  const apiChild = fork(join(import.meta.dirname, 'churn-api-child.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  apiChild.send({ calmPort: backendPort });
  const [{ port: apiPort }] = (await once(apiChild, 'message')) as [{ port: number }];
  const r = await router({ port: apiPort } as FakeApiServer, { ALLOW_LOOPBACK: '1' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const call = (host: string): Promise<{ status: number; ms: number }> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = http.request({ host: '127.0.0.1', port: r.ready.port, path: '/', agent, headers: { host } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      });
      req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
      req.end();
    });
  await call('busy'); // the busy Service is bound (and watched) too
  while ((await call('calm')).status !== 200) await new Promise((res) => setTimeout(res, 20));
  const SECONDS = 10;
  apiChild.send('churn');
  const results: { status: number; ms: number }[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < SECONDS * 100; i++) {
    const due = started + i * 10;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    pending.push(call('calm').then((x) => void results.push(x)));
  }
  await Promise.all(pending);
  const elapsed = performance.now() - started;
  apiChild.send('stop');
  const [{ edits }] = (await once(apiChild, 'message')) as [{ edits: number }];
  const end = await r.stop();
  const ms = results.map((x) => x.ms).sort((a, b) => a - b);
  const q = (p: number): number => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? Number.NaN;
  const failures = results.filter((x) => x.status !== 200).length;
  console.log(
    `churn: 30 slices x 1,000 endpoints, ${edits} edits in ${(elapsed / 1000).toFixed(1)} s; other tenant at 100 req/s: p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${(ms[ms.length - 1] ?? Number.NaN).toFixed(0)} ms, ${failures} of ${results.length} failed; router peak RSS ${end.peakRssMB.toFixed(0)} MB, CPU ${((end.cpuMs / elapsed) * 100).toFixed(0)}% of a core (start-up included)`,
  );
  agent.destroy();
  backend.close();
}
