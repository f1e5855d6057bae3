// Which node this router runs on, when neither the config (`nodeName`) nor the downward API
// (`NODE_NAME`) says: Linkerd 1's DaemonSet manifests inject only `POD_IP`. The API knows: the pod
// whose IP is POD_IP, or the pod named HOSTNAME (Kubernetes sets it to the pod's name), has
// `spec.nodeName`. Their RBAC already grants pod reads (list/watch pods).

import type { K8sClient, KObject } from './client.js';
import { collectionPath, PODS } from './resources.js';

/** Where the router's own node name comes from, decided before anything starts. */
export type NodeNamePlan =
  | { readonly kind: 'given'; readonly node: string; readonly how: string }
  | { readonly kind: 'api'; readonly podIp?: string; readonly hostname?: string; readonly namespace?: string; readonly how: string }
  | { readonly kind: 'none'; readonly why: string };

/** The service account's namespace file, where a pod learns its own namespace without POD_NAMESPACE. */
export const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * How the node name will be found: the config's `nodeName`, `NODE_NAME`, else the API by POD_IP
 * and/or HOSTNAME (with POD_NAMESPACE or the service account's namespace, when known).
 */
export function nodeNamePlan(configured: string | undefined, env: NodeJS.ProcessEnv, ownNamespace?: string): NodeNamePlan {
  // The loaded config already holds NODE_NAME when the config had no nodeName: say which it was.
  if (configured !== undefined && configured !== '')
    return { kind: 'given', node: configured, how: env['NODE_NAME'] === configured ? 'NODE_NAME' : 'nodeName in the config' };
  const fromEnv = env['NODE_NAME'];
  if (fromEnv !== undefined && fromEnv !== '') return { kind: 'given', node: fromEnv, how: 'NODE_NAME' };
  const podIp = nonEmpty(env['POD_IP']);
  const namespace = nonEmpty(env['POD_NAMESPACE']) ?? ownNamespace;
  // HOSTNAME is the pod's name only inside a pod; elsewhere it is a machine's name.
  const inPod = nonEmpty(env['KUBERNETES_SERVICE_HOST']) !== undefined || namespace !== undefined;
  const hostname = inPod ? nonEmpty(env['HOSTNAME']) : undefined;
  if (podIp === undefined && hostname === undefined) {
    return { kind: 'none', why: 'set nodeName in the config, or NODE_NAME (downward API spec.nodeName), or POD_IP (status.podIP) to find it from the API' };
  }
  const ways = [
    ...(podIp !== undefined ? [`the pod with IP ${podIp} (POD_IP)`] : []),
    ...(hostname !== undefined ? [`the pod named ${hostname} (HOSTNAME)${namespace !== undefined ? ` in namespace ${namespace}` : ''}`] : []),
  ];
  return {
    kind: 'api',
    ...(podIp !== undefined ? { podIp } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    how: `from the Kubernetes API: ${ways.join(', else ')}`,
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

const FINISHED = new Set(['Succeeded', 'Failed']);

function nodeOf(pod: KObject): string | undefined {
  const node = (pod['spec'] as { nodeName?: unknown } | undefined)?.nodeName;
  return typeof node === 'string' && node !== '' ? node : undefined;
}

function running(pod: KObject): boolean {
  const phase = (pod['status'] as { phase?: unknown } | undefined)?.phase;
  return !(typeof phase === 'string' && FINISHED.has(phase));
}

/**
 * Asks the API for this router's node, as `plan` says. Several pods may hold POD_IP (hostNetwork
 * pods share the node's address, a finished pod may keep an IP since reused): pods that ended are
 * ignored, and the answer counts only when every remaining one names the same node. Throws an
 * Error that says what was asked and what came back.
 */
export async function findOwnNode(client: K8sClient, plan: Extract<NodeNamePlan, { kind: 'api' }>): Promise<{ node: string; how: string }> {
  const tried: string[] = [];
  if (plan.podIp !== undefined) {
    const { items } = await client.list(collectionPath(PODS), { fieldSelector: `status.podIP=${plan.podIp}` });
    const nodes = new Set(items.filter(running).flatMap((p) => nodeOf(p) ?? []));
    if (nodes.size === 1) {
      const node = [...nodes][0] as string;
      const names = items.filter(running).map((p) => `${p.metadata.namespace ?? ''}/${p.metadata.name}`);
      return { node, how: `the pod with IP ${plan.podIp} (POD_IP): ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}` };
    }
    tried.push(
      nodes.size === 0
        ? `no running pod with IP ${plan.podIp} (POD_IP) is scheduled on a node`
        : `pods with IP ${plan.podIp} (POD_IP) run on several nodes (${[...nodes].sort().join(', ')})`,
    );
  }
  if (plan.hostname !== undefined) {
    const { items } = await client.list(collectionPath(PODS, plan.namespace), { fieldSelector: `metadata.name=${plan.hostname}` });
    const nodes = new Set(items.filter(running).flatMap((p) => nodeOf(p) ?? []));
    if (nodes.size === 1) {
      const where = plan.namespace !== undefined ? ` in namespace ${plan.namespace}` : '';
      return { node: [...nodes][0] as string, how: `the pod named ${plan.hostname} (HOSTNAME)${where}` };
    }
    tried.push(
      nodes.size === 0
        ? `no running pod named ${plan.hostname} (HOSTNAME)${plan.namespace !== undefined ? ` in namespace ${plan.namespace}` : ''} is scheduled on a node`
        : `pods named ${plan.hostname} (HOSTNAME) run on several nodes (set POD_NAMESPACE)`,
    );
  }
  throw new Error(`cannot find this router's node from the Kubernetes API: ${tried.join('; ')}; set NODE_NAME from the downward API (spec.nodeName)`);
}
