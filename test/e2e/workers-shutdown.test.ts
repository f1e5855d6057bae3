// `workers: 2` and the admin's shutdown: POST /admin/shutdown reaches worker 0 only (it owns the
// admin port), yet drains the node: worker 0 asks the primary, which drains every worker, and the
// primary exits 0 with no worker left. Without the hand-over, worker 0 would drain alone and the
// primary would start it again.

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { spawnCli } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { eventually } from '../helpers/sockets.js';

const IP = '127.0.0.53';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-workers-shutdown-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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
  const primary = spawnCli(['run', '-c', file]);
  let stderr = '';
  primary.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = once(primary, 'exit') as Promise<[number | null, string | null]>;
  let exited = false;
  void exit.then(() => (exited = true));
  let workers: number[] = [];
  t.teardown(() => {
    if (!exited) primary.kill('SIGKILL');
    for (const w of workers) if (alive(w)) process.kill(w, 'SIGKILL');
  });
  t.teardown(() => {
    if (!t.passing()) t.comment(stderr.slice(-6000));
  });
  const pid = primary.pid ?? 0;
  const running = async (): Promise<number> => {
    const r = await request({ host: IP, port: admin, path: '/metrics' }).catch(() => undefined);
    return r?.status === 200 ? (parsePrometheus(r.body).find((s) => s.name === 'hostmesh_workers_running')?.value ?? 0) : 0;
  };
  for (let i = 0; i < 600 && (await running()) !== 2; i++) await new Promise((r) => setTimeout(r, 50));
  workers = children(pid);
  t.equal(workers.length, 2, 'two workers serving');

  const answer = await request({ host: IP, port: admin, path: '/admin/shutdown', method: 'POST', headers: { 'hostmesh-admin': '1' } });
  t.equal(answer.status, 200, 'the shutdown is accepted');
  // A ceiling, not a wait: without the hand-over the primary would run on, restarting worker 0.
  const code = await Promise.race([exit.then(([c]) => c), new Promise<string>((r) => setTimeout(() => r('still running 20 s later'), 20_000).unref())]);
  t.equal(code, 0, 'the primary exits 0');
  t.ok(await eventually(() => workers.every((w) => !alive(w)), 5_000), 'both workers are gone');
  t.match(stderr, /admin shutdown: draining every worker/, 'the primary drained every worker');
  t.notMatch(stderr, /starting it again/, 'no worker was restarted');
});
