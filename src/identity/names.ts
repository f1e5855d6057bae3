// Workload and node identities as hostmesh writes them (design.md): a workload is
// `<serviceaccount>.<namespace>.serviceaccount.identity.hostmesh.<trust domain>`, a node is
// `spiffe://<mesh>/node/<node>`. Parsing them lets a policy match callers by namespace and account.

const WORKLOAD_MARK = '.serviceaccount.identity.hostmesh.';
const NODE_MARK = '/node/';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export function workloadIdentity(serviceAccount: string, namespace: string, trustDomain = DEFAULT_TRUST_DOMAIN): string {
  return `${serviceAccount}.${namespace}${WORKLOAD_MARK}${trustDomain}`;
}

/**
 * The namespace and service account an identity names, when it is a workload identity of
 * `trustDomain`. A namespace is a DNS label (no dots) while a service account may contain dots, so
 * the last dot before the marker separates them. Another trust domain's identity names no
 * namespace of ours: undefined.
 */
export function parseWorkloadIdentity(identity: string, trustDomain = DEFAULT_TRUST_DOMAIN): { serviceAccount: string; namespace: string } | undefined {
  const tail = WORKLOAD_MARK + trustDomain;
  if (!identity.endsWith(tail)) return undefined;
  const head = identity.slice(0, identity.length - tail.length);
  const dot = head.lastIndexOf('.');
  if (dot <= 0 || dot === head.length - 1) return undefined;
  return { serviceAccount: head.slice(0, dot), namespace: head.slice(dot + 1) };
}

/** The node name of a node identity (`spiffe://<mesh>/node/<node>`), else undefined. */
export function parseNodeIdentity(identity: string): string | undefined {
  if (!identity.startsWith('spiffe://')) return undefined;
  const at = identity.indexOf(NODE_MARK, 'spiffe://'.length);
  if (at === -1) return undefined;
  const node = identity.slice(at + NODE_MARK.length);
  // The mesh part is one segment; the node name is a DNS name with no further '/'.
  if (node === '' || node.includes('/') || identity.slice('spiffe://'.length, at).includes('/')) return undefined;
  return node;
}
