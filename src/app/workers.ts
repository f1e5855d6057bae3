// `workers: N` (docs/cores.md): with N > 1, `hostmesh run` is a node:cluster primary that forks N
// router workers. Every worker runs the whole mesh startHostmesh builds (its own Kubernetes
// watches, node certificate, policy, dtab and certificate file watchers, limits and metrics) and
// listens on the routers' ports; the primary holds those sockets and hands each new connection to
// a worker, round-robin. Only worker 0 opens the admin port. The primary serves no request: it
// starts a worker again when one exits (with backoff), passes SIGTERM/SIGINT and the admin's
// shutdown to every worker and exits once all have drained, and sums the workers' metrics for
// worker 0's /metrics.

import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import type { HostmeshConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log.js';
import { aggregateMetrics, PROMETHEUS_CONTENT_TYPE, type RegistryJson, WorkerMetrics } from '../metrics/cluster-metrics.js';
import type { Hostmesh } from './hostmesh.js';

/** The environment variable that tells a forked worker its slot (0 opens the admin port). */
export const WORKER_SLOT_ENV = 'HOSTMESH_WORKER_SLOT';

/** The most workers `auto` or the config asks for. */
export const MAX_WORKERS = 64;

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function quotaCpus(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined; // -1: no quota (cgroup v1)
  return Math.max(1, Math.floor(q / p));
}

/**
 * The whole CPUs the cgroup's CPU quota allows (cgroup v2 `cpu.max`, else v1's CFS quota and
 * period), rounded down and at least 1; undefined when there is no quota. A fractional quota
 * rounds down: a second worker on half a CPU would only be throttled.
 */
export function cgroupCpus(read: (path: string) => string | undefined = readOptional): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.trim().split(/\s+/);
    return quotaCpus(quota, period);
  }
  return quotaCpus(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim(), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
}

/** How many router processes `workers` means: 1 when absent; `auto`: the cgroup's quota, else the CPUs this process may run on. */
export function workerCount(
  setting: number | 'auto' | undefined,
  cpus: { quota: () => number | undefined; parallelism: () => number } = { quota: () => cgroupCpus(), parallelism: availableParallelism },
): number {
  if (setting === undefined) return 1;
  if (setting !== 'auto') return setting;
  const parallelism = Math.max(1, cpus.parallelism());
  const quota = cpus.quota();
  return Math.min(MAX_WORKERS, quota === undefined ? parallelism : Math.min(quota, parallelism));
}

/** What `workers: N` changes that an operator must know (logged once by the primary). */
export function workerWarnings(config: Pick<HostmeshConfig, 'telemetry' | 'identity' | 'routers'>, count: number): string[] {
  const out = [
    `workers: ${count}: every limit of a router (connections, per-source connections, admission, pools, caches) applies in each worker, so the node admits up to ${count} times each; /metrics sums the workers, while /admin/metrics.json, the dashboard and /client_state.json show worker 0 only (docs/cores.md)`,
  ];
  if (config.telemetry?.prometheus !== undefined)
    out.push(
      `workers: ${count}: the io.l5d.prometheus telemetry names (${config.telemetry.prometheus.path}) count worker 0 only; hostmesh_* at /metrics count every worker`,
    );
  for (const r of config.routers)
    if (r.accessLog !== undefined && !r.accessLog.path.startsWith('/dev/'))
      out.push(
        `workers: ${count}: router ${r.label}'s httpAccessLog: worker 0 writes ${r.accessLog.path}, worker k writes ${workerAccessLogPath(r.accessLog.path, 1).replace('-worker1', '-worker<k>')}`,
      );
  if (config.identity?.issuer !== undefined) out.push(`workers: ${count}: each worker requests its own node certificate (${count} requests per renewal)`);
  return out;
}

/**
 * The path of a router's httpAccessLog in worker `slot`: worker 0 writes the configured file, each
 * other worker its own beside it (`access.log` -> `access-worker1.log`), so every file has one
 * writer and rolls, truncates and prunes as with one process. Device paths (/dev/stdout) stay
 * shared.
 */
