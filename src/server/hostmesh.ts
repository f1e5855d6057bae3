// Starts a whole hostmesh process from its config: namers, the interpreter, every router with its
// listeners, and the admin server; returns a handle whose close() drains gracefully.

import { Dtab } from '../dtab/dtab.js';
import { Path } from '../dtab/path.js';
import { parsePath } from '../dtab/parse.js';
import type { HostmeshConfig, RouterConfig, TransformerConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Endpoint, Namer } from '../namer/addr.js';
import { FsNamer } from '../namer/fs-namer.js';
import { NameInterpreter } from '../namer/interpreter.js';
import { Var } from '../namer/var.js';
import { EndpointPools } from '../router/endpoint-pool.js';
import { Router } from '../router/router.js';
import { daemonSet, localNode, type EndpointTransform } from '../router/transformers.js';
import { AdminServer } from '../admin/admin-server.js';
import { Listener } from './listener.js';
import { clientTlsOptions, serverTlsOptions } from './tls-files.js';

export interface HostmeshDeps {
  readonly logger: Logger;
  /** Extra namers (tests), or factories for kinds this module does not build itself. */
  readonly namers?: readonly Namer[];
  readonly namerFactory?: (cfg: HostmeshConfig['namers'][number], logger: Logger) => Namer | undefined;
}

export interface RunningRouter {
  readonly label: string;
  readonly router: Router;
  readonly listeners: readonly Listener[];
}

export interface Hostmesh {
  readonly routers: readonly RunningRouter[];
  readonly interpreter: NameInterpreter;
  readonly admin: AdminServer;
  readonly config: HostmeshConfig;
  close(graceMs?: number): Promise<void>;
}

function buildNamers(config: HostmeshConfig, deps: HostmeshDeps): Namer[] {
  const namers: Namer[] = [...(deps.namers ?? [])];
  for (const cfg of config.namers) {
    const custom = deps.namerFactory?.(cfg, deps.logger);
    if (custom !== undefined) {
      namers.push(custom);
      continue;
    }
    if (cfg.kind === 'io.l5d.fs') {
      namers.push(new FsNamer({ rootDir: cfg.rootDir, prefix: parsePath(cfg.prefix), logger: deps.logger }));
    } else {
      throw new Error(`namer ${cfg.kind} is not available in this build`);
    }
  }
  return namers;
}

function buildTransforms(r: RouterConfig, config: HostmeshConfig, interpreter: NameInterpreter): { transforms: EndpointTransform[]; close: () => void } {
  const transforms: EndpointTransform[] = [];
  const closers: (() => void)[] = [];
  for (const t of r.transformers) {
    transforms.push(buildTransform(t, r, config, interpreter, closers));
  }
  return { transforms, close: () => closers.forEach((c) => c()) };
}

function buildTransform(t: TransformerConfig, r: RouterConfig, config: HostmeshConfig, interpreter: NameInterpreter, closers: (() => void)[]): EndpointTransform {
  switch (t.kind) {
    case 'io.l5d.k8s.localnode': {
      const node = config.nodeName ?? process.env['NODE_NAME'];
      if (node === undefined || node === '') {
        throw new Error(`router ${r.label}: io.l5d.k8s.localnode needs the node name: set nodeName in the config or NODE_NAME`);
      }
      return localNode(node);
    }
    case 'io.l5d.k8s.daemonset': {
      const ns = typeof t['namespace'] === 'string' ? t['namespace'] : 'default';
      const port = typeof t['port'] === 'string' ? t['port'] : 'incoming';
      const service = typeof t['service'] === 'string' ? t['service'] : 'hostmesh';
      const routersPath = typeof t['routers'] === 'string' ? parsePath(t['routers']) : new Path(['#', 'io.l5d.k8s', ns, port, service]);
      const binding = interpreter.bind(Dtab.empty, routersPath);
      closers.push(() => binding.close());
      return daemonSet(() => {
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
      });
    }
    default:
      throw new Error(`router ${r.label}: transformer ${t.kind} is not available in this build`);
  }
}

export async function startHostmesh(config: HostmeshConfig, deps: HostmeshDeps): Promise<Hostmesh> {
  const logger = deps.logger;
  const namers = buildNamers(config, deps);
  const interpreter = new NameInterpreter({ namers });
  const routers: RunningRouter[] = [];
  const closers: (() => void)[] = [];
  const poolsList: EndpointPools[] = [];
  const started: Listener[] = [];
  try {
    for (const r of config.routers) {
      const { transforms, close } = buildTransforms(r, config, interpreter);
      closers.push(close);
      const pools = new EndpointPools(r.client.tls ? clientTlsOptions(r.client.tls) : undefined);
      poolsList.push(pools);
      const router = new Router({
        label: r.label,
        dtab: new Var(Dtab.read(r.dtab)),
        interpreter,
        transforms,
        pools,
        logger: logger.child({ router: r.label }),
        maxHops: r.maxHops,
      });
      const listeners: Listener[] = [];
      for (const s of r.servers) {
        if (s.tls !== undefined && !s.tls.requireClientAuth) {
          logger.warn({ router: r.label, port: s.port }, 'TLS without requireClientAuth: peers are not verified');
        }
        const l = await new Listener(router, { ip: s.ip, port: s.port, ...(s.tls ? { tls: serverTlsOptions(s.tls) } : {}) }, logger).start();
        started.push(l);
        listeners.push(l);
        logger.info({ router: r.label, address: l.address }, 'router listening');
      }
      routers.push({ label: r.label, router, listeners });
    }
  } catch (err) {
    await Promise.all(started.map((l) => l.close(0)));
    closers.forEach((c) => c());
    await Promise.all(poolsList.map((p) => p.close()));
    for (const n of namers) await n.close?.();
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = (graceMs = config.shutdownGraceMs): Promise<void> => {
      closing ??= (async () => {
        admin.ready = false;
        await Promise.all(routers.flatMap((r) => r.listeners.map((l) => l.close(graceMs))));
        for (const r of routers) r.router.close();
        closers.forEach((c) => c());
        await Promise.all(poolsList.map((p) => p.close()));
        for (const n of namers) await n.close?.();
        await admin.close();
      })();
      return closing;
  };
  const admin = new AdminServer({ routers, interpreter, config, shutdown: () => close() }, logger);
  await admin.start();
  admin.ready = true;
  logger.info({ address: admin.address }, 'admin listening');
  return { routers, interpreter, config, admin, close };
}
