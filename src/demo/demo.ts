// `hostmesh demo`: a whole mesh on loopback with no cluster: routers node-a (127.0.0.2) and node-b
// (127.0.0.3), per-node certificates made on the spot, an fs namer directory, and sample apps.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostmeshConfig, RouterConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log.js';
import { startHostmesh, type Hostmesh } from '../app/hostmesh.js';
import { PodIndex, type PodInfo } from '../identity/pod-directory.js';
import { startGreeterApp, startHelloApp, startTextApp, type App } from './apps.js';
import { writeDemoPki } from './demo-pki.js';

export const MESH_NAME = 'hostmesh';

export interface DemoNode {
  readonly name: string;
  readonly ip: string;
}

export const NODES: readonly DemoNode[] = [
  { name: 'node-a', ip: '127.0.0.2' },
  { name: 'node-b', ip: '127.0.0.3' },
];

export interface DemoPorts {
  readonly outgoing: number;
  readonly incoming: number;
  readonly admin: number;
  /** The `protocol: h2` routers (gRPC); without both, the demo runs no h2 routers. */
  readonly h2Outgoing?: number;
  readonly h2Incoming?: number;
}

export const DEFAULT_PORTS: Required<DemoPorts> = { outgoing: 4140, incoming: 4141, admin: 9990, h2Outgoing: 4240, h2Incoming: 4241 };

export interface Demo {
  readonly meshes: readonly Hostmesh[];
  readonly apps: readonly App[];
  readonly dir: string;
  readonly curlLines: readonly string[];
  close(): Promise<void>;
}

const DTAB = '/svc => /#/io.l5d.fs;';

/**
 * The demo's "cluster": client pods on loopback addresses of their own, so the routers can tell
 * workloads apart (curl --interface <ip> stands in for the pod). Both routers share this view, as
 * two nodes' pod watches would.
 */
const DEMO_PODS: readonly PodInfo[] = [
  { namespace: 'shop', name: 'web-7f9c', uid: 'demo-1', nodeName: 'node-a', serviceAccount: 'web', ips: ['127.0.0.20'], hostNetwork: false },
  { namespace: 'shop', name: 'batch-2k4d', uid: 'demo-2', nodeName: 'node-a', serviceAccount: 'batch', ips: ['127.0.0.21'], hostNetwork: false },
  { namespace: 'shop', name: 'api-9x1z', uid: 'demo-3', nodeName: 'node-b', serviceAccount: 'api', ips: ['127.0.0.30'], hostNetwork: false },
];

/**
 * The demo's authorization policy: deny by default; the web pod may call every service, the batch
 * pod only world-v2, and the nodes themselves (hello, an operator's curl from the node's address)
 * everything. So `curl --interface 127.0.0.21 ... http://world/` shows a 403.
 */
const DEMO_POLICY = `# The demo's policy (docs/authz.md): deny unless a rule allows.
namespaces:
  "*": deny
rules:
  - name: web-calls-anything
    from: [{namespace: shop, serviceAccount: web}]
    to: [{name: "/#/io.l5d.fs/*"}]
  - name: batch-calls-world-v2
    from: [{namespace: shop, serviceAccount: batch}]
    to: [{name: /#/io.l5d.fs/world-v2}]
  - name: nodes-call-anything
    from: [{node: "*"}]
    to: [{name: "/#/io.l5d.fs/*"}]
`;

function demoPods(): PodIndex {
  const pods = new PodIndex();
  for (const p of DEMO_PODS) pods.upsert(p);
  pods.markSynced();
  return pods;
}

