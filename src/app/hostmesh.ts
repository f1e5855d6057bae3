// The composition root: starts a whole hostmesh process from its config (namers, the interpreter,
// every router with its listeners, and the admin server) and returns a handle whose close()
// drains gracefully. The only place config becomes running objects; its parts live beside it
// (namers.ts, node.ts, transformers.ts, routers.ts, listeners.ts, identity.ts, admin-routes.ts,
// drain.ts).

import { AdminServer } from '../admin/admin-server.js';
import { loadPolicyFile, PolicyWatcher } from '../authz/policy-watcher.js';
import type { HostmeshConfig } from '../config/types.js';
import { every, systemClock } from '../core/clock.js';
import { DEFAULT_TRUST_DOMAIN } from '../identity/names.js';
import { podGateways, SnatDetector } from '../identity/snat-detector.js';
import { Metrics } from '../metrics/metrics.js';
import { NameInterpreter } from '../namer/interpreter.js';
import type { DtabWatcher } from '../server/dtab-watcher.js';
import type { NodeCertificate } from '../tls/node-certificate.js';
import { installAdminRoutes } from './admin-routes.js';
import type { AppContext } from './context.js';
import type { HostmeshDeps } from './deps.js';
import { drainListeners, drainPlan } from './drain.js';
import { nodeCertificateFor } from './identity.js';
import { buildNamers, wireNamerTransforms } from './namers.js';
import { buildPods, nodeAddresses, withNodeName } from './node.js';
import { startRouter, type RunningRouter } from './routers.js';

export { checkRouters } from './check.js';
export type { HostmeshDeps } from './deps.js';
export { DEFAULT_DRAIN_ANNOUNCE_MS } from './drain.js';
export type { RunningRouter } from './routers.js';

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
  const closers: (() => void)[] = [];
  wireNamerTransforms(config, namers, interpreter, closers);
  const podSource = buildPods(config, deps);
  // A CNI that SNATs pods through hostPort makes every pod look like the gateway: said loudly.
  const snat = new SnatDetector({ gateways: podGateways(), warn: (message, source) => logger.error({ source }, message), events: metrics.identity });
  const trustDomain = config.identity?.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  // identity.issuer: TLS blocks without certificate files take this node's issued certificate.
  const nodeCert = nodeCertificateFor(config, metrics, logger, deps.identityClock ?? deps.clock);
  if (nodeCert !== undefined) closers.push(() => nodeCert.close());
  if (policyWatcher !== undefined) closers.push(() => policyWatcher.close());
  // The /$/inet map is swept as it is used and by evictIdle(); this catches a map left idle.
  closers.push(every(deps.clock ?? systemClock, 30_000, () => interpreter.evictIdle()));
  const ctx: AppContext = {
    config,
    deps,
    logger,
    metrics,
    interpreter,
    podSource,
    ownAddresses: nodeAddresses(),
    snat,
    trustDomain,
    k8sPrefix,
    policyWatcher,
    nodeCert,
    nodeTls: nodeCert !== undefined ? () => ({ material: nodeCert.current, trustDomain }) : () => undefined,
    closers,
    started: [],
    pools: [],
    dtabWatchers: new Map(),
    accessLogs: new Map(),
  };
  const routers: RunningRouter[] = [];
  const closeRest = async (): Promise<void> => {
    closers.forEach((c) => c());
    await Promise.all(ctx.pools.map((p) => p.close()));
    for (const n of namers) await n.close?.();
    await podSource.stop();
  };
  try {
    for (const r of config.routers) routers.push(await startRouter(ctx, r));
  } catch (err) {
    await Promise.all(ctx.started.map((l) => l.close(0)));
    await closeRest();
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = (graceArg?: number, announceArg?: number): Promise<void> => {
    closing ??= (async () => {
      admin.ready = false;
      await drainListeners(routers, drainPlan(config, graceArg, announceArg), deps.clock ?? systemClock, logger);
      for (const r of routers) r.router.close();
      await closeRest();
      await admin.close();
    })();
    return closing;
  };
  const admin = new AdminServer({ routers, interpreter, config, metrics, shutdown: deps.shutdown ?? (() => close()) }, logger);
  installAdminRoutes(admin, ctx, routers, namers);
  nodeCert?.start();
  const evictIdle = (): void => {
    for (const r of routers) r.router.evictIdle();
    for (const n of namers) n.evictIdle?.();
    interpreter.evictIdle();
  };
  if (deps.adminListener !== false) await admin.start();
  admin.ready = true;
  if (deps.adminListener !== false) logger.info({ address: admin.address }, 'admin listening');
  return { routers, interpreter, config, admin, dtabWatchers: ctx.dtabWatchers, metrics, policy: policyWatcher, nodeCertificate: nodeCert, evictIdle, close };
}
