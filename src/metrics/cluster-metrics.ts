// `workers: N` (docs/cores.md): the router workers' metrics summed into one scrape. Each worker
// hands its registry as JSON to the primary, which merges them with its own (the supervisor's
// families below) using prom-client's AggregatorRegistry: counters, gauges and histograms summed
// per label set; Node's version info kept once.

import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

/** One registry's metrics as JSON (what crosses the IPC channel). */
export type RegistryJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** One Prometheus text of the registries' metrics, same-named series summed. */
export async function aggregateMetrics(parts: readonly RegistryJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts as RegistryJson[]).metrics();
}

/** The supervisor's own families, in the primary's registry. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly running: Gauge;
  readonly restarts: Counter;

  constructor(configured: number) {
    new Gauge({ name: 'hostmesh_workers_configured', help: 'Router worker processes this node runs (config workers).', registers: [this.registry] }).set(
      configured,
    );
    this.running = new Gauge({ name: 'hostmesh_workers_running', help: 'Router worker processes started and serving.', registers: [this.registry] });
    this.restarts = new Counter({
      name: 'hostmesh_worker_restarts_total',
      help: 'Router workers that exited without being asked and were started again.',
      registers: [this.registry],
    });
  }
}