function nodeConfig(node: DemoNode, ports: DemoPorts, dir: string, certs: { ca: string; cert: string; key: string }): HostmeshConfig {
  const outgoing: RouterConfig = {
    protocol: 'http',
    label: 'outgoing',
    dtab: DTAB,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    // Each destination pod is replaced by the router on its node (listed in the `hostmesh` file).
    transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh' }],
    servers: [{ ip: node.ip, port: ports.outgoing }],
    client: {
      loadBalancer: { kind: 'p2c' },
      tls: { commonName: MESH_NAME, trustCerts: [certs.ca], clientAuth: { certPath: certs.cert, keyPath: certs.key } },
    },
    maxHops: 64,
  };
  const incoming: RouterConfig = {
    protocol: 'http',
    label: 'incoming',
    dtab: DTAB,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    transformers: [{ kind: 'io.l5d.k8s.localnode' }],
    servers: [
      {
        ip: node.ip,
        port: ports.incoming,
        tls: { certPath: certs.cert, keyPath: certs.key, caCertPath: certs.ca, requireClientAuth: true },
      },
    ],
    client: { loadBalancer: { kind: 'p2c' } },
    maxHops: 64,
  };
  const routers = [outgoing, incoming];
  if (ports.h2Outgoing !== undefined && ports.h2Incoming !== undefined) {
    // gRPC (docs/h2.md): apps dial node-a's h2 router in h2c; the service is the method path's first segment.
    const byPath = [{ kind: 'io.l5d.header.path' as const, segments: 1 }];
    routers.push(
      {
        ...outgoing,
        protocol: 'h2',
        label: 'h2-outgoing',
        identifier: byPath,
        transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh-h2' }],
        servers: [{ ip: node.ip, port: ports.h2Outgoing }],
      },
      {
        ...incoming,
        protocol: 'h2',
        label: 'h2-incoming',
        identifier: byPath,
        servers: [{ ...(incoming.servers[0] as RouterConfig['servers'][0]), port: ports.h2Incoming }],
      },
    );
  }
  return {
    admin: { ip: node.ip, port: ports.admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: join(dir, 'disco') }],
    routers,
    nodeName: node.name,
    shutdownGraceMs: 2000,
    baseDir: dir,
    authz: { policyFile: join(dir, 'policy.yaml') },
  };
}

function get(ip: string, port: number, url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ip, port, path: url, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A line a user can paste: a gRPC call (helloworld.Greeter/SayHello, name "mesh") to the greeter on
 * node-b through node-a's h2 router, with node's own http2 and gRPC's framing by hand (no grpcurl,
 * no .proto needed).
 */
export function grpcLine(router: string): string {
  return (
    `node -e "const s=require('http2').connect('${router}');const r=s.request({':method':'POST',':path':'/helloworld.Greeter/SayHello','content-type':'application/grpc',te:'trailers'});` +
    `r.end(Buffer.from([0,0,0,0,6,10,4,...Buffer.from('mesh')]));r.on('data',d=>console.log(d.subarray(7).toString()));r.on('response',h=>h['grpc-status']&&console.log('grpc-status',h['grpc-status'],h['grpc-message']));r.on('trailers',h=>console.log('grpc-status',h['grpc-status']));r.on('close',()=>s.close())"` +
    '   # gRPC through the h2 routers'
  );
}

/** The grpc-status of one SayHello through `router` (trailers-only or trailers). */
function grpcStatusOf(router: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(router);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    req.on('response', (h) => (status ??= h['grpc-status'] as string | undefined));
    req.on('trailers', (h) => (status ??= h['grpc-status'] as string | undefined));
    req.on('error', reject);
    req.resume();
    req.on('close', () => {
      session.close();
      resolve(status);
    });
    req.end(Buffer.alloc(5)); // an empty HelloRequest
  });
}

/** What tests change in the demo: the mesh's clock (idle eviction, deadlines, waits). */
export interface DemoOptions {
  readonly clock?: Clock;
}

