// Linkerd 1's transformers (a router's interpreter.transformers, a namer's transformers) built from
// their config. The schema (config/kinds.ts) has checked every option, so each kind reads its
// typed options here; only what needs the running process (the node name, the pod watch) is
// checked at build time.

import { Dtab } from '../dtab/dtab.js';
import { Path } from '../dtab/path.js';
import { parsePath } from '../dtab/parse.js';
import type { HostmeshConfig, TransformerConfig } from '../config/types.js';
import type { PodDirectory } from '../identity/pod-directory.js';
import type { Logger } from '../log.js';
import type { Endpoint } from '../namer/addr.js';
import type { NameInterpreter } from '../namer/interpreter.js';
import { deliveryCheck } from '../router/stages/concrete/delivery.js';
import type { Metrics } from '../metrics/metrics.js';
import {
  constTransform,
  daemonSet,
  hostFilter,
  localNode,
  portTransform,
  replaceTransform,
  type EndpointTransform,
} from '../router/stages/concrete/transformers.js';
import { localAddresses } from './node.js';

/** What the localnode delivery check reads (router/stages/concrete/delivery.ts); absent when only validating a config. */
export interface DeliveryDeps {
  readonly pods: PodDirectory;
  /** Whether `pods` is a pod watch (or the demo's list): without one, localnode trusts nodeName. */
  readonly verify: boolean;
  readonly k8sPrefix: string;
  /** Where each router's delivery refusals are counted. */
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** The transforms of one router (`label`: `router <label>` in messages) or namer (`namer <prefix>`). */
export function buildTransforms(
  label: string,
  configs: readonly TransformerConfig[],
  config: HostmeshConfig,
  interpreter: NameInterpreter,
  delivery?: DeliveryDeps,
): { transforms: EndpointTransform[]; close: () => void } {
  const closers: (() => void)[] = [];
  const transforms = configs.map((t) => buildTransform(t, label, config, interpreter, closers, delivery));
  return { transforms, close: () => closers.forEach((c) => c()) };
}

function buildTransform(
  t: TransformerConfig,
  label: string,
  config: HostmeshConfig,
  interpreter: NameInterpreter,
  closers: (() => void)[],
  delivery?: DeliveryDeps,
): EndpointTransform {
  switch (t.kind) {
    case 'io.l5d.k8s.localnode': {
      const node = config.nodeName;
      if (node === undefined || node === '') {
        throw new Error(
          `router ${label}: io.l5d.k8s.localnode needs the node name: set nodeName in the config, or NODE_NAME (downward API spec.nodeName), or POD_IP (status.podIP) to find it from the API`,
        );
      }
      if (delivery === undefined) return localNode(node);
      const hostNetworkPods = t.hostNetworkPods === true;
      if (!delivery.verify) {
        delivery.logger.warn(
          { router: label },
          "io.l5d.k8s.localnode without a pod watch (identity.podWatch: false, or no io.l5d.k8s namer): endpoints are trusted by their slice's nodeName and namespace, not checked against the pods on this node",
        );
        if (hostNetworkPods) delivery.logger.warn({ router: label }, 'io.l5d.k8s.localnode hostNetworkPods: true has no effect without a pod watch');
        return localNode(node);
      }
      return deliveryCheck({
        nodeName: node,
        pods: delivery.pods,
        k8sPrefix: delivery.k8sPrefix,
        hostNetworkPods,
        events: delivery.metrics.router(label).router,
      });
    }
    case 'io.l5d.k8s.daemonset': {
      const routersPath =
        t.routers !== undefined ? parsePath(t.routers) : new Path(['#', 'io.l5d.k8s', t.namespace ?? 'default', t.port ?? 'incoming', t.service ?? 'hostmesh']);
      return daemonSet(boundEndpoints(interpreter, routersPath, closers));
    }
    case 'io.l5d.port':
      return portTransform(t.port);
    case 'io.l5d.replace':
      return replaceTransform(boundEndpoints(interpreter, parsePath(t.path), closers));
    case 'io.l5d.const': {
      // Linkerd 1's const ignores what the name bound to: a destination without endpoints gets the
      // constant set too (unlike replace). A name that does not bind at all (neg) is not routed.
      if (t.path !== undefined) return constTransform(boundEndpoints(interpreter, parsePath(t.path), closers));
      const endpoints: Endpoint[] = (t.addrs ?? []).map((a) => ({ host: a.ip, port: a.port, meta: {} }));
      return constTransform(() => endpoints);
    }
    case 'io.l5d.localhost':
      return hostFilter(localAddresses(), 'this host');
    case 'io.l5d.specificHost':
      return hostFilter([t.host], t.host);
  }
}

/** The endpoints a path binds to right now (kept bound and updated until the router closes). */
function boundEndpoints(interpreter: NameInterpreter, path: Path, closers: (() => void)[]): () => Endpoint[] {
  const binding = interpreter.bind(Dtab.empty, path);
  closers.push(() => binding.close());
  return () => {
    const s = binding.state.get();
    if (s.kind !== 'ok') return [];
    const out: Endpoint[] = [];
    const walk = (tree: typeof s.tree): void => {
      if (tree.kind === 'leaf') {
        const a = tree.value.addr.get();
        if (a.kind === 'bound') out.push(...a.endpoints);
      } else if (tree.kind === 'union') tree.members.forEach((m) => walk(m.tree));
      else if (tree.kind === 'alt') tree.trees.forEach(walk);
    };
    walk(s.tree);
    return out;
  };
}
