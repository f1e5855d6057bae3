// The incoming router's last word on where a request may go (issue 23): io.l5d.k8s.localnode with
// the pod watch. An address from an EndpointSlice is hostile input: it is delivered to only when
// the pod watch knows it as a pod on THIS node (the slice's nodeName is not trusted), in the bound
// Service's own namespace, and not a hostNetwork pod unless the transformer allows it. Each kept
// endpoint carries the workload that will answer (namespace, pod, service account), so the
// policy decides on that workload, not on the name.

import type { DeliveryRefusal, RouterPartEvents } from '../../events.js';
import { normalizeIp, type PodDirectory, type PodInfo } from '../../../identity/pod-directory.js';
import type { BoundName, Endpoint } from '../../../namer/addr.js';
import type { EndpointTransform } from './transformers.js';

/** Why an endpoint of a Kubernetes name was not delivered to (a metric label: a fixed set). */
export type { DeliveryRefusal };

/** Endpoint meta keys of the workload that answers (set only by the delivery check). */
export const WORKLOAD_NAMESPACE = 'podNamespace';
export const WORKLOAD_POD = 'podName';
export const WORKLOAD_SERVICE_ACCOUNT = 'serviceAccount';

export interface DeliveryOptions {
  /** This node (config nodeName / NODE_NAME). */
  readonly nodeName: string;
  readonly pods: PodDirectory;
  /** Where the k8s namer is mounted under /# (its prefix, e.g. /io.l5d.k8s): the names checked. */
  readonly k8sPrefix: string;
  /**
   * Deliver to hostNetwork pods on this node (localnode's `hostNetworkPods: true`; default false).
   * Their address is the node's, so such an endpoint is delivered to only when exactly one service
   * account of the bound namespace runs hostNetwork pods on this node with that address.
   */
  readonly hostNetworkPods: boolean;
  /** Each endpoint refused, by reason (metrics). */
  readonly events?: Pick<RouterPartEvents, 'deliveryRefused'>;
}

/** The namespace of a Kubernetes bound name (/#/<prefix>/<ns>/<port>/<svc>), else undefined. */
export function namespaceOfName(id: string, k8sPrefix: string): string | undefined {
  const head = `/#${k8sPrefix}/`;
  if (!id.startsWith(head)) return undefined;
  const ns = id.slice(head.length).split('/')[0];
  return ns === undefined || ns === '' ? undefined : ns;
}

/**
 * Each endpoint with its workload, made once per endpoint and pod rather than per request (issue
 * 28): both are immutable (the namer and the pod watch replace them on change), so the copy is
 * reused while the pod watch names the same pod for the address, and made anew once it does not.
 */
const withPod = new WeakMap<Endpoint, { readonly pod: PodInfo; readonly endpoint: Endpoint }>();

function withWorkload(e: Endpoint, pod: PodInfo): Endpoint {
  const kept = withPod.get(e);
  if (kept !== undefined && kept.pod === pod) return kept.endpoint;
  const endpoint = {
    ...e,
    meta: { ...e.meta, nodeName: pod.nodeName, [WORKLOAD_NAMESPACE]: pod.namespace, [WORKLOAD_POD]: pod.name, [WORKLOAD_SERVICE_ACCOUNT]: pod.serviceAccount },
  };
  withPod.set(e, { pod, endpoint });
  return endpoint;
}

/**
 * io.l5d.k8s.localnode checked against the pod watch. Names of the k8s namer: only pods known on
 * this node, in the name's namespace. Other names (io.l5d.fs files, written by the operator): the
 * endpoint's own nodeName, as before.
 */
export function deliveryCheck(o: DeliveryOptions): EndpointTransform {
  // A bound name's namespace, worked out once per name (names are immutable) instead of per request.
  const namespaces = new WeakMap<BoundName, { readonly namespace: string | undefined }>();
  const namespaceOf = (name: BoundName): string | undefined => {
    let n = namespaces.get(name);
    if (n === undefined) {
      n = { namespace: namespaceOfName(name.id.show(), o.k8sPrefix) };
      namespaces.set(name, n);
    }
    return n.namespace;
  };
  return (endpoints, name?: BoundName) => {
    const namespace = name === undefined ? undefined : namespaceOf(name);
    if (namespace === undefined) {
      const kept = endpoints.filter((e) => e.meta.nodeName === o.nodeName);
      return kept.length > 0 || endpoints.length === 0
        ? { endpoints: kept }
        : { endpoints: kept, why: `none of ${endpoints.length} endpoints is on node ${o.nodeName}` };
    }
    const kept: Endpoint[] = [];
    const refused = new Map<DeliveryRefusal, number>();
    const refuse = (r: DeliveryRefusal): void => {
      refused.set(r, (refused.get(r) ?? 0) + 1);
      o.events?.deliveryRefused(r);
    };
    for (const e of endpoints) {
      const pod = o.pods.byIp(e.host);
      if (pod === undefined) {
        // Not a pod IP: a node's address (where hostNetwork pods live), or nothing known.
        const hosted = o.hostNetworkPods ? hostNetworkPod(o, e.host, namespace) : undefined;
        if (hosted === undefined) refuse('unknown_pod');
        else if (hosted === 'ambiguous') refuse('ambiguous_host_network');
        else kept.push(withWorkload(e, hosted));
        continue;
      }
      if (pod.nodeName !== o.nodeName) refuse('other_node');
      else if (pod.namespace !== namespace) refuse('other_namespace');
      else if (pod.hostNetwork && !o.hostNetworkPods) refuse('host_network');
      else kept.push(withWorkload(e, pod));
    }
    if (kept.length > 0 || endpoints.length === 0) return { endpoints: kept };
    const why = [...refused].map(([r, n]) => `${n} ${REFUSAL_TEXT[r]}`).join(', ');
    return { endpoints: kept, why: `none of ${endpoints.length} endpoints is a pod of namespace ${namespace} on node ${o.nodeName} (${why})` };
  };
}

const REFUSAL_TEXT: Record<DeliveryRefusal, string> = {
  unknown_pod: 'not a known pod address',
  other_node: 'a pod of another node',
  other_namespace: 'a pod of another namespace',
  host_network: 'a hostNetwork pod',
  ambiguous_host_network: 'a node address with hostNetwork pods of more than one service account',
};

/** The hostNetwork pod of `namespace` on this node with address `ip`; 'ambiguous' when service accounts differ. */
function hostNetworkPod(o: DeliveryOptions, ip: string, namespace: string): PodInfo | 'ambiguous' | undefined {
  let found: PodInfo | undefined;
  for (const p of o.pods.hostNetworkPodsOn?.(o.nodeName) ?? []) {
    if (p.namespace !== namespace || !p.ips.includes(normalizeIp(ip))) continue;
    if (found !== undefined && found.serviceAccount !== p.serviceAccount) return 'ambiguous';
    found ??= p;
  }
  return found;
}
