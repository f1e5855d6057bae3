// Who runs where: the cluster's pods reduced to what identity needs (IPs, node, service account),
// indexed by pod IP and by namespace/name, live from one cluster-wide pod watch.

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
  };
}

/** One spelling per address: IPv4-mapped IPv6 (::ffff:10.0.0.1, as Node reports it) as IPv4, lowercase. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** The indexes, kept apart from the watch so a static list (the demo) can feed them too. */
export class PodIndex implements PodDirectory {
  readonly #byIp = new Map<string, PodInfo>();
  readonly #byName = new Map<string, PodInfo>();
  readonly #listeners = new Set<() => void>();
  #synced = false;

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
    this.#remove(pod.namespace, pod.name);
    this.#byName.set(`${pod.namespace}/${pod.name}`, pod);
    // A hostNetwork pod's IP is the node's: it must not claim the node's address as its own.
    if (!pod.hostNetwork) for (const ip of pod.ips) this.#byIp.set(ip, pod);
    this.#changed();
  }

  delete(namespace: string, name: string): void {
    if (this.#remove(namespace, name)) this.#changed();
  }

  #remove(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    const old = this.#byName.get(key);
    if (old === undefined) return false;
    this.#byName.delete(key);
    // Only drop an IP still pointing at this pod: a new pod may already have taken it over.
    for (const ip of old.ips) if (this.#byIp.get(ip) === old) this.#byIp.delete(ip);
    return true;
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
    super();
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
