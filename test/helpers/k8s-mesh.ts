// A two-node mesh whose names resolve through the Kubernetes API (the test API server): routers
// node-a (127.0.0.2) and node-b (127.0.0.3) with the shipped topology (outgoing + daemonset,
// incoming + localnode, mutual TLS), and "pods": HTTP servers on other loopback addresses that
// answer their own name, published as EndpointSlices tagged with their node.

import './test-keys.js'; // 1024-bit RSA keys for the PKI made here (test-keys.ts): its users do not test key size
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig, RouterConfig } from '../../src/config/types.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import type { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, pod, service } from './k8s.js';
import { freePorts } from './ports.js';

export const NODES = [
  { name: 'node-a', ip: '127.0.0.2' },
  { name: 'node-b', ip: '127.0.0.3' },
] as const;

export interface Pod {
  readonly name: string;
  readonly ip: string;
  readonly node: string;
  readonly server: http.Server;
}

export interface K8sMesh {
  readonly meshes: readonly Hostmesh[];
  /** h2Outgoing/h2Incoming: the `protocol: h2` routers, when started with `h2: true`. */
  readonly ports: { outgoing: number; incoming: number; admin: number; h2Outgoing?: number; h2Incoming?: number };
  readonly pki: { ca: string; nodes: Map<string, { cert: string; key: string }> };
  /**
   * Starts pods answering `<pod name>` on `port` (same port for all, as one slice needs), and
   * publishes each as a Pod (namespace `default` unless given): the incoming router delivers only
   * to pods its pod watch knows on its node, in the Service's namespace.
   */
  startPods(specs: readonly { name: string; ip: string; node: string; namespace?: string }[], port: number): Promise<Pod[]>;
  close(): Promise<void>;
}

const DTAB = '/srv => /#/io.l5d.k8s/default/http; /host => /srv; /svc => /host;';

function nodeConfig(
  node: { name: string; ip: string },
  api: FakeApiServer,
  ports: K8sMesh['ports'],
  certs: { ca: string; cert: string; key: string },
): HostmeshConfig {
  const outgoing: RouterConfig = {
    protocol: 'http',
    label: 'outgoing',
    dtab: DTAB,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    transformers: [{ kind: 'io.l5d.k8s.daemonset', namespace: 'hostmesh', port: 'incoming', service: 'hostmesh' }],
    servers: [{ ip: node.ip, port: ports.outgoing }],
    client: {
      loadBalancer: { kind: 'roundRobin' },
      tls: { commonName: 'hostmesh', trustCerts: [certs.ca], clientAuth: { certPath: certs.cert, keyPath: certs.key } },
    },
    maxHops: 64,
  };
  const incoming: RouterConfig = {
    protocol: 'http',
    label: 'incoming',
    dtab: DTAB,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    transformers: [{ kind: 'io.l5d.k8s.localnode' }],
    servers: [{ ip: node.ip, port: ports.incoming, tls: { certPath: certs.cert, keyPath: certs.key, caCertPath: certs.ca, requireClientAuth: true } }],
    client: { loadBalancer: { kind: 'roundRobin' } },
    maxHops: 64,
  };
  const routers = [outgoing, incoming];
  if (ports.h2Outgoing !== undefined && ports.h2Incoming !== undefined) {
    // The shipped h2-outgoing/h2-incoming pair (k8s/base/config/config.yaml): h2c from apps, h2 over mTLS between routers.
    const token = [{ kind: 'io.l5d.header.token', header: ':authority' }] as RouterConfig['identifier'];
    routers.push(
      {
        ...outgoing,
        protocol: 'h2',
        label: 'h2-outgoing',
        identifier: token,
        transformers: [{ kind: 'io.l5d.k8s.daemonset', namespace: 'hostmesh', port: 'h2-incoming', service: 'hostmesh' }],
        servers: [{ ip: node.ip, port: ports.h2Outgoing }],
      },
      { ...incoming, protocol: 'h2', label: 'h2-incoming', identifier: token, servers: [{ ...incoming.servers[0], port: ports.h2Incoming }] } as RouterConfig,
    );
  }
  return {
    admin: { ip: node.ip, port: ports.admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.k8s', prefix: '/io.l5d.k8s', host: '127.0.0.1', port: api.port, allowLoopbackEndpoints: true }],
    routers,
    nodeName: node.name,
    shutdownGraceMs: 500,
    baseDir: process.cwd(),
  };
}

/** Publishes the routers as the `hostmesh/hostmesh` headless Service (ports incoming, admin). */
export function publishRouters(api: FakeApiServer, ports: K8sMesh['ports']): void {
  const h2 = ports.h2Incoming === undefined ? [] : [{ name: 'h2-incoming', port: ports.h2Incoming }];
  api.apply(service('hostmesh', 'hostmesh', [{ name: 'incoming', port: ports.incoming }, { name: 'admin', port: ports.admin }, ...h2]));
  api.apply(
    endpointSlice(
      'hostmesh',
      'hostmesh-abc',
      'hostmesh',
      NODES.map((n) => ({ ip: n.ip, node: n.name })),
      [{ name: 'incoming', port: ports.incoming }, { name: 'admin', port: ports.admin }, ...h2],
    ),
  );
}

/** `configure` edits each node's config before it starts (e.g. to add an authz policy); `h2` adds the h2 routers. */
export async function startK8sMesh(
  api: FakeApiServer,
  options: { configure?: (config: HostmeshConfig, node: string) => HostmeshConfig; h2?: boolean } = {},
): Promise<K8sMesh> {
  const [outgoing, incoming, admin, h2Outgoing, h2Incoming] = (await freePorts(NODES[0].ip, options.h2 === true ? 5 : 3)) as number[] as [
    number,
    number,
    number,
    number?,
    number?,
  ];
  const ports: K8sMesh['ports'] = { outgoing, incoming, admin, ...(h2Outgoing !== undefined && h2Incoming !== undefined ? { h2Outgoing, h2Incoming } : {}) };
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-k8s-'));
  const pki = await writeDemoPki(dir, 'hostmesh', NODES);
  publishRouters(api, ports);
  const meshes: Hostmesh[] = [];
  const pods: Pod[] = [];
  for (const node of NODES) {
    const certs = pki.nodes.get(node.name) as { cert: string; key: string };
    const config = nodeConfig(node, api, ports, { ca: pki.ca, ...certs });
    meshes.push(await startHostmesh(options.configure?.(config, node.name) ?? config, { logger: silentLogger(), k8sBackoff: { baseMs: 50, capMs: 500 } }));
  }
  return {
    meshes,
    ports,
    pki,
    async startPods(specs, port) {
      const started: Pod[] = [];
      for (const s of specs) {
        const server = http.createServer((req, res) => {
          req.resume();
          res.setHeader('x-pod', s.name);
          res.end(s.name);
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, s.ip, () => resolve());
        });
        started.push({ ...s, server });
        api.apply(pod(s.namespace ?? 'default', s.name, s.node, s.ip));
      }
      pods.push(...started);
      return started;
    },
    async close() {
      await Promise.all(meshes.map((m) => m.close(200)));
      await Promise.all(
        pods.map((p) => {
          p.server.closeAllConnections();
          return new Promise((r) => p.server.close(r));
        }),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}
