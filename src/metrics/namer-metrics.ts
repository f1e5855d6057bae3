// State kept for request data and the namers' health, read at scrape time: binding caches,
// interpreter lookups, namer names and evictions, Kubernetes watch bounds, pod IP conflicts,
// namer updates and staleness. Nothing here is on the request path.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { NamerStats } from '../namer/addr.js';

/** State kept for request data, read at scrape time: binding caches, lookups, namer names. */
export interface StateReport {
  routers(): Iterable<{ readonly label: string; readonly bindings: number }>;
  interpreter(): { readonly lookups: number; readonly bindings: number };
  namers(): Iterable<NamerStats & { readonly kind: string }>;
  /** The pod directory: times an IP was claimed by two live pods. */
  pods?(): { readonly conflictsSeen: number; readonly conflictedIps: number } | undefined;
}
/** Something with state to report at scrape time (namers). */
export interface NamerReport {
  readonly kind: string;
  readonly updates: number;
  readonly stale: boolean;
}

export class NamerMetrics {
  readonly #namers: NamerReport[] = [];
  #state: StateReport | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const state = (): StateReport | undefined => this.#state;
    new Gauge({
      name: 'hostmesh_binding_cache_size',
      help: 'Bindings cached by each router (its own dtab and request overrides).',
      labelNames: ['router'],
      registers,
      collect() {
        for (const r of state()?.routers() ?? []) this.labels(r.label).set(r.bindings);
      },
    });
    new Gauge({
      name: 'hostmesh_interpreter_lookups',
      help: 'Namer lookups held by live bindings.',
      registers,
      collect() {
        this.set(state()?.interpreter().lookups ?? 0);
      },
    });
    new Gauge({
      name: 'hostmesh_interpreter_bindings',
      help: 'Live bindings (shared by identical dtab and path).',
      registers,
      collect() {
        this.set(state()?.interpreter().bindings ?? 0);
      },
    });
    new Gauge({
      name: 'hostmesh_namer_entries',
      help: 'Names each namer keeps (in use, or idle for less than its idleTtlSecs).',
      labelNames: ['namer'],
      registers,
      collect() {
        for (const n of state()?.namers() ?? []) this.labels(n.kind).set(n.entries);
      },
    });
    new Counter({
      name: 'hostmesh_namer_evictions_total',
      help: 'Names a namer dropped after no binding used them for its idleTtlSecs.',
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) this.labels(n.kind).inc(n.evictions);
      },
    });
    new Gauge({
      name: 'hostmesh_k8s_namespaces_watched',
      help: 'Namespaces a Kubernetes namer watches (2 API watches each; at most its maxNamespaces).',
      labelNames: ['namer'],
      registers,
      collect() {
        for (const n of state()?.namers() ?? []) if (n.namespaces !== undefined) this.labels(n.kind).set(n.namespaces);
      },
    });
    new Counter({
      name: 'hostmesh_k8s_namespaces_refused_total',
      help: "Names refused because their namespace would exceed the namer's maxNamespaces while every watched one is in use.",
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) if (n.refused !== undefined) this.labels(n.kind).inc(n.refused);
      },
    });
    new Counter({
      name: 'hostmesh_k8s_endpoint_addresses_refused_total',
      help: 'Endpoint addresses from the Kubernetes API never delivered to: not a canonical IP literal, loopback, link-local, unspecified, multicast or this node.',
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) if (n.addressesRefused !== undefined) this.labels(n.kind).inc(n.addressesRefused);
      },
    });
    new Counter({
      name: 'hostmesh_pod_ip_conflicts_total',
      help: 'Times two live pods reported the same IP: no identity is given for it until one lets go.',
      registers,
      collect() {
        this.reset();
        this.inc(state()?.pods?.()?.conflictsSeen ?? 0);
      },
    });
    new Counter({
      name: 'hostmesh_k8s_endpoints_capped_total',
      help: "Endpoint set rebuilds that left endpoints out for the namer's maxEndpointsPerService.",
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of state()?.namers() ?? []) if (n.endpointsCapped !== undefined) this.labels(n.kind).inc(n.endpointsCapped);
      },
    });
    const namers = this.#namers;
    new Counter({
      name: 'hostmesh_namer_updates_total',
      help: 'Address set changes published by each namer.',
      labelNames: ['namer'],
      registers,
      collect() {
        this.reset();
        for (const n of namers) this.labels(n.kind).inc(n.updates);
      },
    });
    new Gauge({
      name: 'hostmesh_namer_stale',
      help: '1 while a namer serves its last known state because its source (the Kubernetes API) is away.',
      labelNames: ['namer'],
      registers,
      collect() {
        for (const n of namers) this.labels(n.kind).set(n.stale ? 1 : 0);
      },
    });
  }

  /** Where the state gauges read from (set once by the process). */
  reportState(report: StateReport): void {
    this.#state = report;
  }

  addNamer(n: NamerReport): void {
    this.#namers.push(n);
  }

  /** The namers that report updates (metrics.json's namer/<kind>/updates). */
  get namers(): readonly NamerReport[] {
    return this.#namers;
  }
}
