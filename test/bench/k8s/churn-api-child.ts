// The API server of `bench:tenants`' churn part, in its own process so that serializing 27 slices
// of 1,000 endpoints a second does not slow the load generator or the backend. Messages:
// {calmPort} -> sets up the Services and sends {port}; 'churn' starts the edits; 'stop' stops and
// answers {edits}.

import { FakeApiServer, type KObject } from '../../fixtures/k8s-api-server.js';

const api = await new FakeApiServer({ history: 100 }).start();
const slice = (i: number, gen: number): KObject => ({
  kind: 'EndpointSlice',
  metadata: { namespace: 'default', name: `busy-${i}`, labels: { 'kubernetes.io/service-name': 'busy' } },
  addressType: 'IPv4',
  endpoints: Array.from({ length: 1000 }, (_, k) => ({
    addresses: [`10.${i}.${k >> 8}.${k & 255}`],
    conditions: { ready: (k + gen) % 7 !== 0 },
    nodeName: `node-${k % 50}`,
  })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});
let gen = 1;
let timer: NodeJS.Timeout | undefined;
process.on('message', (m: { calmPort?: number } | string) => {
  if (typeof m === 'object' && m.calmPort !== undefined) {
    api.apply({ kind: 'Service', metadata: { namespace: 'default', name: 'busy' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
    api.apply({ kind: 'Service', metadata: { namespace: 'default', name: 'calm' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
    for (let i = 0; i < 30; i++) api.apply(slice(i, 0));
    api.apply({
      kind: 'EndpointSlice',
      metadata: { namespace: 'default', name: 'calm-1', labels: { 'kubernetes.io/service-name': 'calm' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: m.calmPort, protocol: 'TCP' }],
    });
    process.send?.({ port: api.port });
  } else if (m === 'churn') {
    const started = performance.now();
    // 27 edits a second, paced on the clock (a late timer catches up, never bursts past the rate)
    timer = setInterval(() => {
      while (gen - 1 < ((performance.now() - started) / 1000) * 27) api.apply(slice(gen % 30, gen++));
    }, 10);
  } else if (m === 'stop') {
    clearInterval(timer);
    process.send?.({ edits: gen - 1 }, () => void api.close().then(() => process.disconnect()));
  }
});
