// Issue 23 item 2: memory must not be set by other tenants' object sizes. 150 pods of ~1.4 MB
// (thousands of labels, a 250 KB annotation, on a node that does not exist) among normal pods:
// the router lists in pages, reduces each object as it is parsed and never holds a page, so its
// peak RSS (the kernel's maxrss, in a child process) stays near that of a cluster without them,
// and /ready comes. Also: the list is paged with limit/continue, and an expired continue token
// (410) lists again from the start.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { K8sClient, type KObject } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { Informer } from '../../src/k8s/informer.js';
import { PODS } from '../../src/k8s/resources.js';
import { silentLogger } from '../../src/log.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { childEnv, childModule } from '../helpers/paths.js';
import { until } from '../helpers/k8s.js';

const ANNOTATION = 'x'.repeat(250_000);
/** Big pods listed here (the bench, `npm run bench:pods`, lists 150 of them among 5,000): enough that holding a page whole shows. */
const BIG = 30;
const LABEL_VALUE = 'v'.repeat(63);

function normalPod(i: number): KObject {
  return {
    kind: 'Pod',
    metadata: { namespace: `team-${i % 20}`, name: `pod-${i}`, labels: { app: `app-${i % 50}` } },
    spec: { nodeName: `node-${i % 50}`, serviceAccountName: 'default', containers: [{ name: 'app', image: 'example/app:1' }] },
    status: { phase: 'Running', podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
  };
}

/** ~1.4 MB: 8,000 labels of 63-byte values, a 250 KB annotation and more annotations. */
function bigPod(i: number): KObject {
  const labels: Record<string, string> = {};
  for (let k = 0; k < 8000; k++) labels[`tenant.example/label-${k}`] = LABEL_VALUE;
  return {
    kind: 'Pod',
    metadata: {
      namespace: 'attacker',
      name: `big-${i}`,
      labels,
      annotations: { big: ANNOTATION, more: ANNOTATION, evenMore: ANNOTATION },
    },
    spec: { nodeName: 'no-such-node', serviceAccountName: 'default', containers: [{ name: 'app', image: 'example/app:1' }] },
    status: { phase: 'Pending' },
  };
}

async function routerIn(api: FakeApiServer): Promise<{ readyMs: number; peakRssMB: number; heapMB: number }> {
  // Without tap's coverage hooks: block coverage slows the byte scanning many times over.
  const router = childModule('test/fixtures/k8s-router-child.ts');
  const child = fork(router.file, {
    execArgv: [...router.execArgv, '--expose-gc'],
    env: childEnv({ API_PORT: String(api.port) }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [report] = (await once(child, 'message')) as [{ readyMs: number; peakRssMB: number; heapMB: number }];
  child.send('exit');
  await once(child, 'exit');
  return report;
}

t.test('pods of ~1.5 MB: the router peak RSS stays near a cluster without them, and it becomes ready', { timeout: 120_000 }, async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  for (let i = 0; i < 300; i++) api.apply(normalPod(i));
  const base = await routerIn(api);
  t.ok(base.readyMs > 0, `without big objects: ready in ${base.readyMs.toFixed(0)} ms, peak RSS ${base.peakRssMB.toFixed(0)} MB`);
  const size = JSON.stringify(bigPod(0)).length;
  t.ok(size > 1_300_000 && size < 1_600_000, `each big pod is ${(size / 1e6).toFixed(2)} MB`);
  for (let i = 0; i < BIG; i++) api.apply(bigPod(i));
  const big = await routerIn(api);
  const grown = big.peakRssMB - base.peakRssMB;
  t.ok(
    grown < 100,
    `peak RSS with ${BIG} x 1.5 MB pods: ${big.peakRssMB.toFixed(0)} MB (+${grown.toFixed(0)} MB; ${((BIG * size) / 1e6).toFixed(0)} MB of objects listed)`,
  );
  // No absolute bound here: the child runs under tap's TypeScript loader and coverage, which
  // inflate its baseline; `npm run bench:pods` measures the compiled router (README, limits).
  t.ok(big.heapMB - base.heapMB < 15, `heap kept after GC: +${(big.heapMB - base.heapMB).toFixed(1)} MB for ${BIG} pods (only the fields used are kept)`);
  t.ok(big.readyMs > 0, `ready in ${big.readyMs.toFixed(0)} ms`);
  const pages = api.requests.filter((r) => r.url.startsWith('/api/v1/pods?') && r.url.includes('limit=')).length;
  t.ok(pages >= 2, `the pod list is paged (${pages} page requests over both runs)`);
});

t.test('paging follows continue; an expired continue token lists again from the start', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  for (let i = 0; i < 1205; i++) api.apply(normalPod(i));
  const client = new K8sClient(plainConnection('127.0.0.1', api.port));
  let served = 0;
  let expireOnce = true;
  const informer = new Informer({ client, resource: PODS, logger: silentLogger(), pageSize: 500 });
  api.onListPage = (continued) => {
    served++;
    if (continued && expireOnce) {
      expireOnce = false;
      api.compact(); // the snapshot is compacted away between pages: 410 Expired
    }
  };
  informer.start();
  t.teardown(async () => {
    await informer.stop();
    await client.close();
  });
  t.ok(await until(() => informer.synced, 10_000), 'synced');
  t.equal(informer.list().length, 1205, 'every object, once');
  t.equal(informer.stats.expiredContinues, 1, 'one expired continue');
  t.equal(informer.stats.pages, 4, 'the first page, then three pages of 500 after the restart');
  t.equal(served, 5, 'page 1, the expired continue, then pages 1-3 again');
});
