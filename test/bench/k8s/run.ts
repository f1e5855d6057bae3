// `npm run bench:k8s` (not a test): the io.l5d.k8s namer at scale. A child process serves a
// 50-node cluster (1,000 Services, 5,000 pods) from the test API server; this process runs the
// namer with every service looked up, as routing would. Reports initial sync time (target <= 2 s),
// change -> routing latency under 50 endpoint changes/s (target p99 <= 100 ms), RSS with that state
// (target <= 80 MB) and CPU while churning.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { K8sClient } from '../../../src/k8s/client.js';
import { plainConnection } from '../../../src/k8s/connection.js';
import { Path } from '../../../src/dtab/path.js';
import type { Addr, Lookup } from '../../../src/namer/addr.js';
import { K8sNamer } from '../../../src/namer/k8s/k8s-namer.js';
import { silentLogger } from '../../../src/log.js';

const SERVICES = 1000;
const CHURN_PER_SECOND = 50;
const CHURN_SECONDS = 10;

const child = fork(join(import.meta.dirname, 'api-child.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const [hello] = (await once(child, 'message')) as [{ port: number; pods: number }];

const rssBefore = process.memoryUsage().rss;
// Peak RSS while the 1,000 names bind (issue 28: <= 100 MB): sampled every 10 ms until synced.
let bindPeak = rssBefore;
const peakTimer = setInterval(() => (bindPeak = Math.max(bindPeak, process.memoryUsage().rss)), 10);
const namer = new K8sNamer({ client: new K8sClient(plainConnection('127.0.0.1', hello.port)), logger: silentLogger() });
const start = performance.now();
const lookups = new Map<string, import('../../../src/namer/var.js').Var<Lookup>>();
for (let s = 0; s < SERVICES; s++) lookups.set(`svc-${s}`, namer.lookup(new Path(['default', 'http', `svc-${s}`])));
const endpointsOf = (l: Lookup): readonly { host: string }[] => {
  if (l.kind !== 'ok' || l.tree.kind !== 'leaf') return [];
  const a: Addr = l.tree.value.addr.get();
  return a.kind === 'bound' ? a.endpoints : [];
};
await new Promise<void>((resolve) => {
  const check = setInterval(() => {
    if ([...lookups.values()].every((v) => endpointsOf(v.get()).length > 0)) {
      clearInterval(check);
      resolve();
    }
  }, 5);
});
const syncMs = performance.now() - start;
clearInterval(peakTimer);
bindPeak = Math.max(bindPeak, process.memoryUsage().rss);
const heapAtSync = process.memoryUsage().heapTotal;

// Change -> routing: each change names the new pod; time until that service's addresses hold it.
const latencies: number[] = [];
const pending = new Map<string, { ip: string; at: number }[]>();
for (const [svc, v] of lookups) {
  const l = v.get();
  if (l.kind !== 'ok' || l.tree.kind !== 'leaf') continue;
  l.tree.value.addr.subscribe((a) => {
    const waiting = pending.get(svc);
    if (!waiting || a.kind !== 'bound') return;
    const now = Date.now();
    for (const w of [...waiting]) {
      if (a.endpoints.some((e) => e.host === w.ip)) {
        latencies.push(now - w.at);
        waiting.splice(waiting.indexOf(w), 1);
      }
    }
  });
}
child.on('message', (m: { type: string; service?: string; ip?: string; at?: number }) => {
  if (m.type !== 'change' || !m.service || !m.ip || m.at === undefined) return;
  const list = pending.get(m.service) ?? [];
  list.push({ ip: m.ip, at: m.at });
  pending.set(m.service, list);
});
const cpuStart = process.cpuUsage();
const wallStart = performance.now();
child.send({ type: 'churn', perSecond: CHURN_PER_SECOND, seconds: CHURN_SECONDS });
await new Promise<void>((resolve) => child.on('message', (m: { type: string }) => m.type === 'churned' && resolve()));
await new Promise((r) => setTimeout(r, 500)); // let the last events arrive
const cpu = process.cpuUsage(cpuStart);
const wallMs = performance.now() - wallStart;
(globalThis as { gc?: () => void }).gc?.();
const rss = process.memoryUsage().rss;
const heap = process.memoryUsage().heapUsed;

latencies.sort((a, b) => a - b);
const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);
const lines = [
  `cluster: 50 nodes, ${SERVICES} services, ${hello.pods} pods; churn ${CHURN_PER_SECOND} changes/s for ${CHURN_SECONDS} s`,
  `initial sync (all ${SERVICES} names bound)     ${syncMs.toFixed(0)} ms   (target <= 2000 ms)`,
  `change -> routing latency          p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  max ${latencies.at(-1)} ms  (${latencies.length} changes seen; target p99 <= 100 ms)`,
  `peak RSS while binding             ${mb(bindPeak)} MB, heap total at sync ${mb(heapAtSync)} MB (target <= 100 MB; node flags: ${process.execArgv.join(' ') || 'none'})`,
  `router RSS with that state         ${mb(rss)} MB (process before namer ${mb(rssBefore)} MB; target <= 80 MB)`,
  `heap used after GC                 ${mb(heap)} MB`,
  `CPU while churning                 ${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(1)} % of one core`,
];
process.stdout.write(lines.join('\n') + '\n');
await namer.close();
child.disconnect();
