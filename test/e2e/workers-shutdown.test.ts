// `workers: 2` and the admin's shutdown: POST /admin/shutdown reaches worker 0 only (it owns the
// admin port), yet drains the node: worker 0 asks the primary, which drains every worker, and the
// primary exits 0 with no worker left. Without the hand-over, worker 0 would drain alone and the
// primary would start it again.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { eventually } from '../helpers/sockets.js';
import { alive, startPrimary } from '../helpers/workers.js';

const IP = '127.0.0.53';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-workers-shutdown-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('POST /admin/shutdown on worker 0 drains every worker and ends the primary', async (t) => {
  const [port, admin] = (await freePorts(IP, 2)) as [number, number];
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `
admin: {ip: ${IP}, port: ${admin}}
workers: 2
drainAnnounceMs: 0
routers:
- protocol: http
  label: out
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - {port: ${port}, ip: ${IP}}
`,
  );
  const primary = startPrimary(t, file, IP, admin);
  const workers = await primary.untilRunning(2);
  t.equal(workers.length, 2, 'two workers serving');

  const answer = await request({ host: IP, port: admin, path: '/admin/shutdown', method: 'POST', headers: { 'hostmesh-admin': '1' } });
  t.equal(answer.status, 200, 'the shutdown is accepted');
  // A ceiling, not a wait: without the hand-over the primary would run on, restarting worker 0.
  const code = await Promise.race([primary.exit.then(([c]) => c), new Promise<string>((r) => setTimeout(() => r('still running 20 s later'), 20_000).unref())]);
  t.equal(code, 0, 'the primary exits 0');
  t.ok(await eventually(() => workers.every((w) => !alive(w)), 5_000), 'both workers are gone');
  t.match(primary.stderr(), /admin shutdown: draining every worker/, 'the primary drained every worker');
  t.notMatch(primary.stderr(), /starting it again/, 'no worker was restarted');
});
