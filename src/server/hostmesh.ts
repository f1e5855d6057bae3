// Starts a whole hostmesh process from its config: namers, the interpreter, every router with its
// listeners, and the admin server; returns a handle whose close() drains gracefully.

import { type Clock, every, systemClock } from '../core/clock.js';
import { Dtab } from '../dtab/dtab.js';
import { Path } from '../dtab/path.js';
import { parsePath } from '../dtab/parse.js';
import type { HostmeshConfig, RouterConfig, TransformerConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Endpoint, Namer } from '../namer/addr.js';
import { FsNamer } from '../namer/fs-namer.js';
import { K8S_MAX_NAMESPACES, K8sNamer, k8sConnectionsFor } from '../namer/k8s/k8s-namer.js';
import { K8sClient } from '../k8s/client.js';
import { resolveConnection } from '../k8s/connection.js';
import type { BackoffOptions } from '../k8s/backoff.js';
import { Metrics } from '../metrics/metrics.js';
import { NameInterpreter } from '../namer/interpreter.js';
import { Var } from '../namer/var.js';
import { clientLimits, EndpointPools } from '../router/endpoint-pool.js';
import { ClientPools } from '../router/client-pools.js';
import { RouterParams } from '../router/static-params.js';
import { classifierOf, requeueBudgetOf, retryPolicyOf } from '../router/per-name.js';
import type { Classifier } from '../router/classifier.js';
import type { BudgetConfig, RetryPolicy } from '../router/retries.js';
import { Router } from '../router/router.js';
import { DEFAULT_BINDING_CACHE, type BindingCacheLimits } from '../router/stages/logical.js';
import { serverDirection } from '../router/context.js';
import { accrualConfig } from '../router/failure-accrual.js';
import { daemonSet, hostFilter, localNode, portTransform, replaceTransform, type EndpointTransform } from '../router/transformers.js';
import { deliveryCheck } from '../router/delivery.js';
import { networkInterfaces } from 'node:os';
import { AdminServer } from '../admin/admin-server.js';
import { installLinkerd1Admin } from '../admin/linkerd1-admin.js';
import type { AccessLogConfig } from '../config/linkerd1-observability.js';
import { AccessLog } from './access-log.js';
import { Listener } from './listener.js';
import type { H2Listener } from './h2-listener.js';
import { h2Parts, startH2Listener } from './h2-router.js';
import { DtabWatcher } from './dtab-watcher.js';
import { buildIdentifiers, type IdentifierDeps } from '../router/identifiers.js';
import { IngressSource } from '../router/ingress.js';
import { clientTlsFiles, clientTlsOptions, serverTlsFiles, serverTlsOptions } from '../tls/tls-files.js';
import { watchTls } from '../tls/reload.js';
import { loadPolicyFile, PolicyWatcher } from '../authz/policy-watcher.js';
import { Policy } from '../authz/policy.js';
import { authorizer } from '../router/authorize.js';
import { explainJson } from '../admin/authz-explain.js';
import { Callers } from '../identity/caller.js';
import { PodIndex, WatchedPods, type PodDirectory } from '../identity/pod-directory.js';
import { SourceGuard } from '../identity/source-guard.js';
import { DEFAULT_TRUST_DOMAIN } from '../identity/names.js';
import { findOwnNode, nodeNamePlan, SA_NAMESPACE_FILE } from '../k8s/own-node.js';
import { readFileSync } from 'node:fs';
import { NamerdDtab } from './namerd-dtab.js';
import { RewriteNamer } from '../namer/rewrite-namer.js';
import { TransformingNamer } from '../namer/transforming-namer.js';
import { nodeCertificateFor } from './node-identity.js';
import { podGateways, SnatDetector } from '../identity/snat-detector.js';
import type { NodeCertificate } from '../tls/node-certificate.js';

