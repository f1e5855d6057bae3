// The namers a config names (io.l5d.k8s, io.l5d.fs, io.l5d.rewrite), their transformers, and
// namerd's dtab store (interpreter io.l5d.namerd.k8s). Where the Kubernetes API is for every
// watch: k8s-api.ts.

import type { Dtab } from '../dtab/dtab.js';
import { parsePath } from '../dtab/parse.js';
import type { HostmeshConfig, RouterConfig } from '../config/types.js';
import { K8sClient } from '../k8s/client.js';
import { resolveConnection } from '../k8s/connection.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Namer } from '../namer/addr.js';
import { FsNamer } from '../namer/fs-namer.js';
import type { NameInterpreter } from '../namer/interpreter.js';
import { K8S_MAX_NAMESPACES, K8sNamer, k8sConnectionsFor } from '../namer/k8s/k8s-namer.js';
import { RewriteNamer } from '../namer/rewrite-namer.js';
import { TransformingNamer } from '../namer/transforming-namer.js';
import type { Var } from '../namer/var.js';
import { NamerdDtab } from '../server/namerd-dtab.js';
import type { HostmeshDeps } from './deps.js';
import { nodeAddresses } from './node.js';
import { k8sWhere } from './k8s-api.js';
import { buildTransforms } from './transformers.js';

export function buildNamers(config: HostmeshConfig, deps: HostmeshDeps): Namer[] {
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
export function wireNamerTransforms(config: HostmeshConfig, namers: readonly Namer[], interpreter: NameInterpreter, closers: (() => void)[]): void {
  for (const cfg of config.namers) {
    if (cfg.kind === 'io.l5d.rewrite' || cfg.transformers === undefined || cfg.transformers.length === 0) continue;
    const namer = namers.find((n) => n instanceof TransformingNamer && n.prefix.show() === parsePath(cfg.prefix).show());
    if (!(namer instanceof TransformingNamer)) continue;
    const built = buildTransforms(`namer ${cfg.prefix}`, cfg.transformers, config, interpreter);
    closers.push(built.close);
    namer.setTransforms(built.transforms);
  }
}

/**
 * A namerd interpreter's dtab, read from namerd's Kubernetes storage (server/namerd-dtab.ts) before
 * the router's listeners open: a router whose dtab does not exist does not start.
 */
export async function startNamerdDtab(r: RouterConfig, config: HostmeshConfig, dtab: Var<Dtab>, deps: HostmeshDeps, metrics: Metrics): Promise<() => void> {
  const n = r.namerd as NonNullable<RouterConfig['namerd']>;
  const client = new K8sClient(resolveConnection(k8sWhere(config, n.host, n.port), deps.env ?? process.env), { connections: 2 });
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
