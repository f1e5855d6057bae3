// One configured router as a running Router: its transformers, endpoint pools and per-prefix
// settings, its dtab (inline, a watched dtabFile, or namerd's), its identifiers (with their
// Ingress watches), authorization, and its listeners.

import { Dtab } from '../dtab/dtab.js';
import { parsePath } from '../dtab/parse.js';
import type { IdentifierConfig, RouterConfig } from '../config/types.js';
import { K8sClient } from '../k8s/client.js';
import { resolveConnection } from '../k8s/connection.js';
import { leanClientAvailable } from '../core/h1-pool.js';
import type { Logger } from '../log.js';
import { Var } from '../namer/var.js';
import { authorizer } from '../router/stages/authorize/authorize.js';
import { ClientPools } from '../router/stages/endpoint/client-pools.js';
import { serverDirection } from '../router/context.js';
import { clientLimits, EndpointPools } from '../router/stages/endpoint/endpoint-pool.js';
import { buildIdentifiers, type IdentifierDeps } from '../router/stages/identify/identifiers.js';
import { IngressSource } from '../router/stages/identify/ingress.js';
import { Router } from '../router/router.js';
import { DEFAULT_BINDING_CACHE, type BindingCacheLimits } from '../router/stages/logical/logical.js';
import { RouterParams } from '../router/settings/static-params.js';
import { AccessLog } from '../server/access-log.js';
import type { AccessLogConfig } from '../config/linkerd1-observability.js';
import { DtabWatcher } from '../server/dtab-watcher.js';
import type { H2Listener } from '../server/h2-listener.js';
import type { Listener } from '../server/listener.js';
import { clientTlsFiles, clientTlsOptions } from '../tls/tls-files.js';
import { watchTls } from '../tls/reload.js';
import type { AppContext } from './context.js';
import type { HostmeshDeps } from './deps.js';
import { startListeners } from './listeners.js';
import { k8sWhere } from './k8s-api.js';
import { startNamerdDtab } from './namers.js';
import { buildTransforms } from './transformers.js';

export interface RunningRouter {
  readonly label: string;
  readonly router: Router;
  readonly listeners: readonly (Listener | H2Listener)[];
}

/** The identifiers a router without an `identifier` key uses. */
export const DEFAULT_IDENTIFIERS: readonly IdentifierConfig[] = [{ kind: 'io.l5d.header.token', header: 'Host' }];

/** Builds the router `r` and starts its listeners; everything it opens is registered on ctx. */
export async function startRouter(ctx: AppContext, r: RouterConfig): Promise<RunningRouter> {
  const { config, deps, logger, metrics, interpreter, closers, nodeCert, nodeTls, policyWatcher, k8sPrefix } = ctx;
  const { transforms, close } = buildTransforms(r.label, r.transformers, config, interpreter, {
    pods: ctx.podSource.pods,
    verify: ctx.podSource.verify,
    k8sPrefix,
    metrics,
    logger,
  });
  closers.push(close);
  const rm = metrics.router(r.label);
  const accessLog = r.accessLog !== undefined ? openAccessLog(r.label, r.accessLog, logger, deps.clock) : undefined;
  if (accessLog !== undefined) {
    ctx.accessLogs.set(r.label, accessLog);
    closers.push(() => void accessLog.close());
  }
  if (JSON.stringify(r.service ?? {}).includes('"retries"') && r.servers.every((s) => serverDirection(s, r.label) === 'inbound')) {
    // README "Retries": an app's answer is retried at one hop only, the outgoing router's.
    logger.warn(
      { router: r.label },
      "service retries on a router whose servers are all inbound are not applied: the outgoing router retries apps' answers (requeues still apply)",
    );
  }
  if (r.client.engine !== 'undici' && r.protocol === 'http' && !leanClientAvailable()) {
    logger.warn(
      { router: r.label },
      "client.engine lean needs Node's HTTP parser binding (_http_common), which this Node lacks: undici's Pool carries requests instead (about a third more CPU per request; README, client.engine)",
    );
  }
  const poolEvents = rm.router.pools;
  const pools = new EndpointPools(
    r.client.tls ? clientTlsOptions(r.client.tls, nodeTls()) : undefined,
    { limits: clientLimits(r.client), ...(deps.clock !== undefined ? { clock: deps.clock } : {}) },
    poolEvents,
  );
  ctx.pools.push(pools);
  // Linkerd 1's io.l5d.static configs: settings per logical name and bound id, pools per client TLS.
  const { configs: _prefixes, ...clientGlobal } = r.client;
  // The router's typed settings, resolved once: its own and per prefix, read by every stage.
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
    ctx.dtabWatchers.set(r.label, watcher);
    closers.push(() => watcher.close());
  }
  const router = new Router({
    label: r.label,
    dtab,
    identify: buildIdentifiers(r.identifier.length > 0 ? r.identifier : DEFAULT_IDENTIFIERS, parsePath(r.dstPrefix ?? '/svc'), ingressDeps(ctx, r)),
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
  const listeners = await startListeners(ctx, r, router, accessLog);
  return { label: r.label, router, listeners };
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

type IngressIdentifier = Extract<IdentifierConfig, { kind: 'io.l5d.ingress' }>;

/**
 * The io.l5d.ingress identifiers' Ingress watches for one router: each config gets its own watch
 * (its namespace, class, bounds) on its API (host/port, else the first io.l5d.k8s namer's, else
 * in-cluster/kubeconfig), started now and stopped at close.
 */
function ingressDeps(ctx: AppContext, r: RouterConfig): IdentifierDeps {
  const { config, deps, metrics } = ctx;
  return {
    ingress: (given) => {
      // The router passes back one of r.identifier, which the schema checked (config/kinds.ts).
      const cfg = given as IngressIdentifier;
      const connection = resolveConnection(k8sWhere(config, cfg.host, cfg.port), deps.env ?? process.env);
      const logger = deps.logger.child({ router: r.label, identifier: 'io.l5d.ingress' });
      logger.info({ api: connection.describe, namespace: cfg.namespace ?? '(all)' }, 'watching Ingress resources');
      const source = new IngressSource({
        client: new K8sClient(connection, { connections: 2 }),
        ...(cfg.namespace !== undefined ? { namespace: cfg.namespace } : {}),
        logger,
        ...(deps.k8sBackoff !== undefined ? { backoff: deps.k8sBackoff } : {}),
        cls: cfg.ingressClassAnnotation ?? 'linkerd',
        ignoreDefaultBackends: cfg.ignoreDefaultBackends === true,
        ...(cfg.maxIngresses !== undefined ? { maxIngresses: cfg.maxIngresses } : {}),
        ...(cfg.maxRulesPerIngress !== undefined ? { maxRulesPerIngress: cfg.maxRulesPerIngress } : {}),
        events: metrics.router(r.label).router,
      }).start();
      ctx.closers.push(() => void source.stop());
      return (reqHost, path) => source.lookup(reqHost, path);
    },
  };
}

/** A router's httpAccessLog, its failures logged once per streak. */
function openAccessLog(label: string, cfg: AccessLogConfig, logger: Logger, clock: HostmeshDeps['clock']): AccessLog {
  logger.info({ router: label, path: cfg.path, rollPolicy: cfg.rollPolicy }, 'writing the access log');
  return new AccessLog(cfg, {
    ...(clock !== undefined ? { clock } : {}),
    onError: (err) => logger.warn({ router: label, path: cfg.path, err: err.message }, 'access log write failed: lines dropped until a write succeeds'),
  });
}
