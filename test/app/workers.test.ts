// The `workers` key (docs/cores.md): the count `auto` resolves to (cgroup quota, CPUs), its
// validation with file:line:col, and the primary's supervisor on the injected clock: restarts with
// backoff, a start that never serves, the drain of every worker, and the summed metrics.

import fc from 'fast-check';
import t from 'tap';
import { checkNotes } from '../../src/cli/check-notes.js';
import { parseConfig } from '../../src/config/load.js';
import { cgroupCpus, WorkerSupervisor, workerAccessLogPath, workerConfig, workerCount, workerWarnings, type WorkerProcess } from '../../src/app/workers.js';
import type { RegistryJson } from '../../src/metrics/cluster-metrics.js';
import { silentLogger } from '../../src/log.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const ROUTER = 'routers:\n- protocol: http\n  servers:\n  - port: 4140\n';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'c.yaml');
    return [];
  } catch (err) {
    return [...((err as { problems?: string[] }).problems ?? [String(err)])];
  }
}

t.test('workers: 1..64 or auto; anything else is refused at its line and column', async (t) => {
  t.equal(parseConfig(ROUTER, 'c.yaml').config.workers, undefined, 'absent: one process');
  t.equal(parseConfig(`${ROUTER}workers: 2\n`, 'c.yaml').config.workers, 2);
  t.equal(parseConfig(`${ROUTER}workers: auto\n`, 'c.yaml').config.workers, 'auto');
  t.equal(parseConfig(`${ROUTER}workers:\n`, 'c.yaml').config.workers, undefined, 'empty: absent, as every empty key that weakens nothing');
  for (const bad of ['0', '65', '1.5', '-2', 'two', 'true', '"2"', '[2]']) {
    t.same(problems(`${ROUTER}workers: ${bad}\n`), [`c.yaml:5:10: workers: an integer from 1 to 64, or 'auto'`], `workers: ${bad}`);
  }
});

t.test('auto: the cgroup quota in whole CPUs, never above the CPUs this process may use', async (t) => {
  const files = (m: Record<string, string>) => (path: string) => m[path];
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined, 'v2 without a quota');
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '200000 100000\n' })), 2, 'v2: 2 CPUs');
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })), 1, 'v2: 1.5 CPUs round down');
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' })), 1, 'v2: half a CPU is still one worker');
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu.max': 'garbage\n' })), undefined, 'unreadable: no quota');
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '400000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' })), 4, 'v1');
  t.equal(cgroupCpus(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' })), undefined, 'v1: -1');
  t.equal(cgroupCpus(files({})), undefined, 'no cgroup files');
  t.equal(workerCount(undefined), 1, 'absent: 1');
  t.equal(workerCount(3), 3, 'a number is taken as it is');
  t.equal(workerCount('auto', { quota: () => 2, parallelism: () => 8 }), 2, 'quota below the CPUs');
  t.equal(workerCount('auto', { quota: () => 16, parallelism: () => 4 }), 4, 'CPUs below the quota');
  t.equal(workerCount('auto', { quota: () => undefined, parallelism: () => 6 }), 6, 'no quota: the CPUs');
  fc.assert(
    fc.property(fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }), fc.integer({ min: 0, max: 1_000 }), (quota, cpus) => {
      const n = workerCount('auto', { quota: () => quota, parallelism: () => cpus });
      return Number.isInteger(n) && n >= 1 && n <= 64 && n <= Math.max(1, cpus) && (quota === undefined || n <= quota);
    }),
  );
  fc.assert(
    fc.property(fc.string(), (text) => {
      const n = cgroupCpus(() => text);
      return n === undefined || (Number.isInteger(n) && n >= 1);
    }),
  );
});

t.test('the primary says what workers change: limits per worker, pages of worker 0, one certificate request per worker', async (t) => {
  const plain = workerWarnings(parseConfig(`${ROUTER}workers: 2\n`, 'c.yaml').config, 2);
  t.equal(plain.length, 1);
  t.match(plain[0], /applies in each worker, so the node admits up to 2 times each/);
  const linkerd = parseConfig(`${ROUTER}workers: 3\ntelemetry:\n- kind: io.l5d.prometheus\n`, 'c.yaml').config;
  t.match(workerWarnings(linkerd, 3)[1], /io\.l5d\.prometheus telemetry names \(\/admin\/metrics\/prometheus\) count worker 0 only/);
});