export async function startDemo(logger: Logger, ports: DemoPorts = DEFAULT_PORTS, options: DemoOptions = {}): Promise<Demo> {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-demo-'));
  const apps: App[] = [];
  const meshes: Hostmesh[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(meshes.map((m) => m.close(1000)));
    await Promise.all(apps.map((a) => a.close()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [a, b] = NODES as [DemoNode, DemoNode];
    const pki = await writeDemoPki(join(dir, 'certs'), MESH_NAME, NODES);
    const world = await startTextApp('world', b.ip, `world (${b.name})`);
    const worldV2 = await startTextApp('world-v2', b.ip, `world-v2 (${b.name})`);
    const hello = await startHelloApp(a.ip, a.name, { host: a.ip, port: ports.outgoing });
    apps.push(world, worldV2, hello);
    const h2 = ports.h2Outgoing !== undefined && ports.h2Incoming !== undefined;
    const greeter = h2 ? await startGreeterApp(b.ip, b.name) : undefined;
    if (greeter !== undefined) apps.push(greeter);

    const disco = join(dir, 'disco');
    await import('node:fs/promises').then((fs) => fs.mkdir(disco));
    await writeFile(join(disco, 'world'), `${b.ip} ${world.port} node=${b.name}\n`);
    await writeFile(join(disco, 'world-v2'), `${b.ip} ${worldV2.port} node=${b.name}\n`);
    await writeFile(join(disco, 'hello'), `${a.ip} ${hello.port} node=${a.name}\n`);
    await writeFile(join(disco, 'hostmesh'), NODES.map((n) => `${n.ip} ${ports.incoming} node=${n.name}`).join('\n') + '\n');
    if (greeter !== undefined) {
      await writeFile(join(disco, 'helloworld.Greeter'), `${b.ip} ${greeter.port} node=${b.name}\n`);
      await writeFile(join(disco, 'hostmesh-h2'), NODES.map((n) => `${n.ip} ${ports.h2Incoming} node=${n.name}`).join('\n') + '\n');
    }

    await writeFile(join(dir, 'policy.yaml'), DEMO_POLICY);
    const pods = demoPods();
    for (const node of NODES) {
      const certs = pki.nodes.get(node.name) as { cert: string; key: string };
      const config = nodeConfig(node, ports, dir, { ca: pki.ca, ...certs });
      meshes.push(
        await startHostmesh(config, { logger: logger.child({ node: node.name }), pods, ...(options.clock !== undefined ? { clock: options.clock } : {}) }),
      );
    }

    // Ready once hello answers through the whole chain (hello -> node-a -> mTLS -> node-b -> world).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await get(a.ip, ports.outgoing, 'http://hello/').catch(() => ({ status: 0, body: '' }));
      if (r.status === 200) break;
      if (Date.now() > deadline) throw new Error(`demo did not become ready: last answer ${r.status} ${r.body.trim()}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    // ...and, with h2 routers, once the greeter answers a gRPC call through them.
    while (greeter !== undefined) {
      const status = await grpcStatusOf(`http://${a.ip}:${ports.h2Outgoing}`).catch(() => undefined);
      if (status === '0') break;
      if (Date.now() > deadline) throw new Error(`demo did not become ready: the greeter answered grpc-status ${status ?? 'nothing'}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const px = `http://${a.ip}:${ports.outgoing}`;
    const curlLines = [
      `curl -x ${px} http://hello/`,
      `curl -x ${px} http://world/`,
      `curl -x ${px} -H 'l5d-dtab: /svc/world => /svc/world-v2' http://hello/`,
      `curl -x ${px} http://nothing-here/   # 502 with l5d-err`,
      `curl -si --interface 127.0.0.20 -x ${px} http://world/ | grep -i x-called-by   # the pod shop/web-7f9c: web.shop.serviceaccount.identity.hostmesh.cluster.local`,
      `curl -si --interface 127.0.0.30 -x ${px} http://world/   # refused: that pod runs on node-b, not node-a`,
      `curl -si --interface 127.0.0.21 -x ${px} http://world/   # 403: the demo policy lets shop/batch call only world-v2`,
      `curl 'http://${a.ip}:${ports.admin}/delegator.json?router=outgoing&path=/svc/world'`,
      `curl http://${b.ip}:${ports.admin}/admin/ping`,
    ];
    if (greeter !== undefined) curlLines.push(grpcLine(`http://${a.ip}:${ports.h2Outgoing}`));
    return { meshes, apps, dir, curlLines, close };
  } catch (err) {
    await close();
    throw err;
  }
}