export interface HostmeshDeps {
  readonly logger: Logger;
  /** Extra namers (tests), or factories for kinds this module does not build itself. */
  readonly namers?: readonly Namer[];
  readonly namerFactory?: (cfg: HostmeshConfig['namers'][number], logger: Logger) => Namer | undefined;
  /** Poll interval of dtabFile watching (tests shorten it). */
  readonly dtabPollMs?: number;
  /** A reloaded dtabFile was rejected (router label, file:line:col message). */
  readonly onDtabReject?: (router: string, message: string) => void;
  /** Poll interval of certificate file watching (tests shorten it). */
  readonly tlsPollMs?: number;
  /** Reconnect backoff of Kubernetes watches (tests shorten it). */
  readonly k8sBackoff?: BackoffOptions;
  /** The one clock of the mesh: idle eviction, deadlines, accrual, waits, renewals (tests drive it; default systemClock). */
  readonly clock?: Clock;
  /** The node certificate's clock when it must differ from the mesh's (tests that move days of renewals while requests run on real time). */
  readonly identityClock?: Clock;
  /** The cluster's pods (the demo and tests give a fixed list); else a pod watch when configured. */
  readonly pods?: PodDirectory;
  /** How long a namerd interpreter waits for its dtab's first list at start (default 30 s). */
  readonly namerdStartMs?: number;
  /** The environment (NODE_NAME, POD_IP, HOSTNAME, POD_NAMESPACE); process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * A namerd interpreter's dtab, read from namerd's Kubernetes storage (server/namerd-dtab.ts) before
 * the router's listeners open: a router whose dtab does not exist does not start.
 */
async function startNamerdDtab(r: RouterConfig, config: HostmeshConfig, dtab: Var<Dtab>, deps: HostmeshDeps, metrics: Metrics): Promise<() => void> {
  const n = r.namerd as NonNullable<RouterConfig['namerd']>;
  const k8s = config.namers.find((x) => x.kind === 'io.l5d.k8s');
  const where =
    n.host !== undefined || n.port !== undefined
      ? { ...(n.host !== undefined ? { host: n.host } : {}), ...(n.port !== undefined ? { port: n.port } : {}) }
      : k8s !== undefined && k8s.kind === 'io.l5d.k8s'
        ? { ...(k8s.host !== undefined ? { host: k8s.host } : {}), ...(k8s.port !== undefined ? { port: k8s.port } : {}) }
        : {};
  const client = new K8sClient(resolveConnection(where, deps.env ?? process.env), { connections: 2 });
  const store = new NamerdDtab({
    config: n,
    client,
    dtab,
    logger: deps.logger.child({ router: r.label, interpreter: n.kind }),
    ...(deps.k8sBackoff !== undefined ? { backoff: deps.k8sBackoff } : {}),
    onReject: () => metrics.router(r.label).router.dtabRejected(),
  });
  try {
    await store.start(deps.namerdStartMs ?? 30_000);
  } catch (err) {
    await store.stop();
    await client.close();
    throw new Error(`router ${r.label}: interpreter ${n.kind}: ${(err as Error).message}`);
  }
  return () => void store.stop().then(() => client.close());
}

/**
 * The io.l5d.ingress identifiers' Ingress watches for one router: each config gets its own watch
 * (its namespace, class, bounds) on its API (host/port, else the first io.l5d.k8s namer's, else
 * in-cluster/kubeconfig), started now and stopped by the returned closer.
 */
function ingressDeps(r: RouterConfig, config: HostmeshConfig, deps: HostmeshDeps, metrics: Metrics, closers: (() => void)[]): IdentifierDeps {
  return {
    ingress: (cfg) => {
      const k8s = config.namers.find((n) => n.kind === 'io.l5d.k8s');
      const host = typeof cfg['host'] === 'string' ? cfg['host'] : undefined;
      const port = typeof cfg['port'] === 'number' ? cfg['port'] : undefined;
      const where =
        host !== undefined || port !== undefined
          ? { ...(host !== undefined ? { host } : {}), ...(port !== undefined ? { port } : {}) }
          : k8s !== undefined && k8s.kind === 'io.l5d.k8s'
            ? { ...(k8s.host !== undefined ? { host: k8s.host } : {}), ...(k8s.port !== undefined ? { port: k8s.port } : {}) }
            : {};
      const connection = resolveConnection(where, deps.env ?? process.env);
      const namespace = typeof cfg['namespace'] === 'string' ? cfg['namespace'] : undefined;
      const logger = deps.logger.child({ router: r.label, identifier: 'io.l5d.ingress' });
      logger.info({ api: connection.describe, namespace: namespace ?? '(all)' }, 'watching Ingress resources');
      const source = new IngressSource({
        client: new K8sClient(connection, { connections: 2 }),
        ...(namespace !== undefined ? { namespace } : {}),
        logger,
        ...(deps.k8sBackoff !== undefined ? { backoff: deps.k8sBackoff } : {}),
        cls: typeof cfg['ingressClassAnnotation'] === 'string' ? cfg['ingressClassAnnotation'] : 'linkerd',
        ignoreDefaultBackends: cfg['ignoreDefaultBackends'] === true,
        ...(typeof cfg['maxIngresses'] === 'number' ? { maxIngresses: cfg['maxIngresses'] } : {}),
        ...(typeof cfg['maxRulesPerIngress'] === 'number' ? { maxRulesPerIngress: cfg['maxRulesPerIngress'] } : {}),
        events: metrics.router(r.label).router,
      }).start();
      closers.push(() => void source.stop());
      return (reqHost, path) => source.lookup(reqHost, path);
    },
  };
}

/** Whether a router's own node matters: a localnode transformer, or a plaintext port serving only local pods. */
function nodeUse(config: HostmeshConfig): { required: boolean; wanted: boolean } {
  const localnode = (ts: readonly TransformerConfig[] | undefined): boolean => (ts ?? []).some((t) => t.kind === 'io.l5d.k8s.localnode');
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
async function withNodeName(config: HostmeshConfig, deps: HostmeshDeps): Promise<HostmeshConfig> {
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
  const k8s = config.namers.find((n) => n.kind === 'io.l5d.k8s');
  const client = new K8sClient(
    resolveConnection(
      k8s !== undefined && k8s.kind === 'io.l5d.k8s'
        ? { ...(k8s.host !== undefined ? { host: k8s.host } : {}), ...(k8s.port !== undefined ? { port: k8s.port } : {}) }
        : {},
      env,
    ),
    { connections: 1 },
  );
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

/**
 * Where identity learns the cluster's pods: given (demo, tests), a cluster-wide watch through the
 * first io.l5d.k8s namer's API connection (default when there is one), or none: then the outgoing
 * port admits only the node's own sources and CIDRs, and claims cannot be checked.
 */
function buildPods(config: HostmeshConfig, deps: HostmeshDeps): { pods: PodDirectory; verify: boolean; stop: () => Promise<void> } {
  if (deps.pods !== undefined) return { pods: deps.pods, verify: true, stop: async () => undefined };
  const k8s = config.namers.find((n) => n.kind === 'io.l5d.k8s');
  if (k8s !== undefined && k8s.kind === 'io.l5d.k8s' && config.identity?.podWatch !== false) {
    const client = new K8sClient(
      resolveConnection({ ...(k8s.host !== undefined ? { host: k8s.host } : {}), ...(k8s.port !== undefined ? { port: k8s.port } : {}) }),
      { connections: 2 },
    );
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

/** This node's own addresses (interfaces and HOST_IP), re-read at most every 30 s. */
function nodeAddresses(clock: Clock = systemClock): () => Iterable<string> {
  let cached: string[] = [];
  let at = -Infinity;
  return () => {
    if (clock.now() - at > 30_000) {
      at = clock.now();
      cached = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
      const hostIp = process.env['HOST_IP'];
      if (hostIp) cached.push(hostIp);
    }
    return cached;
  };
}

export interface RunningRouter {
  readonly label: string;
  readonly router: Router;
  readonly listeners: readonly (Listener | H2Listener)[];
}

export interface Hostmesh {
  readonly routers: readonly RunningRouter[];
  readonly interpreter: NameInterpreter;
  readonly admin: AdminServer;
  readonly config: HostmeshConfig;
  /** dtabFile watchers by router label. */
  readonly dtabWatchers: ReadonlyMap<string, DtabWatcher>;
  readonly metrics: Metrics;
  /** The authorization policy's watcher (config `authz`); absent: every call is allowed. */
  readonly policy: PolicyWatcher | undefined;
  /** The node certificate from identity.issuer, when configured. */
  readonly nodeCertificate: NodeCertificate | undefined;
  /** Runs every idle sweep now (routers' binding caches, then namers); timers run them too. */
  evictIdle(): void;
  /**
   * Drains: first an announce of `announceMs` (inbound listeners serve on, telling peer routers to
   * stop choosing this node), then at most `graceMs` for requests in flight. Without arguments (a
   * signal, the admin's shutdown) both come from the config; a caller naming a grace names its own
   * announce (none when omitted).
   */
  close(graceMs?: number, announceMs?: number): Promise<void>;
}

/** drainAnnounceMs's default: a peer sending a request a second learns of the drain in time. */
export const DEFAULT_DRAIN_ANNOUNCE_MS = 2_000;

function buildNamers(config: HostmeshConfig, deps: HostmeshDeps): Namer[] {
  const namers: Namer[] = [...(deps.namers ?? [])];
  for (const cfg of config.namers) {
    const custom = deps.namerFactory?.(cfg, deps.logger);
    if (custom !== undefined) {
      namers.push(custom);
      continue;
    }
    if (cfg.kind === 'io.l5d.rewrite') {
      namers.push(new RewriteNamer(cfg));
      continue;
    }
    const at = namers.length;
    if (cfg.kind === 'io.l5d.fs') {
      namers.push(
        new FsNamer({
          rootDir: cfg.rootDir,
          prefix: parsePath(cfg.prefix),
          logger: deps.logger,
          ...(cfg.idleTtlSecs !== undefined ? { idleTtlMs: cfg.idleTtlSecs * 1000 } : {}),
          ...(cfg.maxIdleNames !== undefined ? { maxIdleNames: cfg.maxIdleNames } : {}),
          ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
        }),
      );
    } else {
      const connection = resolveConnection({ ...(cfg.host !== undefined ? { host: cfg.host } : {}), ...(cfg.port !== undefined ? { port: cfg.port } : {}) });
      deps.logger.info({ namer: cfg.kind, api: connection.describe }, 'kubernetes namer');
      if (cfg.allowLoopbackEndpoints === true) {
        deps.logger.warn(
          { namer: cfg.kind },
          'allowLoopbackEndpoints: loopback addresses from the API are delivered to; only for a cluster simulated on one machine, never in a real cluster',
        );
      }
      namers.push(
        new K8sNamer({
          // Enough API connections for every namespace's two watches plus lists (see K8sClient).
          client: new K8sClient(connection, { connections: k8sConnectionsFor(cfg.maxNamespaces ?? K8S_MAX_NAMESPACES) }),
          logger: deps.logger.child({ namer: cfg.kind }),
          ...(cfg.maxNamespaces !== undefined ? { maxNamespaces: cfg.maxNamespaces } : {}),
          ...(cfg.idleTtlSecs !== undefined ? { idleTtlMs: cfg.idleTtlSecs * 1000 } : {}),
          ...(cfg.maxIdleNames !== undefined ? { maxIdleNames: cfg.maxIdleNames } : {}),
          ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
          prefix: parsePath(cfg.prefix),
          nodeAddresses: nodeAddresses(deps.clock),
          ...(cfg.maxEndpointsPerService !== undefined ? { maxEndpointsPerService: cfg.maxEndpointsPerService } : {}),
          ...(cfg.allowLoopbackEndpoints === true ? { allowLoopbackEndpoints: true } : {}),
          ...(cfg.labelSelector !== undefined ? { labelSelector: cfg.labelSelector } : {}),
          ...(cfg.api !== undefined ? { api: cfg.api } : {}),
          ...(deps.k8sBackoff !== undefined ? { backoff: deps.k8sBackoff } : {}),
        }),
      );
    }
    // Linkerd 1's namers[].transformers: the transforms are built once the interpreter exists.
    if (cfg.transformers !== undefined && cfg.transformers.length > 0) namers[at] = new TransformingNamer(namers[at] as Namer);
  }
  return namers;
}

/** Builds each transforming namer's transformers (they may bind through the interpreter, as daemonset does). */
function wireNamerTransforms(config: HostmeshConfig, namers: readonly Namer[], interpreter: NameInterpreter, closers: (() => void)[]): void {
  for (const cfg of config.namers) {
    if (cfg.kind === 'io.l5d.rewrite' || cfg.transformers === undefined || cfg.transformers.length === 0) continue;
    const namer = namers.find((n) => n instanceof TransformingNamer && n.prefix.show() === parsePath(cfg.prefix).show());
    if (!(namer instanceof TransformingNamer)) continue;
    const pseudo = { label: `namer ${cfg.prefix}`, transformers: cfg.transformers } as unknown as RouterConfig;
    const built = buildTransforms(pseudo, config, interpreter);
    closers.push(built.close);
    namer.setTransforms(built.transforms);
  }
}

/** A router's `service` and `client.requeueBudget` blocks as the Router's retry options, Linkerd 1's defaults filled in. */
function resiliencePolicy(r: RouterConfig): { retries: RetryPolicy; classifier: Classifier; requeueBudget: BudgetConfig } {
  // The router's own settings (io.l5d.global); io.l5d.static prefixes go through router/per-name.ts.
  return { retries: retryPolicyOf(r.service), classifier: classifierOf(r.service), requeueBudget: requeueBudgetOf(r.client) };
}

/** A router's bindingCache config as the limits the Router enforces (paths and trees cap one cache). */
function bindingCacheLimits(r: RouterConfig): BindingCacheLimits {
  const c = r.bindingCache ?? {};
  return {
    paths: Math.min(c.paths ?? DEFAULT_BINDING_CACHE.paths, c.trees ?? DEFAULT_BINDING_CACHE.paths),
    overrides: c.overrides ?? DEFAULT_BINDING_CACHE.overrides,
    idleTtlMs: c.idleTtlSecs !== undefined ? c.idleTtlSecs * 1000 : DEFAULT_BINDING_CACHE.idleTtlMs,
  };
}

/** What the localnode delivery check reads (router/delivery.ts); absent when only validating a config. */
interface DeliveryDeps {
  readonly pods: PodDirectory;
  /** Whether `pods` is a pod watch (or the demo's list): without one, localnode trusts nodeName. */
  readonly verify: boolean;
  readonly k8sPrefix: string;
  /** Where each router's delivery refusals are counted. */
  readonly metrics: Metrics;
  readonly logger: Logger;
}

function buildTransforms(
  r: RouterConfig,
  config: HostmeshConfig,
  interpreter: NameInterpreter,
  delivery?: DeliveryDeps,
): { transforms: EndpointTransform[]; close: () => void } {
  const transforms: EndpointTransform[] = [];
  const closers: (() => void)[] = [];
  for (const t of r.transformers) {
    transforms.push(buildTransform(t, r, config, interpreter, closers, delivery));
  }
  return { transforms, close: () => closers.forEach((c) => c()) };
}

function buildTransform(
  t: TransformerConfig,
  r: RouterConfig,
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
          `router ${r.label}: io.l5d.k8s.localnode needs the node name: set nodeName in the config, or NODE_NAME (downward API spec.nodeName), or POD_IP (status.podIP) to find it from the API`,
        );
      }
      if (delivery === undefined) return localNode(node);
      const hostNetworkPods = t['hostNetworkPods'] === true;
      if (!delivery.verify) {
        delivery.logger.warn(
          { router: r.label },
          "io.l5d.k8s.localnode without a pod watch (identity.podWatch: false, or no io.l5d.k8s namer): endpoints are trusted by their slice's nodeName and namespace, not checked against the pods on this node",
        );
        if (hostNetworkPods) delivery.logger.warn({ router: r.label }, 'io.l5d.k8s.localnode hostNetworkPods: true has no effect without a pod watch');
        return localNode(node);
      }
      return deliveryCheck({
        nodeName: node,
        pods: delivery.pods,
        k8sPrefix: delivery.k8sPrefix,
        hostNetworkPods,
        events: delivery.metrics.router(r.label).router,
      });
    }
    case 'io.l5d.k8s.daemonset': {
      const ns = typeof t['namespace'] === 'string' ? t['namespace'] : 'default';
      const port = typeof t['port'] === 'string' ? t['port'] : 'incoming';
      const service = typeof t['service'] === 'string' ? t['service'] : 'hostmesh';
      const routersPath = typeof t['routers'] === 'string' ? parsePath(t['routers']) : new Path(['#', 'io.l5d.k8s', ns, port, service]);
      return daemonSet(boundEndpoints(interpreter, routersPath, closers));
    }
    case 'io.l5d.port': {
      const port = t['port'];
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new Error(`router ${r.label}: io.l5d.port needs port: 1..65535`);
      }
      return portTransform(port);
    }
    case 'io.l5d.replace': {
      if (typeof t['path'] !== 'string') throw new Error(`router ${r.label}: io.l5d.replace needs path`);
      return replaceTransform(boundEndpoints(interpreter, parsePath(t['path']), closers));
    }
    case 'io.l5d.const': {
      const addrs = t['addrs'];
      if (!Array.isArray(addrs)) throw new Error(`router ${r.label}: io.l5d.const needs addrs: [{ip, port}]`);
      const endpoints: Endpoint[] = addrs.map((a: unknown, i) => {
        const o = (a ?? {}) as Record<string, unknown>;
        if (typeof o['ip'] !== 'string' || typeof o['port'] !== 'number') throw new Error(`router ${r.label}: io.l5d.const addrs[${i}] needs ip and port`);
        return { host: o['ip'], port: o['port'], meta: {} };
      });
      return replaceTransform(() => endpoints);
    }
    case 'io.l5d.localhost':
      return hostFilter(localAddresses(), 'this host');
    case 'io.l5d.specificHost': {
      if (typeof t['host'] !== 'string') throw new Error(`router ${r.label}: io.l5d.specificHost needs host`);
      return hostFilter([t['host']], t['host']);
    }
    default:
      throw new Error(`router ${r.label}: transformer ${t.kind} is not available in this build`);
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

/** A router's httpAccessLog, its failures logged once per streak. */
function openAccessLog(label: string, cfg: AccessLogConfig, logger: Logger, clock: Clock | undefined): AccessLog {
  logger.info({ router: label, path: cfg.path, rollPolicy: cfg.rollPolicy }, 'writing the access log');
  return new AccessLog(cfg, {
    ...(clock !== undefined ? { clock } : {}),
    onError: (err) => logger.warn({ router: label, path: cfg.path, err: err.message }, 'access log write failed: lines dropped until a write succeeds'),
  });
}

function sendJson(res: import('node:http').ServerResponse, value: unknown): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/**
 * What `run --check` adds to config validation: the routers' identifiers and transformers built
 * by the very code `startHostmesh` uses (a localnode transformer without a node name, a bad
 * identifier option), short of namers, ports and certificates (checked apart). One line each.
 */
export function checkRouters(given: HostmeshConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  // A node name the API will give at start (POD_IP, HOSTNAME) counts as one here.
  const plan = nodeNamePlan(given.nodeName, env);
  const config = plan.kind === 'api' ? { ...given, nodeName: '(found at start)' } : given;
  const interpreter = new NameInterpreter({ namers: [] });
  for (const r of config.routers) {
    try {
      buildIdentifiers(r.identifier.length > 0 ? r.identifier : [{ kind: 'io.l5d.header.token', header: 'Host' }], parsePath(r.dstPrefix ?? '/svc'));
    } catch (err) {
      problems.push(`router ${r.label}: ${(err as Error).message}`);
    }
    try {
      buildTransforms(r, config, interpreter).close();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  // Linkerd 1's namers[].transformers, built as at start (a localnode there needs the node name too).
  for (const n of config.namers) {
    if (n.kind === 'io.l5d.rewrite' || n.transformers === undefined) continue;
    try {
      buildTransforms({ label: `namer ${n.prefix}`, transformers: n.transformers } as unknown as RouterConfig, config, interpreter).close();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

export async function startHostmesh(given: HostmeshConfig, deps: HostmeshDeps): Promise<Hostmesh> {
  const logger = deps.logger;
  const config = await withNodeName(given, deps);
  // A bad policy at start is a config error (nothing started yet); later versions are hot reloads.
  const initialPolicy = config.authz !== undefined ? await loadPolicyFile(config.authz.policyFile) : undefined;
  const namers = buildNamers(config, deps);
  const metrics = new Metrics(deps.clock !== undefined ? { clock: deps.clock } : {});
  const policyWatcher =
    config.authz !== undefined && initialPolicy !== undefined
      ? new PolicyWatcher({
          file: config.authz.policyFile,
          initial: initialPolicy,
          logger: logger.child({ policy: config.authz.policyFile }),
          ...(config.authz.pollMs !== undefined ? { pollMs: config.authz.pollMs } : {}),
          ...(config.authz.parserMemoryMb !== undefined ? { parserMemoryMb: config.authz.parserMemoryMb } : {}),
          onReject: () => metrics.routerFamilies.policyReloadFailures.inc(),
        })
      : undefined;
  const k8sPrefix = config.namers.find((n) => n.kind === 'io.l5d.k8s')?.prefix ?? '/io.l5d.k8s';
  for (const n of namers)
    if (n.updates !== undefined)
      metrics.addNamer({
        kind: n.kind,
        get updates() {
          return n.updates ?? 0;
        },
        get stale() {
          return n.stale === true;
        },
      });
  const interpreter = new NameInterpreter({
    namers,
    inet: {
      ...(config.inet?.idleTtlSecs !== undefined ? { idleTtlMs: config.inet.idleTtlSecs * 1000 } : {}),
      ...(config.inet?.maxNames !== undefined ? { maxNames: config.inet.maxNames } : {}),
      ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
    },
  });
  const namerClosers: (() => void)[] = [];
  wireNamerTransforms(config, namers, interpreter, namerClosers);
  const podSource = buildPods(config, deps);
  const ownAddresses = nodeAddresses();
  // A CNI that SNATs pods through hostPort makes every pod look like the gateway: said loudly.
  const snat = new SnatDetector({ gateways: podGateways(), warn: (message, source) => logger.error({ source }, message), events: metrics.identity });
  const trustDomain = config.identity?.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const nodeName = config.nodeName ?? '';
  const routers: RunningRouter[] = [];
  const closers: (() => void)[] = [...namerClosers];
  // identity.issuer: TLS blocks without certificate files take this node's issued certificate.
  const nodeCert = nodeCertificateFor(config, metrics, logger, deps.identityClock ?? deps.clock);
  const nodeTls = nodeCert !== undefined ? () => ({ material: nodeCert.current, trustDomain }) : () => undefined;
  if (nodeCert !== undefined) closers.push(() => nodeCert.close());
  if (policyWatcher !== undefined) closers.push(() => policyWatcher.close());
  // The /$/inet map is swept as it is used and by evictIdle(); this catches a map left idle.
  closers.push(every(deps.clock ?? systemClock, 30_000, () => interpreter.evictIdle()));
  const poolsList: EndpointPools[] = [];
  const started: (Listener | H2Listener)[] = [];
  const watchers = new Map<string, DtabWatcher>();
  const accessLogs = new Map<string, AccessLog>();
  try {
    for (const r of config.routers) {
      const { transforms, close } = buildTransforms(r, config, interpreter, {
        pods: podSource.pods,
        verify: podSource.verify,
        k8sPrefix,
        metrics,
        logger,
      });
      closers.push(close);
      const rm = metrics.router(r.label);
      const accessLog = r.accessLog !== undefined ? openAccessLog(r.label, r.accessLog, logger, deps.clock) : undefined;
      if (accessLog !== undefined) {
        accessLogs.set(r.label, accessLog);
        closers.push(() => void accessLog.close());
      }
      if (JSON.stringify(r.service ?? {}).includes('"retries"') && r.servers.every((s) => serverDirection(s, r.label) === 'inbound')) {
        // README "Retries": an app's answer is retried at one hop only, the outgoing router's.
        logger.warn(
          { router: r.label },
          "service retries on a router whose servers are all inbound are not applied: the outgoing router retries apps' answers (requeues still apply)",
        );
      }
      const poolEvents = rm.router.pools;
      const pools = new EndpointPools(
        r.client.tls ? clientTlsOptions(r.client.tls, nodeTls()) : undefined,
        { limits: clientLimits(r.client), ...(deps.clock !== undefined ? { clock: deps.clock } : {}) },
        poolEvents,
      );
      poolsList.push(pools);
      // Linkerd 1's io.l5d.static configs: settings per logical name and bound id, pools per client TLS.
      const { configs: _prefixes, ...clientGlobal } = r.client;
      const params = new RouterParams(r.service, r.client, {
        ...(r.bindingCache?.paths !== undefined ? { maxCachedServices: r.bindingCache.paths } : {}),
        ...(r.bindingCache?.clients !== undefined ? { maxCachedClients: r.bindingCache.clients } : {}),
        events: rm.router,
      });
      const clientPools = new ClientPools(pools, clientGlobal, {
        ...(r.bindingCache?.clients !== undefined ? { maxClients: r.bindingCache.clients } : {}),
        events: poolEvents,
        ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
        paramsEvents: rm.router,
      });
      closers.push(() => void clientPools.close());
      const prefixTlsFiles = (r.client.configs ?? []).flatMap((c) => (c.tls !== undefined ? clientTlsFiles(c.tls) : []));
      if (prefixTlsFiles.length > 0) {
        closers.push(watchTls(prefixTlsFiles, () => clientPools.reloadTls(), `router ${r.label} client prefixes`, metrics.identity, logger, deps.tlsPollMs));
      }
      const clientTls = r.client.tls;
      if (clientTls !== undefined) {
        closers.push(
          watchTls(
            clientTlsFiles(clientTls),
            () => pools.setTls(clientTlsOptions(clientTls, nodeTls())),
            `router ${r.label} client`,
            metrics.identity,
            logger,
            deps.tlsPollMs,
          ),
        );
        if (nodeCert !== undefined && clientTls.clientAuth === undefined)
          closers.push(nodeCert.onChange(() => pools.setTls(clientTlsOptions(clientTls, nodeTls()))));
      }
      const dtab = new Var(Dtab.read(r.dtab));
      if (r.namerd !== undefined) closers.push(await startNamerdDtab(r, config, dtab, deps, metrics));
      if (r.dtabFile !== undefined) {
        const watcher = new DtabWatcher({
          file: r.dtabFile,
          dtab,
          initialText: r.dtab,
          logger: logger.child({ router: r.label }),
          ...(deps.dtabPollMs !== undefined ? { pollMs: deps.dtabPollMs } : {}),
          onReject: (message) => {
            rm.router.dtabRejected();
            deps.onDtabReject?.(r.label, message);
          },
        });
        watchers.set(r.label, watcher);
        closers.push(() => watcher.close());
      }
      const router = new Router({
        label: r.label,
        dtab,
        identify: buildIdentifiers(
          r.identifier.length > 0 ? r.identifier : [{ kind: 'io.l5d.header.token', header: 'Host' }],
          parsePath(r.dstPrefix ?? '/svc'),
          ingressDeps(r, config, deps, metrics, closers),
        ),
        balancer: r.client.loadBalancer.kind,
        interpreter,
        transforms,
        pools,
        params,
        clientPools,
        logger: logger.child({ router: r.label }),
        maxHops: r.maxHops,
        events: rm.router,
        ...(r.bindingBudget !== undefined ? { bindingBudget: r.bindingBudget } : {}),
        ...(r.bindingTimeoutMs !== undefined ? { bindingTimeoutMs: r.bindingTimeoutMs } : {}),
        ...resiliencePolicy(r),
        ...(r.service?.totalTimeoutMs !== undefined ? { totalTimeoutMs: r.service.totalTimeoutMs } : {}),
        ...(r.client.requestAttemptTimeoutMs !== undefined ? { requestAttemptTimeoutMs: r.client.requestAttemptTimeoutMs } : {}),
        failureAccrual: accrualConfig(r.client.failureAccrual),
        ...(r.drainingPeers !== undefined ? { drainingPeers: r.drainingPeers } : {}),
        bindingCache: bindingCacheLimits(r),
        ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
        ...(policyWatcher !== undefined
          ? {
              authorize: authorizer({
                policy: () => policyWatcher.policy,
                k8sPrefix,
                logger: logger.child({ router: r.label }),
                events: rm.router,
                ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
              }),
            }
          : {}),
      });
      const listeners: (Listener | H2Listener)[] = [];
      // protocol: h2 (h2-router.ts): client sessions and the HTTP/2 forward stage over the same router.
      const h2 = r.protocol === 'h2' ? h2Parts(r, router, metrics, rm) : undefined;
      if (h2 !== undefined) closers.push(() => void h2.sessions.close());
      const callers = new Callers({
        trustDomain,
        pods: podSource.pods,
        verifyClaims: podSource.verify,
        ...(config.identity?.claimWaitMs !== undefined ? { claimWaitMs: config.identity.claimWaitMs } : {}),
        ...(config.identity?.maxClaimWaits !== undefined ? { maxClaimWaits: config.identity.maxClaimWaits } : {}),
        events: rm.callers,
      });
      for (const s of r.servers) {
        const direction = serverDirection(s, r.label);
        // The outbound port serves this node's pods, the node and loopback, and the configured
        // CIDRs; an inbound (mTLS) port is guarded by its client certificates instead.
        const guard =
          direction === 'outbound' && s.localSourcesOnly !== false
            ? new SourceGuard({
                nodeName,
                pods: podSource.pods,
                nodeAddresses: ownAddresses,
                ...(s.allowedSourceCidrs !== undefined ? { extraCidrs: s.allowedSourceCidrs } : {}),
                ...(s.sourceWaitMs !== undefined ? { waitMs: s.sourceWaitMs } : {}),
                observe: (ip) => void snat.observe(ip),
              })
            : undefined;
        if (guard !== undefined && !podSource.verify) {
          logger.warn(
            { router: r.label, port: s.port },
            "no pod watch (no io.l5d.k8s namer, or identity.podWatch: false): this plaintext port admits only loopback, the node's addresses and allowedSourceCidrs",
          );
        }
        if (direction === 'inbound' && s.tls === undefined) {
          logger.warn({ router: r.label, port: s.port }, 'inbound server without TLS: peers are not authenticated, so no l5d-client-id and no workload claims');
        }
        if (s.tls !== undefined && !s.tls.requireClientAuth) {
          logger.warn({ router: r.label, port: s.port }, 'TLS without requireClientAuth: peers are not verified');
        }
        if (h2 !== undefined) {
          const hl = await startH2Listener(router, h2, s, { direction, guard, callers, rm, logger, clock: deps.clock, node: nodeCert?.current });
          started.push(hl);
          listeners.push(hl);
          const h2Tls = s.tls;
          if (h2Tls !== undefined) {
            closers.push(
              watchTls(
                serverTlsFiles(h2Tls),
                () => hl.setSecureContext(serverTlsOptions(h2Tls, nodeCert?.current)),
                `router ${r.label} server :${s.port}`,
                metrics.identity,
                logger,
                deps.tlsPollMs,
              ),
            );
            if (nodeCert !== undefined && h2Tls.certPath === undefined) {
              closers.push(nodeCert.onChange((c) => hl.setSecureContext(serverTlsOptions(h2Tls, c))));
            }
          }
          logger.info({ router: r.label, address: hl.address, direction, protocol: 'h2' }, 'router listening');
          continue;
        }
        const l = await new Listener(
          router,
          {
            direction,
            ip: s.ip,
            port: s.port,
            ...(s.tls ? { tls: serverTlsOptions(s.tls, nodeCert?.current) } : {}),
            ...(s.headersTimeoutMs !== undefined ? { headersTimeoutMs: s.headersTimeoutMs } : {}),
            ...(s.idleTimeoutMs !== undefined ? { idleTimeoutMs: s.idleTimeoutMs } : {}),
            ...(s.maxHeaderBytes !== undefined ? { maxHeaderSize: s.maxHeaderBytes } : {}),
            ...(s.tls?.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: s.tls.handshakeTimeoutMs } : {}),
            ...(s.tls?.maxPendingHandshakes !== undefined ? { maxPendingHandshakes: s.tls.maxPendingHandshakes } : {}),
            ...(s.tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: s.tunnelIdleTimeoutMs } : {}),
            ...(s.maxConnections !== undefined ? { maxConnections: s.maxConnections } : {}),
            ...(s.maxConnectionsPerSource !== undefined ? { maxConnectionsPerSource: s.maxConnectionsPerSource } : {}),
            ...(s.maxHeaders !== undefined ? { maxHeaders: s.maxHeaders } : {}),
            ...(s.maxPipelinedRequests !== undefined ? { maxPipelinedRequests: s.maxPipelinedRequests } : {}),
            ...(s.clearContext === true ? { clearContext: true } : {}),
            ...(guard !== undefined ? { sourceGuard: guard } : {}),
            ...(accessLog !== undefined ? { accessLog } : {}),
            callers,
            metrics: rm.listener,
          },
          logger,
        ).start();
        started.push(l);
        listeners.push(l);
        const serverTls = s.tls;
        if (serverTls !== undefined) {
          closers.push(
            watchTls(
              serverTlsFiles(serverTls),
              () => l.setSecureContext(serverTlsOptions(serverTls, nodeCert?.current)),
              `router ${r.label} server :${s.port}`,
              metrics.identity,
              logger,
              deps.tlsPollMs,
            ),
          );
        }
        if (nodeCert !== undefined && serverTls !== undefined && serverTls.certPath === undefined) {
          closers.push(nodeCert.onChange((c) => l.setSecureContext(serverTlsOptions(serverTls, c))));
        }
        logger.info({ router: r.label, address: l.address, direction }, 'router listening');
      }
      routers.push({ label: r.label, router, listeners });
    }
  } catch (err) {
    await Promise.all(started.map((l) => l.close(0)));
    closers.forEach((c) => c());
    await Promise.all(poolsList.map((p) => p.close()));
    for (const n of namers) await n.close?.();
    await podSource.stop();
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = (graceArg?: number, announceMs?: number): Promise<void> => {
    const graceMs = graceArg ?? config.shutdownGraceMs;
    closing ??= (async () => {
      admin.ready = false;
      const announce = announceMs ?? (graceArg === undefined ? (config.drainAnnounceMs ?? DEFAULT_DRAIN_ANNOUNCE_MS) : 0);
      const announcing = routers.flatMap((r) => r.listeners.filter((l) => l.announce()));
      if (announce > 0 && announcing.length > 0) {
        logger.info({ announceMs: announce }, 'announcing the drain to peer routers');
        await new Promise((resolve) => setTimeout(resolve, announce));
      }
      await Promise.all(routers.flatMap((r) => r.listeners.map((l) => l.close(graceMs))));
      for (const r of routers) r.router.close();
      closers.forEach((c) => c());
      await Promise.all(poolsList.map((p) => p.close()));
      for (const n of namers) await n.close?.();
      await podSource.stop();
      await admin.close();
    })();
    return closing;
  };
  const admin = new AdminServer({ routers, interpreter, config, metrics, shutdown: () => close() }, logger);
  installLinkerd1Admin(admin, { metrics, routers, prometheus: config.telemetry?.prometheus, accessLogs });
  for (const n of namers) {
    const state = n.stateJson?.bind(n);
    if (state !== undefined) admin.route(`/namer_state/${n.kind}.json`, (_req, res) => sendJson(res, state()));
  }
  admin.route('/authz/callers.json', (_req, res) =>
    sendJson(res, {
      policy: policyWatcher !== undefined,
      routers: routers.map((r) => ({ label: r.label, destinations: metrics.router(r.label).router.authzCallers.view() })),
    }),
  );
  {
    const allowAll = Policy.allowAll();
    admin.route('/authz/explain.json', (_req, res, url) => explainJson(res, policyWatcher?.policy ?? allowAll, policyWatcher !== undefined, url, k8sPrefix));
  }
  // Ready once every Kubernetes namer has listed the namespaces the routers' own config watches
  // (transformers bind at start). Namespaces a request names later never make a node unready.
  const namersReady = namers.flatMap((n) => (n.startupReadiness !== undefined ? [n.startupReadiness()] : []));
  // The pod watch too: until it has listed, local pods cannot be told from strangers.
  // And, with identity.issuer, a node certificate valid now: without one peers refuse this router.
  admin.readyCheck = () => podSource.pods.synced && namersReady.every((ready) => ready()) && (nodeCert === undefined || nodeCert.valid());
  nodeCert?.start();
  metrics.reportState({
    routers: () => routers.map((r) => ({ label: r.label, bindings: r.router.bindingCacheSize })),
    interpreter: () => ({ lookups: interpreter.lookupCount, bindings: interpreter.bindingCount }),
    namers: () => [...namers.flatMap((n) => (n.stats !== undefined ? [{ kind: n.kind, ...n.stats() }] : [])), { kind: 'inet', ...interpreter.inetStats() }],
    pods: () => (podSource.pods instanceof PodIndex ? { conflictsSeen: podSource.pods.conflictsSeen, conflictedIps: podSource.pods.conflictedIps } : undefined),
  });
  const evictIdle = (): void => {
    for (const r of routers) r.router.evictIdle();
    for (const n of namers) n.evictIdle?.();
    interpreter.evictIdle();
  };
  await admin.start();
  admin.ready = true;
  logger.info({ address: admin.address }, 'admin listening');
  return { routers, interpreter, config, admin, dtabWatchers: watchers, metrics, policy: policyWatcher, nodeCertificate: nodeCert, evictIdle, close };
}
