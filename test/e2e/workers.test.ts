// `workers: 2` (docs/cores.md): `hostmesh run` as a primary with two router workers sharing the
// router's port. Requests reach both workers (each holds its own connections to the app, read
// from /proc), /metrics sums both, a dtab file change reaches both, a killed worker is started
// again while the other serves on, and SIGTERM drains both workers' requests in flight.

import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { eventually } from '../helpers/sockets.js';
import { alive, childrenOf, ownerOfClientPort, startPrimary } from '../helpers/workers.js';

const IP = '127.0.0.52';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-workers-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

interface App {
  readonly port: number;
  /** Client ports of the connections requests arrived on (the routers' side). */
  readonly sources: Set<number>;
  /** Requests to /slow wait here until released, with the client port they came on. */
  readonly held: { readonly port: number; release(): void }[];
  close(): Promise<void>;
}

async function app(name: string): Promise<App> {
  const sources = new Set<number>();
  const held: { port: number; release(): void }[] = [];
  const server = http.createServer((req, res) => {
    sources.add(req.socket.remotePort ?? 0);
    const answer = (): void => void res.end(name);
    if (req.url === '/slow') held.push({ port: req.socket.remotePort ?? 0, release: answer });
    else answer();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    sources,
    held,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

t.test('workers: 2 serve one port, sum their metrics, reload, restart and drain together', async (t) => {
  const a = await app('A');
  const b = await app('B');
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [port, admin] = (await freePorts(IP, 2)) as [number, number];
  const dtab = join(dir, 'dtab');
  await writeFile(dtab, `/svc => /$/inet/127.0.0.1/${a.port};\n`);
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `
admin: {ip: ${IP}, port: ${admin}}
workers: 2
drainAnnounceMs: 0
shutdownGraceMs: 10000
routers:
- protocol: http
  label: out
  interpreter: {kind: io.l5d.fs, dtabFile: ${dtab}}
  servers:
  - {port: ${port}, ip: ${IP}}
`,
  );
  const primary = startPrimary(t, file, IP, admin);
  const { pid } = primary;
  const ready = async (): Promise<boolean> => (await request({ host: IP, port: admin, path: '/ready' }).catch(() => ({ status: 0 }))).status === 200;
  // Both workers serving: worker 0's /ready, and the primary counting two workers that said so.
  let workers = await primary.untilRunning(2, ready);
  t.equal(workers.length, 2, workers.length === 2 ? 'two workers' : `two workers; the log: ${primary.stderr().slice(-2000)}`);

  const get = (path = '/'): Promise<{ status: number; body: string }> =>
    request({ host: IP, port, path, headers: { host: 'web' } }).catch((e: Error) => ({ status: 0, body: e.message }));
  // Each request on a new connection: the primary hands connections to the workers in turn.
  const first = await Promise.all(Array.from({ length: 20 }, () => get()));
  t.same(
    first.map((r) => `${r.status} ${r.body}`),
    Array(20).fill('200 A'),
    'every request answered by app A',
  );
  const owners = new Set([...a.sources].map((p) => ownerOfClientPort(p, workers)));
  t.same([...owners].sort(), [...workers].sort(), 'both workers carried requests to the app (their own connections)');

  const scrape = async (): Promise<ReturnType<typeof parsePrometheus>> => {
    const r = await request({ host: IP, port: admin, path: '/metrics' });
    t.equal(r.status, 200, '/metrics answers');
    return parsePrometheus(r.body);
  };
  const requests = (samples: ReturnType<typeof parsePrometheus>): number =>
    samples.filter((s) => s.name === 'hostmesh_requests_total' && s.labels['router'] === 'out').reduce((n, s) => n + s.value, 0);
  const summed = await scrape();
  t.equal(requests(summed), 20, '/metrics counts the requests of both workers once each');
  t.equal(summed.find((s) => s.name === 'hostmesh_workers_running')?.value, 2, 'two workers running');
  const own = await request({ host: IP, port: admin, path: '/admin/metrics.json' });
  t.equal(own.status, 200, 'worker 0 serves the other admin pages');

  // A dtab file change reaches both workers: requests on new connections until each worker holds
  // connections to app B (a worker connects to B only once it has read the new dtab); then every
  // answer is B's.
  await writeFile(dtab, `/svc => /$/inet/127.0.0.1/${b.port};\n`);
  const bOwners = (): Set<number | undefined> => new Set([...b.sources].map((p) => ownerOfClientPort(p, workers)));
  for (let i = 0; i < 400 && !workers.every((w) => bOwners().has(w)); i++) {
    await Promise.all([get(), get()]);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.same([...bOwners()].sort(), [...workers].sort(), 'both workers reloaded the dtab');
  const after = await Promise.all(Array.from({ length: 10 }, () => get()));
  t.same(
    after.map((r) => `${r.status} ${r.body}`),
    Array(10).fill('200 B'),
    'every answer after the reload is app B',
  );

  // A killed worker: the other serves on, and the primary starts a new one.
  const [victim, survivor] = workers as [number, number];
  process.kill(victim, 'SIGKILL');
  t.ok(await eventually(() => !childrenOf(pid).includes(victim), 10_000), 'the primary reaped the killed worker');
  const during = await Promise.all(Array.from({ length: 6 }, () => get()));
  t.same(
    during.map((r) => r.status),
    Array(6).fill(200),
    'requests are answered while a worker is down',
  );
  t.ok(await eventually(() => childrenOf(pid).length === 2, 15_000), 'a new worker replaced it');
  workers = childrenOf(pid);
  primary.workers = workers;
  t.ok(workers.includes(survivor) && !workers.includes(victim), 'the survivor kept running');
  await primary.untilRunning(2, ready);
  const restarted = await scrape();
  t.equal(restarted.find((s) => s.name === 'hostmesh_worker_restarts_total')?.value, 1, 'the restart is counted');
  t.equal(restarted.find((s) => s.name === 'hostmesh_workers_running')?.value, 2, 'two workers running again');

  // SIGTERM: requests in flight in both workers finish; then every process exits.
  const slow = Array.from({ length: 6 }, () => get('/slow'));
  t.ok(await eventually(() => b.held.length === 6, 10_000), 'six slow requests reached app B');
  const slowOwners = new Set(b.held.map((h) => ownerOfClientPort(h.port, workers)));
  t.same([...slowOwners].sort(), [...workers].sort(), 'both workers have requests in flight');
  primary.child.kill('SIGTERM');
  // The drain closes the port (every worker stopped accepting) while the requests wait.
  const refused = async (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect(port, IP);
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
  let closed = false;
  for (let i = 0; i < 400 && !closed; i++) {
    closed = await refused();
    if (!closed) await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(closed, 'the port is closed once the drain starts');
  t.equal(primary.exited(), false, 'the primary waits for the workers in flight');
  for (const h of b.held) h.release();
  const answers = await Promise.all(slow);
  t.same(
    answers.map((r) => `${r.status} ${r.body}`),
    Array(6).fill('200 B'),
    'every request in flight was answered',
  );
  const [code] = await primary.exit;
  t.equal(code, 0, 'the primary exits 0 after the drain');
  t.ok(await eventually(() => workers.every((w) => !alive(w)), 5_000), 'no worker is left');
});
