// `npm run bench:pods` (not a test): memory of the pod directory (issue 17's target: 5,000 pods in
// the pod watch under 20 MB). A child serves realistic pods from the test API server; this process
// syncs one cluster-wide watch and reports the live heap it added (after full GCs) and the time.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { K8sClient } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { WatchedPods } from '../../src/identity/pod-directory.js';
import { silentLogger } from '../../src/log.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

for (const count of [1000, 5000]) {
  const child = fork(join(import.meta.dirname, 'pods-child.js'), {
    env: { ...process.env, PODS: String(count) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [hello] = (await once(child, 'message')) as [{ port: number; pods: number }];
  const before = heap();
  const client = new K8sClient(plainConnection('127.0.0.1', hello.port));
  const started = performance.now();
  const pods = new WatchedPods({ client, logger: silentLogger() }).start();
  while (!pods.synced) await new Promise((r) => setTimeout(r, 5));
  const syncMs = performance.now() - started;
  const after = heap();
  const mb = (after - before) / 1e6;
  console.log(
    `pods ${count}: synced ${pods.size} in ${syncMs.toFixed(0)} ms; live heap added ${mb.toFixed(1)} MB (${((after - before) / count).toFixed(0)} B/pod)${count === 5000 ? `; target < 20 MB: ${mb < 20 ? 'met' : 'MISSED'}` : ''}`,
  );
  await pods.stop();
  await client.close();
  child.disconnect();
  await once(child, 'exit');
}
