// The dashboard's service rows (/admin/services.json): the metrics' per-service summary, each row
// joined with the endpoints failure accrual holds dead or probing for the clients its requests used.

import type { Metrics } from '../metrics/metrics.js';
import type { Router } from '../router/router.js';

export interface DeadEndpoint {
  /** The bound id whose balancer skips the endpoint (accrual is per client and endpoint). */
  readonly client: string;
  readonly address: string;
  readonly accrual: 'dead' | 'probing';
}

/**
 * Per service: what metrics.services() says, plus `resilience.deadEndpoints`. The clients of a
 * service are the bound ids its answered requests went to (at most 16 per service, metrics.ts);
 * their endpoints' accrual state comes from the router's clientState(), read now: the endpoints its balancer
 * chooses among (after the transformers; in the DaemonSet topology the peer routers), as accrual keys them.
 */
export function serviceRows(metrics: Metrics, routers: readonly { label: string; router: Router }[]) {
  const dead = new Map<string, Map<string, DeadEndpoint[]>>();
  for (const { label, router } of routers) {
    const byClient = new Map<string, DeadEndpoint[]>();
    for (const c of router.clientState()) {
      const marked = c.endpoints.flatMap((e) => (e.accrual === 'alive' ? [] : [{ client: c.id, address: e.address, accrual: e.accrual }]));
      if (marked.length > 0) byClient.set(c.id, marked);
    }
    dead.set(label, byClient);
  }
  return metrics.services().map((row) => {
    const clients = metrics.routers.get(row.router)?.requests.services.get(row.service)?.clients.keys() ?? [];
    const byClient = dead.get(row.router);
    const deadEndpoints = [...clients].flatMap((c) => byClient?.get(c) ?? []);
    return { ...row, resilience: { ...row.resilience, deadEndpoints } };
  });
}