export function workerAccessLogPath(path: string, slot: number): string {
  if (slot === 0 || path.startsWith('/dev/')) return path;
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}-worker${slot}${ext}`;
}

/** The config as worker `slot` runs it (its own access log files). */
export function workerConfig(config: HostmeshConfig, slot: number): HostmeshConfig {
  return {
    ...config,
    routers: config.routers.map((r) =>
      r.accessLog === undefined ? r : { ...r, accessLog: { ...r.accessLog, path: workerAccessLogPath(r.accessLog.path, slot) } },
    ),
  };
}

/** Primary -> worker. */
type ToWorker = { readonly hostmesh: 'collect'; readonly id: number } | { readonly hostmesh: 'metrics'; readonly id: number; readonly text: string };

/** Worker -> primary. */
type FromWorker =
  | { readonly hostmesh: 'ready' }
  | { readonly hostmesh: 'collected'; readonly id: number; readonly metrics: RegistryJson }
  | { readonly hostmesh: 'scrape'; readonly id: number }
  | { readonly hostmesh: 'shutdown' };

function isMessage(m: unknown): m is FromWorker | ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { hostmesh?: unknown }).hostmesh === 'string';
}

/** A forked worker as the supervisor sees it (node:cluster's Worker in production, a fake in tests). */
export interface WorkerProcess {
  readonly pid: number | undefined;
  send(message: ToWorker): void;
  kill(signal: NodeJS.Signals): void;
  onMessage(fn: (message: unknown) => void): void;
  onExit(fn: (code: number | null, signal: string | null) => void): void;
}

export interface SupervisorOptions {
  readonly count: number;
  fork(slot: number): WorkerProcess;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The first restart's delay; each further exit of the same slot doubles it up to restartMaxMs. */
  readonly restartMinMs?: number;
  readonly restartMaxMs?: number;
  /** A worker that served this long before it exited restarts after restartMinMs again. */
  readonly stableMs?: number;
  /** How long a scrape waits for each worker's metrics (a worker that does not answer is left out). */
  readonly collectTimeoutMs?: number;
  /** Every worker has exited after stop() (0), or no worker ever started (1). */
  onExit(code: number): void;
}

interface Slot {
  readonly index: number;
  worker: WorkerProcess | undefined;
  ready: boolean;
  failures: number;
  startedAt: number;
  cancelRestart: (() => void) | undefined;
}

interface Collection {
  waiting: number;
  readonly parts: RegistryJson[];
  finish(): void;
}

/** The primary's part: N worker slots, each kept filled. */
export class WorkerSupervisor {
  readonly metrics: WorkerMetrics;
  readonly #o: SupervisorOptions;
  readonly #slots: Slot[];
  readonly #collections = new Map<number, Collection>();
  #nextId = 0;
  #stopping = false;
  #everReady = false;
  #exitCode = 0;
  #exited = false;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.metrics = new WorkerMetrics(options.count);
    this.#slots = Array.from({ length: options.count }, (_, index) => ({
      index,
      worker: undefined,
      ready: false,
      failures: 0,
      startedAt: 0,
      cancelRestart: undefined,
    }));
  }

  start(): void {
    for (const slot of this.#slots) this.#spawn(slot);
  }

  /** The running workers' process ids, by slot (undefined: the slot waits for its restart). */
  get pids(): (number | undefined)[] {
    return this.#slots.map((s) => s.worker?.pid);
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Drains every worker (each gets SIGTERM and runs its own drain); no more restarts. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const slot of this.#slots) {
      slot.cancelRestart?.();
      slot.cancelRestart = undefined;
      slot.worker?.kill('SIGTERM');
    }
    this.#exitIfDone();
  }

  /** The workers' metrics and the supervisor's own, summed (what worker 0 serves at /metrics). */
  collect(): Promise<string> {
    const id = this.#nextId++;
    const ready = this.#slots.filter((s) => s.ready && s.worker !== undefined);
    return new Promise((resolve) => {
      const parts: RegistryJson[] = [];
      let cancel = (): void => undefined;
      const finish = (): void => {
        if (!this.#collections.delete(id)) return;
        cancel();
        void this.metrics.registry
          .getMetricsAsJSON()
          .then((own) => aggregateMetrics([...parts, own]))
          .then(resolve);
      };
      this.#collections.set(id, { waiting: ready.length, parts, finish });
      cancel = this.#o.clock.schedule(this.#o.collectTimeoutMs ?? 2_000, finish);
      for (const slot of ready) slot.worker?.send({ hostmesh: 'collect', id });
      if (ready.length === 0) finish();
    });
  }

  #spawn(slot: Slot): void {
    const worker = this.#o.fork(slot.index);
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = this.#o.clock.now();
    worker.onMessage((m) => this.#onMessage(slot, worker, m));
    worker.onExit((code, signal) => this.#onExit(slot, worker, code, signal));
  }

  #onMessage(slot: Slot, worker: WorkerProcess, m: unknown): void {
    if (!isMessage(m) || slot.worker !== worker) return;
    switch (m.hostmesh) {
      case 'ready':
        if (slot.ready) return;
        slot.ready = true;
        this.#everReady = true;
        this.metrics.running.inc();
        this.#o.logger.info({ worker: slot.index, pid: worker.pid }, 'router worker serving');
        return;
      case 'collected': {
        const c = this.#collections.get(m.id);
        if (c === undefined) return;
        c.parts.push(m.metrics);
        if (--c.waiting === 0) c.finish();
        return;
      }
      case 'scrape':
        void this.collect().then((text) => {
          if (slot.worker === worker) worker.send({ hostmesh: 'metrics', id: m.id, text });
        });
        return;
      case 'shutdown':
        this.#o.logger.info({ worker: slot.index }, 'admin shutdown: draining every worker');
        this.stop();
        return;
      default:
        return;
    }
  }

  #onExit(slot: Slot, worker: WorkerProcess, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    if (slot.ready) this.metrics.running.dec();
    slot.ready = false;
    if (this.#stopping) return this.#exitIfDone();
    if (!this.#everReady) {
      // No worker ever served: a config, port or certificate problem every restart would repeat.
      this.#o.logger.error({ worker: slot.index, code, signal }, 'router worker could not start; stopping');
      this.#exitCode = 1;
      return this.stop();
    }
    if (this.#o.clock.now() - slot.startedAt >= (this.#o.stableMs ?? 30_000)) slot.failures = 0;
    const delay = Math.min(this.#o.restartMaxMs ?? 10_000, (this.#o.restartMinMs ?? 100) * 2 ** slot.failures);
    slot.failures++;
    this.metrics.restarts.inc();
    this.#o.logger.error({ worker: slot.index, pid: worker.pid, code, signal, restartInMs: delay }, 'router worker exited; starting it again');
    slot.cancelRestart = this.#o.clock.schedule(delay, () => {
      slot.cancelRestart = undefined;
      if (!this.#stopping) this.#spawn(slot);
    });
  }

  #exitIfDone(): void {
    if (this.#exited || this.#slots.some((s) => s.worker !== undefined)) return;
    this.#exited = true;
    this.#o.onExit(this.#exitCode);
  }
}

function clusterWorker(w: Worker): WorkerProcess {
  return {
    pid: w.process.pid,
    send: (m) => {
      if (w.isConnected()) w.send(m);
    },
    kill: (signal) => w.process.kill(signal),
    onMessage: (fn) => void w.on('message', fn),
    onExit: (fn) => void w.once('exit', fn),
  };
}

/**
 * `hostmesh run` as the primary of `count` workers (each re-runs the same command line as a
 * cluster worker). SIGTERM and SIGINT drain every worker; the process exits when all have.
 */
export function runPrimary(count: number, clock: Clock, logger: Logger): WorkerSupervisor {
  // The clock's timers do not hold the process open; while a slot waits for its restart, this does.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const supervisor = new WorkerSupervisor({
    count,
    clock,
    logger,
    fork: (slot) => clusterWorker(cluster.fork({ [WORKER_SLOT_ENV]: String(slot) })),
    onExit: (code) => {
      clearInterval(keepAlive);
      logger.info({ code }, 'every router worker has exited');
      process.exit(code);
    },
  });
  const stop = (signal: string): void => {
    logger.info({ signal }, 'draining every router worker');
    supervisor.stop();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  logger.info({ workers: count }, 'starting router workers');
  supervisor.start();
  return supervisor;
}

/** This process's worker slot when it is a `workers: N` worker, else undefined. */
export function workerSlot(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!cluster.isWorker) return undefined;
  const slot = Number(env[WORKER_SLOT_ENV]);
  return Number.isInteger(slot) && slot >= 0 ? slot : undefined;
}

/** What a worker asks of the primary: the admin's shutdown drains every worker, not one. */
export function askPrimaryToShutdown(): Promise<void> {
  process.send?.({ hostmesh: 'shutdown' } satisfies FromWorker);
  return Promise.resolve();
}

/**
 * Joins a started worker's mesh to the primary: answers the primary's metric collections with its
 * registry, and in worker 0 serves the summed metrics at /metrics (and at
 * /admin/metrics/prometheus unless Linkerd 1's telemetry owns that path, whose names stay this
 * worker's own). Then tells the primary it serves.
 */
export function joinPrimary(mesh: Hostmesh, slot: number, clock: Clock): void {
  const waiting = new Map<number, (text: string | undefined) => void>();
  let nextId = 0;
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.hostmesh === 'collect') {
      const id = m.id;
      void mesh.metrics.registry.getMetricsAsJSON().then((metrics) => process.send?.({ hostmesh: 'collected', id, metrics } satisfies FromWorker));
    } else if (m.hostmesh === 'metrics') {
      waiting.get(m.id)?.(m.text);
    }
  });
  if (slot === 0) {
    const summed = async (_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
      const id = nextId++;
      const text = await new Promise<string | undefined>((resolve) => {
        const cancel = clock.schedule(10_000, () => resolve(undefined));
        waiting.set(id, (t) => {
          cancel();
          resolve(t);
        });
        process.send?.({ hostmesh: 'scrape', id } satisfies FromWorker);
      });
      waiting.delete(id);
      const body = text ?? 'the primary did not answer with the workers metrics\n';
      res.writeHead(text === undefined ? 503 : 200, {
        'content-type': text === undefined ? 'text/plain; charset=utf-8' : PROMETHEUS_CONTENT_TYPE,
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    };
    mesh.admin.route('/metrics', summed);
    if (mesh.config.telemetry?.prometheus === undefined) mesh.admin.route('/admin/metrics/prometheus', summed);
  }
  process.send?.({ hostmesh: 'ready' } satisfies FromWorker);
}
