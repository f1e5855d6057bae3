// This node as the mesh needs it: its name (config, NODE_NAME, or found from the API), its own
// addresses, and where identity learns the cluster's pods.

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { HostmeshConfig } from '../config/types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PodIndex, WatchedPods, type PodDirectory } from '../identity/pod-directory.js';
import { K8sClient } from '../k8s/client.js';
import { resolveConnection } from '../k8s/connection.js';
import { findOwnNode, nodeNamePlan, SA_NAMESPACE_FILE } from '../k8s/own-node.js';
import { serverDirection } from '../router/context.js';
import type { HostmeshDeps } from './deps.js';
import { k8sWhere } from './k8s-api.js';

/** Whether a router's own node matters: a localnode transformer, or a plaintext port serving only local pods. */
function nodeUse(config: HostmeshConfig): { required: boolean; wanted: boolean } {
  const localnode = (ts: readonly { kind: string }[] | undefined): boolean => (ts ?? []).some((t) => t.kind === 'io.l5d.k8s.localnode');
  const required = config.routers.some((r) => localnode(r.transformers)) || config.namers.some((n) => n.kind !== 'io.l5d.rewrite' && localnode(n.transformers));
  const podWatch = config.identity?.podWatch !== false && config.namers.some((n) => n.kind === 'io.l5d.k8s');
  const guarded = config.routers.some((r) => r.servers.some((s) => serverDirection(s, r.label) === 'outbound' && s.localSourcesOnly !== false));
  return { required, wanted: required || (podWatch && guarded) };
}

/** The pod's own namespace from its service account mount, when there is one. */
function ownNamespace(): string | undefined {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The config with this router's node name: given (config, NODE_NAME), or found from the API for
 * Linkerd 1 manifests that inject only POD_IP. Logs how it was found; throws when a localnode
 * transformer needs it and the API cannot say.
 */
export async function withNodeName(config: HostmeshConfig, deps: HostmeshDeps): Promise<HostmeshConfig> {
  const env = deps.env ?? process.env;
  const plan = nodeNamePlan(config.nodeName, env, ownNamespace());
  const use = nodeUse(config);
  if (plan.kind === 'given') {
    deps.logger.info({ node: plan.node, from: plan.how }, 'node name');
    return config.nodeName === plan.node ? config : { ...config, nodeName: plan.node };
  }
  if (!use.wanted) return config;
  if (plan.kind === 'none') {
    if (use.required) return config; // buildTransform says what to set
    deps.logger.warn(`no node name (${plan.why}): the outgoing port admits no pod, only loopback, the node's addresses and allowedSourceCidrs`);
    return config;
  }
  const client = new K8sClient(resolveConnection(k8sWhere(config), env), { connections: 1 });
  try {
    const found = await findOwnNode(client, plan);
    deps.logger.info({ node: found.node, from: `the Kubernetes API: ${found.how}` }, 'node name found from the Kubernetes API');
    return { ...config, nodeName: found.node };
  } catch (err) {
    const message = `node name ${plan.how}: ${(err as Error).message}`;
    if (use.required) throw new Error(`io.l5d.k8s.localnode needs the node name; ${message}`);
    deps.logger.warn(`${message}: the outgoing port admits no pod, only loopback, the node's addresses and allowedSourceCidrs`);
    return config;
  } finally {
    await client.close();
  }
}

export interface PodSource {
  readonly pods: PodDirectory;
  /** Whether `pods` is a pod watch (or the demo's list): without one, claims cannot be checked. */
  readonly verify: boolean;
  stop(): Promise<void>;
}

/**
 * Where identity learns the cluster's pods: given (demo, tests), a cluster-wide watch through the
 * first io.l5d.k8s namer's API connection (default when there is one), or none: then the outgoing
 * port admits only the node's own sources and CIDRs, and claims cannot be checked.
 */
export function buildPods(config: HostmeshConfig, deps: HostmeshDeps): PodSource {
  if (deps.pods !== undefined) return { pods: deps.pods, verify: true, stop: async () => undefined };
  const k8s = config.namers.find((n) => n.kind === 'io.l5d.k8s');
  if (k8s !== undefined && config.identity?.podWatch !== false) {
    const client = new K8sClient(resolveConnection(k8sWhere(config)), { connections: 2 });
    const watched = new WatchedPods({
      client,
      logger: deps.logger.child({ watch: 'pods' }),
      ...(deps.k8sBackoff !== undefined ? { backoff: deps.k8sBackoff } : {}),
    }).start();
    return {
      pods: watched,
      verify: true,
      stop: async () => {
        await watched.stop();
        await client.close();
      },
    };
  }
  const none = new PodIndex();
  none.markSynced();
  return { pods: none, verify: false, stop: async () => undefined };
}

/** This host's interface addresses. */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** This node's own addresses (interfaces and HOST_IP), re-read at most every 30 s. */
export function nodeAddresses(clock: Clock = systemClock): () => Iterable<string> {
  let cached: string[] = [];
  let at = -Infinity;
  return () => {
    if (clock.now() - at > 30_000) {
      at = clock.now();
      cached = localAddresses();
      const hostIp = process.env['HOST_IP'];
      if (hostIp) cached.push(hostIp);
    }
    return cached;
  };
}