t.test('httpAccessLog: one writer per file (worker 0 the configured one, worker k its own beside it), devices shared', async (t) => {
  t.equal(workerAccessLogPath('/var/log/l5d/access.log', 0), '/var/log/l5d/access.log');
  t.equal(workerAccessLogPath('/var/log/l5d/access.log', 2), '/var/log/l5d/access-worker2.log');
  t.equal(workerAccessLogPath('/var/log/access', 1), '/var/log/access-worker1');
  t.equal(workerAccessLogPath('/dev/stdout', 3), '/dev/stdout');
  const text = `${ROUTER}  httpAccessLog: /tmp/logs/out.log\nworkers: 2\n`;
  const config = parseConfig(text, '/etc/c.yaml').config;
  t.equal(workerConfig(config, 1).routers[0]?.accessLog?.path, '/tmp/logs/out-worker1.log', 'worker 1 runs its own file');
  t.equal(workerConfig(config, 0).routers[0]?.accessLog?.path, '/tmp/logs/out.log');
  t.equal(config.routers[0]?.accessLog?.path, '/tmp/logs/out.log', 'the loaded config is not changed');
  t.match(workerWarnings(config, 2).join('\n'), /httpAccessLog: worker 0 writes \/tmp\/logs\/out\.log, worker k writes \/tmp\/logs\/out-worker<k>\.log/);
});

t.test('run --check names the worker count', async (t) => {
  const notes = checkNotes(parseConfig(`${ROUTER}workers: 4\n`, 'c.yaml').config, [], {});
  t.ok(notes.includes('workers: 4 router processes; every router limit applies per worker (docs/cores.md)'), notes.join('\n'));
  const auto = checkNotes(parseConfig(`${ROUTER}workers: auto\n`, 'c.yaml').config, [], {});
  t.match(auto.join('\n'), /workers: \d+ router processes \(auto, on this machine\)/);
  t.notMatch(checkNotes(parseConfig(ROUTER, 'c.yaml').config, [], {}).join('\n'), /workers/, 'nothing when absent');
});

/** A fake worker the test drives: messages in both directions, an exit when it is told. */
class FakeWorker implements WorkerProcess {
  static next = 100;
  readonly pid = FakeWorker.next++;
  readonly sent: unknown[] = [];
  readonly signals: string[] = [];
  #message: ((m: unknown) => void) | undefined;
  #exit: ((code: number | null, signal: string | null) => void) | undefined;
  send(m: unknown): void {
    this.sent.push(m);
  }
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
  }
  onMessage(fn: (m: unknown) => void): void {
    this.#message = fn;
  }
  onExit(fn: (code: number | null, signal: string | null) => void): void {
    this.#exit = fn;
  }
  say(m: unknown): void {
    this.#message?.(m);
  }
  exit(code: number | null, signal: string | null = null): void {
    this.#exit?.(code, signal);
  }
}

function supervise(count: number, options: { stableMs?: number } = {}) {
  const clock = new ManualClock();
  const forks: { slot: number; worker: FakeWorker }[] = [];
  const exits: number[] = [];
  const supervisor = new WorkerSupervisor({
    count,
    clock,
    logger: silentLogger(),
    restartMinMs: 100,
    restartMaxMs: 1_000,
    ...options,
    fork: (slot) => {
      const worker = new FakeWorker();
      forks.push({ slot, worker });
      return worker;
    },
    onExit: (code) => exits.push(code),
  });
  supervisor.start();
  const live = (slot: number): FakeWorker => {
    const f = forks.filter((f) => f.slot === slot).at(-1);
    if (f === undefined) throw new Error(`no worker in slot ${slot}`);
    return f.worker;
  };
  return { clock, forks, exits, supervisor, live };
}

