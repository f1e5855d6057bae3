// Helpers for Kubernetes tests: objects in the shapes the API returns, and polling.

import type { KObject } from '../fixtures/k8s-api-server.js';

export function service(namespace: string, name: string, ports: { name: string; port: number }[] = [{ name: 'http', port: 80 }]): KObject {
  return { kind: 'Service', metadata: { namespace, name }, spec: { ports: ports.map((p) => ({ ...p, protocol: 'TCP' })) } };
}

export interface SliceEndpoint {
  ip: string;
  node?: string;
  ready?: boolean;
}

/** An EndpointSlice for Service `svc` (label kubernetes.io/service-name), one port list. */
export function endpointSlice(
  namespace: string,
  name: string,
  svc: string,
  endpoints: SliceEndpoint[],
  ports: { name: string; port: number }[] = [{ name: 'http', port: 8080 }],
): KObject {
  return {
    kind: 'EndpointSlice',
    metadata: { namespace, name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true },
      ...(e.node ? { nodeName: e.node } : {}),
    })),
    ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
  };
}

/** Polls `check` until it returns true (every 20 ms, ceiling `ms`). */
export async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A Pod as the API returns it: running on `node` with `ip` (hostNetwork pods report the node's IP). */
export function pod(namespace: string, name: string, node: string, ip: string, extra: { sa?: string; hostNetwork?: boolean; phase?: string } = {}): KObject {
  return {
    kind: 'Pod',
    metadata: { namespace, name, uid: `uid-${namespace}-${name}` },
    spec: { nodeName: node, serviceAccountName: extra.sa ?? 'default', ...(extra.hostNetwork ? { hostNetwork: true } : {}) },
    status: { phase: extra.phase ?? 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}
