// Who runs where: the cluster's pods reduced to what identity needs (IPs, node, service account),
// indexed by pod IP and by namespace/name, live from one cluster-wide pod watch.
// Who owns an IP is a function of the pods now, never of the order their events came in: a
// terminating pod (deletionTimestamp set) never wins an IP over a live one, and two live pods
// reporting one IP make it unknown (no identity) until one lets go: a tenant that keeps a deleted
// pod alive with a finalizer cannot take back an IP reused by another tenant's new pod.

import type { Logger } from '../log.js';
import type { K8sClient, KObject } from '../k8s/client.js';
import { Informer, type InformerEvent } from '../k8s/informer.js';
import { PODS } from '../k8s/resources.js';
import type { BackoffOptions } from '../k8s/backoff.js';

/** A pod as identity sees it. */
export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly nodeName: string;
  readonly serviceAccount: string;
  /** All pod IPs (status.podIPs: IPv4 and IPv6), empty until the CNI assigned them. */
  readonly ips: readonly string[];
  /** hostNetwork pods share the node's addresses: they speak with the node's identity. */
  readonly hostNetwork: boolean;
  /** metadata.deletionTimestamp is set: the pod is going away and yields its IPs to live pods. */
  readonly terminating?: boolean;
}

/** What the outgoing guard and the identity check ask of the cluster. */
export interface PodDirectory {
  /** The pod that owns `ip` now (never a hostNetwork pod: their IP is the node's). */
  byIp(ip: string): PodInfo | undefined;
  byName(namespace: string, name: string): PodInfo | undefined;
  /** Whether the first list has arrived (before that, unknown IPs may just be unknown yet). */
  readonly synced: boolean;
  /** Called after every change, so a caller waiting for a new pod's IP can look again. */
  onChange(listener: () => void): () => void;
  readonly size: number;
  /** hostNetwork pods on `nodeName` (not in byIp: their address is the node's); a scan, for the opt-in delivery to them. */
  hostNetworkPodsOn?(nodeName: string): Iterable<PodInfo>;
}

/** The projected pod object the informer keeps (a few hundred bytes instead of several KB). */
interface PodObject extends KObject {
  readonly info: PodInfo;
}

const FINISHED = new Set(['Succeeded', 'Failed']);

/** Reduces an API pod to PodInfo; pods that ended hold no IP any more (it may be reused). */
export function podInfo(raw: KObject): PodInfo {
  const spec = (raw['spec'] ?? {}) as { nodeName?: unknown; serviceAccountName?: unknown; hostNetwork?: unknown };
  const status = (raw['status'] ?? {}) as { phase?: unknown; podIP?: unknown; podIPs?: unknown };
  const ips = new Set<string>();
  const finished = typeof status.phase === 'string' && FINISHED.has(status.phase);
  if (!finished) {
    if (typeof status.podIP === 'string' && status.podIP !== '') ips.add(normalizeIp(status.podIP));
    if (Array.isArray(status.podIPs)) {
      for (const p of status.podIPs as { ip?: unknown }[]) if (typeof p?.ip === 'string' && p.ip !== '') ips.add(normalizeIp(p.ip));
    }
  }
  return {
    namespace: raw.metadata.namespace ?? 'default',
    name: raw.metadata.name,
    uid: raw.metadata.uid ?? '',
    nodeName: typeof spec.nodeName === 'string' ? spec.nodeName : '',
    serviceAccount: typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default',
    ips: [...ips],
    hostNetwork: spec.hostNetwork === true,
    ...(typeof raw.metadata['deletionTimestamp'] === 'string' && raw.metadata['deletionTimestamp'] !== '' ? { terminating: true } : {}),
  };
}

/** One spelling per address: IPv4-mapped IPv6 (::ffff:10.0.0.1, as Node reports it) as IPv4, lowercase. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** The indexes, kept apart from the watch so a static list (the demo) can feed them too. */
export class PodIndex implements PodDirectory {
  /** The owner of each IP with one (derived from #claims by #decide). */
  readonly #byIp = new Map<string, PodInfo>();
  /** Every pod reporting each IP, by namespace/name. */
  readonly #claims = new Map<string, Map<string, PodInfo>>();
  /** IPs two live pods report now (no identity for them). */
  readonly #conflicts = new Set<string>();
  readonly #byName = new Map<string, PodInfo>();
  readonly #listeners = new Set<() => void>();
  readonly #logger: Logger | undefined;
  #synced = false;
  /** Times an IP became claimed by two live pods (hostmesh_pod_ip_conflicts_total). */
  conflictsSeen = 0;

  constructor(options: { readonly logger?: Logger } = {}) {
    this.#logger = options.logger;
  }

