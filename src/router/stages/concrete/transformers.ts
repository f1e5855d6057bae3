// Node-aware transformers on a bound name's endpoints: daemonset maps each destination to the
// hostmesh router on the same node (by nodeName, never by subnet); localnode keeps this node's.

import type { Endpoint, EndpointTransform } from '../../../namer/addr.js';

/** The type lives with the namers (namer/addr.ts), which apply transforms without knowing the router. */
export type { EndpointTransform };

/** io.l5d.k8s.localnode: only endpoints on `nodeName`. */
export function localNode(nodeName: string): EndpointTransform {
  return (endpoints) => {
    const kept = endpoints.filter((e) => e.meta.nodeName === nodeName);
    return kept.length > 0 || endpoints.length === 0
      ? { endpoints: kept }
      : { endpoints: kept, why: `none of ${endpoints.length} endpoints is on node ${nodeName}` };
  };
}

/**
 * io.l5d.k8s.daemonset: each destination endpoint becomes the router on its node. `routers` gives
 * the current router endpoints (one or more per node, tagged with nodeName).
 */
export function daemonSet(routers: () => readonly Endpoint[]): EndpointTransform {
  // Per destination set (an immutable array the namer keeps until its endpoints change), the answer
  // and the routers it was made from: reused per request while the routers are the same objects.
  const answers = new WeakMap<readonly Endpoint[], { readonly routers: readonly Endpoint[]; readonly answer: ReturnType<EndpointTransform> }>();
  return (endpoints) => {
    const current = routers();
    const kept = answers.get(endpoints);
    if (kept !== undefined && sameItems(kept.routers, current)) return kept.answer;
    const answer = mapToRouters(endpoints, current);
    answers.set(endpoints, { routers: current, answer });
    return answer;
  };
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Each destination endpoint's node's routers, once each (daemonSet's work). */
function mapToRouters(endpoints: readonly Endpoint[], routers: readonly Endpoint[]): ReturnType<EndpointTransform> {
  const byNode = new Map<string, Endpoint[]>();
  for (const r of routers) {
    const node = r.meta.nodeName;
    if (node === undefined) continue;
    const list = byNode.get(node) ?? [];
    list.push(r);
    byNode.set(node, list);
  }
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  const missing = new Set<string>();
  for (const e of endpoints) {
    const node = e.meta.nodeName;
    const rs = node === undefined ? undefined : byNode.get(node);
    if (rs === undefined) {
      missing.add(node ?? '(no nodeName)');
      continue;
    }
    for (const r of rs) {
      const key = `${r.host} ${r.port}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(r);
      }
    }
  }
  return out.length > 0 || endpoints.length === 0
    ? { endpoints: out }
    : { endpoints: out, why: `no hostmesh router known on node(s) ${[...missing].join(', ')}` };
}

/** io.l5d.port: every endpoint keeps its host and gets `port` (e.g. the peer router's port). */
export function portTransform(port: number): EndpointTransform {
  return (endpoints) => ({ endpoints: endpoints.map((e) => ({ ...e, port })) });
}

/**
 * io.l5d.replace: every destination is replaced by a given set (bound from a path). An empty
 * destination stays empty: there was nothing to replace.
 */
export function replaceTransform(replacement: () => readonly Endpoint[]): EndpointTransform {
  return (endpoints) => {
    if (endpoints.length === 0) return { endpoints: [] };
    const out = [...replacement()];
    return out.length > 0 ? { endpoints: out } : { endpoints: out, why: 'the replacement set is empty' };
  };
}

/** io.l5d.specificHost / io.l5d.localhost: only endpoints whose host is one of `hosts`. */
export function hostFilter(hosts: readonly string[], label: string): EndpointTransform {
  const set = new Set(hosts);
  return (endpoints) => {
    const kept = endpoints.filter((e) => set.has(e.host));
    return kept.length > 0 || endpoints.length === 0 ? { endpoints: kept } : { endpoints: kept, why: `none of ${endpoints.length} endpoints is on ${label}` };
  };
}

/** io.l5d.const: every destination is the given set, whatever it was, empty included (Linkerd 1). */
export function constTransform(replacement: () => readonly Endpoint[]): EndpointTransform {
  return () => {
    const out = [...replacement()];
    return out.length > 0 ? { endpoints: out } : { endpoints: out, why: 'the constant set is empty' };
  };
}
