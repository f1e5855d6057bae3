// Where the Kubernetes API is for every watch that is not a namer (pods, Ingresses, namerd's dtabs,
// the own node): the one a watch's config names, else the first io.l5d.k8s namer's, else in-cluster
// or kubeconfig. Its own file: the namers (namers.ts) and this node (node.ts) both need it.

import type { HostmeshConfig } from '../config/types.js';

/** Where a Kubernetes API is: the given host/port, else the first io.l5d.k8s namer's, else in-cluster/kubeconfig. */
export function k8sWhere(config: HostmeshConfig, host?: string, port?: number): { host?: string; port?: number } {
  if (host !== undefined || port !== undefined) return { ...(host !== undefined ? { host } : {}), ...(port !== undefined ? { port } : {}) };
  const k8s = config.namers.find((n) => n.kind === 'io.l5d.k8s');
  if (k8s === undefined || k8s.kind !== 'io.l5d.k8s') return {};
  return { ...(k8s.host !== undefined ? { host: k8s.host } : {}), ...(k8s.port !== undefined ? { port: k8s.port } : {}) };
}
