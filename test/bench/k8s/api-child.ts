// Child process of the k8s scale benchmark: the test API server holding a 50-node cluster
// (1,000 Services, 5,000 pods as EndpointSlices), churned on request at a fixed rate. Every change
// is reported to the parent with its wall-clock time so the parent can time change -> routing.

import { FakeApiServer } from '../../fixtures/k8s-api-server.js';
import { endpointSlice, service } from '../../helpers/k8s.js';

const NODES = 50;
const SERVICES = 1000;
const PODS_PER_SERVICE = 5;

// BENCH_LOOPBACK_PODS=1: pods on 127.x addresses (nothing listens there), for benches whose router
// really connects (bind-router.ts), so no request leaves the machine.
const ip = (n: number): string => `${process.env['BENCH_LOOPBACK_PODS'] ? 127 : 10}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

const api = await new FakeApiServer({ history: 100_000 }).start();
let pod = 0;
const members = new Map<number, number[]>();
for (let s = 0; s < SERVICES; s++) {
  api.apply(service('default', `svc-${s}`));
  const pods = Array.from({ length: PODS_PER_SERVICE }, () => pod++);
  members.set(s, pods);
  api.apply(
    endpointSlice(
      'default',
      `svc-${s}-x`,
      `svc-${s}`,
      pods.map((p) => ({ ip: ip(p), node: `node-${p % NODES}` })),
    ),
  );
}
process.send?.({ type: 'listening', port: api.port, pods: pod });

process.on('message', (m: { type: string; perSecond?: number; seconds?: number }) => {
  if (m.type !== 'churn') return;
  const perSecond = m.perSecond ?? 50;
  const total = perSecond * (m.seconds ?? 10);
  let done = 0;
  const timer = setInterval(() => {
    // Replace one pod of a random service by a new one (a rolling update step).
    const s = Math.floor(Math.random() * SERVICES);
    const pods = members.get(s) as number[];
    pods.shift();
    const fresh = pod++;
    pods.push(fresh);
    const at = Date.now();
    api.apply(
      endpointSlice(
        'default',
        `svc-${s}-x`,
        `svc-${s}`,
        pods.map((p) => ({ ip: ip(p), node: `node-${p % NODES}` })),
      ),
    );
    process.send?.({ type: 'change', service: `svc-${s}`, ip: ip(fresh), at });
    if (++done >= total) {
      clearInterval(timer);
      process.send?.({ type: 'churned', changes: done });
    }
  }, 1000 / perSecond);
});
process.on('disconnect', () => void api.close().then(() => process.exit(0)));