  /** IPs that two live pods report now: no identity is given for them. */
  get conflictedIps(): number {
    return this.#conflicts.size;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get size(): number {
    return this.#byName.size;
  }

  byIp(ip: string): PodInfo | undefined {
    return this.#byIp.get(normalizeIp(ip));
  }

  byName(namespace: string, name: string): PodInfo | undefined {
    return this.#byName.get(`${namespace}/${name}`);
  }

  *hostNetworkPodsOn(nodeName: string): Iterable<PodInfo> {
    for (const p of this.#byName.values()) if (p.hostNetwork && p.nodeName === nodeName) yield p;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    this.#changed();
  }

  upsert(pod: PodInfo): void {
    const key = `${pod.namespace}/${pod.name}`;
    const touched = this.#unclaim(key);
    this.#byName.set(key, pod);
    // A hostNetwork pod's IP is the node's: it must not claim the node's address as its own.
    if (!pod.hostNetwork) {
      for (const ip of pod.ips) {
        let c = this.#claims.get(ip);
        if (c === undefined) {
          c = new Map();
          this.#claims.set(ip, c);
        }
        c.set(key, pod);
        touched.add(ip);
      }
    }
    for (const ip of touched) this.#decide(ip);
    this.#changed();
  }

  delete(namespace: string, name: string): void {
    if (this.#remove(namespace, name)) this.#changed();
  }

  #remove(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    if (!this.#byName.has(key)) return false;
    const touched = this.#unclaim(key);
    this.#byName.delete(key);
    for (const ip of touched) this.#decide(ip);
    return true;
  }

  /** Withdraws a pod's claims; returns the IPs to decide again. */
  #unclaim(key: string): Set<string> {
    const touched = new Set<string>();
    const old = this.#byName.get(key);
    for (const ip of old?.ips ?? []) {
      const c = this.#claims.get(ip);
      if (c?.delete(key) === true) touched.add(ip);
      if (c?.size === 0) this.#claims.delete(ip);
    }
    return touched;
  }

  /**
   * Who owns `ip`, from its claimants alone (so no order of events changes it): the one live pod;
   * none when two live pods claim it; with no live claimant, the one terminating pod (it still
   * runs and calls during its grace period), none when two do.
   */
  #decide(ip: string): void {
    const claims = [...(this.#claims.get(ip)?.values() ?? [])];
    const live = claims.filter((p) => p.terminating !== true);
    const candidates = live.length > 0 ? live : claims;
    const owner = candidates.length === 1 ? candidates[0] : undefined;
    if (owner === undefined) this.#byIp.delete(ip);
    else this.#byIp.set(ip, owner);
    const conflict = candidates.length > 1;
    if (conflict && !this.#conflicts.has(ip)) {
      this.#conflicts.add(ip);
      this.conflictsSeen++;
      this.#logger?.warn(
        { ip, pods: candidates.slice(0, 4).map((p) => `${p.namespace}/${p.name}`) },
        'two pods report the same IP: no identity for it until one lets go',
      );
    } else if (!conflict) this.#conflicts.delete(ip);
  }

  #changed(): void {
    for (const l of [...this.#listeners]) l();
  }
}

export interface WatchedPodsOptions {
  readonly client: K8sClient;
  readonly logger: Logger;
  /** Test hook: the informer's sleep between retries. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly backoff?: BackoffOptions;
}

/**
 * The pod directory from a cluster-wide pod list+watch (RBAC: pods list/watch). Cluster-wide,
 * not `spec.nodeName=<node>`: the incoming router checks claims about pods on other nodes.
 */
export class WatchedPods extends PodIndex {
  readonly #informer: Informer<PodObject>;

  constructor(options: WatchedPodsOptions) {
    super({ logger: options.logger });
    this.#informer = new Informer<PodObject>({
      client: options.client,
      resource: PODS,
      logger: options.logger,
      ...(options.sleep !== undefined ? { sleep: options.sleep } : {}),
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
      project: (raw) => ({
        metadata: {
          name: raw.metadata.name,
          ...(raw.metadata.namespace !== undefined ? { namespace: raw.metadata.namespace } : {}),
          ...(raw.metadata.resourceVersion !== undefined ? { resourceVersion: raw.metadata.resourceVersion } : {}),
        },
        info: podInfo(raw),
      }),
    });
    this.#informer.on((e: InformerEvent<PodObject>) => {
      if (e.type === 'delete') this.delete(e.object.info.namespace, e.object.info.name);
      else this.upsert(e.object.info);
    });
    this.#informer.onState(() => {
      if (this.#informer.synced) this.markSynced();
    });
  }

  start(): this {
    this.#informer.start();
    return this;
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }
}