t.test('a worker that exits is started again, with a backoff that doubles and resets after a stable run', async (t) => {
  const { clock, forks, supervisor, live } = supervise(2);
  t.equal(forks.length, 2, 'one fork per slot');
  live(0).say({ hostmesh: 'ready' });
  live(1).say({ hostmesh: 'ready' });
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const before = forks.length;
    live(1).exit(null, 'SIGKILL');
    t.equal(supervisor.pids[1], undefined, 'the slot waits');
    t.equal(supervisor.pids[0], live(0).pid, 'the other worker is untouched');
    let waited = 0;
    while (forks.length === before) {
      await clock.advance(10);
      waited += 10;
    }
    delays.push(waited);
    t.equal(forks.at(-1)?.slot, 1, 'the same slot is filled again');
  }
  t.same(delays, [100, 200, 400, 800, 1_000, 1_000], 'doubling up to restartMaxMs');
  // Serving longer than stableMs (30 s by default) earns the shortest delay again.
  await clock.advance(30_000);
  const before = forks.length;
  live(1).exit(1);
  await clock.advance(99);
  t.equal(forks.length, before, 'not before 100 ms');
  await clock.advance(1);
  t.equal(forks.length, before + 1, 'restarted after 100 ms');
  const collected = supervisor.collect(); // worker 0 does not answer here: the scrape waits its 2 s
  await clock.advance(2_000);
  const scrape = parsePrometheus(await collected);
  t.equal(scrape.find((s) => s.name === 'hostmesh_worker_restarts_total')?.value, 7, 'restarts counted');
});

t.test('no worker ever served: the primary stops and exits 1 instead of restarting forever', async (t) => {
  const { clock, forks, exits, live } = supervise(2);
  live(0).exit(1);
  t.same(live(1).signals, ['SIGTERM'], 'the other worker is told to stop');
  t.same(exits, [], 'not before it has exited');
  live(1).exit(0);
  t.same(exits, [1], 'exit code 1');
  await clock.advance(60_000);
  t.equal(forks.length, 2, 'nothing restarted');
});

t.test('stop (SIGTERM, admin shutdown): every worker drains, no restart, exit 0 once all are gone', async (t) => {
  const { clock, forks, exits, live, supervisor } = supervise(3);
  for (const slot of [0, 1, 2]) live(slot).say({ hostmesh: 'ready' });
  live(2).exit(null, 'SIGSEGV');
  // Worker 0's admin page asked for the shutdown.
  live(0).say({ hostmesh: 'shutdown' });
  t.ok(supervisor.stopping);
  t.same(
    [0, 1].map((s) => live(s).signals),
    [['SIGTERM'], ['SIGTERM']],
    'each running worker gets SIGTERM once',
  );
  await clock.advance(60_000);
  t.equal(forks.length, 3, 'the pending restart was cancelled');
  live(0).exit(0);
  t.same(exits, [], 'waits for the last worker');
  live(1).exit(0);
  t.same(exits, [0], 'exit 0');
  supervisor.stop();
  t.same(exits, [0], 'once');
});

t.test('collect sums the ready workers, leaves out one that does not answer, and answers the worker that scraped', async (t) => {
  const { clock, live } = supervise(3);
  for (const slot of [0, 1, 2]) live(slot).say({ hostmesh: 'ready' });
  const counter = (value: number): RegistryJson =>
    [
      { name: 'hostmesh_requests_total', help: 'requests', type: 'counter', aggregator: 'sum', values: [{ value, labels: { router: 'out' } }] },
    ] as unknown as RegistryJson;
  live(0).say({ hostmesh: 'scrape', id: 7 });
  const ask = (slot: number) => live(slot).sent.find((m) => (m as { hostmesh: string }).hostmesh === 'collect') as { id: number };
  live(0).say({ hostmesh: 'collected', id: ask(0).id, metrics: counter(5) });
  live(1).say({ hostmesh: 'collected', id: ask(1).id, metrics: counter(7) });
  t.equal(live(0).sent.length, 1, 'waits for the third worker');
  await clock.advance(2_000); // worker 2 never answers
  await new Promise((r) => setImmediate(r));
  const answer = live(0).sent.at(-1) as { hostmesh: string; id: number; text: string };
  t.equal(answer.hostmesh, 'metrics');
  t.equal(answer.id, 7, 'the scrape id comes back');
  const samples = parsePrometheus(answer.text);
  t.equal(samples.find((s) => s.name === 'hostmesh_requests_total')?.value, 12, 'summed over the workers that answered');
  t.equal(samples.find((s) => s.name === 'hostmesh_workers_running')?.value, 3);
  t.equal(samples.find((s) => s.name === 'hostmesh_workers_configured')?.value, 3);
  // A late answer is dropped.
  live(2).say({ hostmesh: 'collected', id: ask(2).id, metrics: counter(100) });
  t.equal(live(0).sent.length, 2, 'nothing more sent');
});
