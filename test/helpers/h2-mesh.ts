// A two-node h2 mesh for gRPC tests: node-a (127.0.0.2) and node-b (127.0.0.3), each with an
// outgoing h2c router (daemonset transformer) and an incoming h2 router over mTLS (localnode), an fs
// namer directory, per-node certificates and an authorization policy; greeters register on a node.

import './test-keys.js'; // 1024-bit RSA keys for the PKI made here (test-keys.ts): its users do not test key size
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig, RouterConfig } from '../../src/config/types.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { PodIndex } from '../../src/identity/pod-directory.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from './ports.js';

export const A = '127.0.0.2';
export const B = '127.0.0.3';
const NODES = [
  { name: 'node-a', ip: A },
  { name: 'node-b', ip: B },
] as const;

/** A policy that lets the nodes call `paths` of every fs-named service and denies everything else. */
export function nodesMayCall(paths: readonly string[]): string {
  return `namespaces:
  "*": deny
rules:
  - name: nodes-call
    from: [{node: "*"}]
    to:
      - name: "/#/io.l5d.fs/*"
        paths: [${paths.join(', ')}]
`;
}

/** Nodes may call the greeter's methods but Secret; everything else is denied. */
export const H2_POLICY = nodesMayCall([
  '/helloworld.Greeter/SayHello',
  '/helloworld.Greeter/Slow',
  '/helloworld.Greeter/Lots',
  '/helloworld.Greeter/Collect',
  '/helloworld.Greeter/Chat',
]);

export interface H2Mesh {
  readonly meshes: readonly Hostmesh[];
  readonly ports: { outgoing: number; incoming: number; admin: number };
  readonly dir: string;
  /** node-a's outgoing router: what an app on node-a dials. */
  readonly target: string;
  /** Writes the fs namer entry `name` -> host:port on `node`. */
  register(name: string, host: string, port: number, node?: 'node-a' | 'node-b'): Promise<void>;
  close(): Promise<void>;
}

export interface H2MeshOptions {
  readonly policy?: string;
  readonly idleTimeoutMs?: number;
  readonly maxResetsPerSession?: number;
  readonly maxConcurrentStreams?: number;
  readonly service?: RouterConfig['service'];
}

export async function startH2Mesh(o: H2MeshOptions = {}): Promise<H2Mesh> {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-h2-'));
  const disco = join(dir, 'disco');
  await mkdir(disco);
  const [outgoing, incoming, admin] = (await freePorts(A, 3)) as [number, number, number];
  const ports = { outgoing, incoming, admin };
  await writeFile(join(disco, 'hostmesh-h2'), NODES.map((n) => `${n.ip} ${incoming} node=${n.name}`).join('\n') + '\n');
  await writeFile(join(dir, 'policy.yaml'), o.policy ?? H2_POLICY);
  const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', NODES);
  const pods = new PodIndex();
  pods.markSynced();
  const meshes: Hostmesh[] = [];
  const limits = {
    ...(o.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
    h2: {
      ...(o.maxResetsPerSession !== undefined ? { maxResetsPerSession: o.maxResetsPerSession } : {}),
      ...(o.maxConcurrentStreams !== undefined ? { maxConcurrentStreamsPerConnection: o.maxConcurrentStreams } : {}),
    },
  };
  try {
    for (const node of NODES) {
      const certs = pki.nodes.get(node.name) as { cert: string; key: string };
      const dtab = '/svc => /#/io.l5d.fs;';
      const identifier = [{ kind: 'io.l5d.header.path' as const, segments: 1 }];
      const out: RouterConfig = {
        protocol: 'h2',
        label: 'h2-outgoing',
        dtab,
        identifier,
        transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh-h2' }],
        servers: [{ ip: node.ip, port: outgoing, direction: 'outbound', ...limits }],
        client: {
          loadBalancer: { kind: 'p2c' },
          tls: { commonName: 'hostmesh', trustCerts: [pki.ca], clientAuth: { certPath: certs.cert, keyPath: certs.key } },
        },
        maxHops: 64,
        ...(o.service !== undefined ? { service: o.service } : {}),
      };
      const inc: RouterConfig = {
        protocol: 'h2',
        label: 'h2-incoming',
        dtab,
        identifier,
        transformers: [{ kind: 'io.l5d.k8s.localnode' }],
        servers: [
          {
            ip: node.ip,
            port: incoming,
            direction: 'inbound',
            tls: { certPath: certs.cert, keyPath: certs.key, caCertPath: pki.ca, requireClientAuth: true },
            ...limits,
          },
        ],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      };
      const config: HostmeshConfig = {
        admin: { ip: node.ip, port: admin, allowRemoteShutdown: false },
        namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: disco }],
        routers: [out, inc],
        nodeName: node.name,
        shutdownGraceMs: 500,
        baseDir: dir,
        authz: { policyFile: join(dir, 'policy.yaml') },
      };
      meshes.push(await startHostmesh(config, { logger: silentLogger(), pods }));
    }
  } catch (err) {
    await Promise.all(meshes.map((m) => m.close(0)));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    meshes,
    ports,
    dir,
    target: `${A}:${outgoing}`,
    async register(name, host, port, node = 'node-b') {
      await writeFile(join(disco, name), `${host} ${port} node=${node}\n`);
    },
    async close() {
      await Promise.all(meshes.map((m) => m.close(200)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
