// Linkerd 1's gRPC DaemonSet config shape (linkerd-grpc.yml: h2 routers on 4340/4341, identifier
// io.l5d.header.path, daemonset/localnode transformers, mTLS between routers) loads as written, and
// with only addresses, ports and paths changed, routes a real gRPC call through both routers.
// Keys hostmesh cannot honour on h2 routers are refused by name.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { PodIndex } from '../../src/identity/pod-directory.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { greeterClient, startGreeter, unary } from '../helpers/grpc-greeter.js';
import { freePorts } from '../helpers/ports.js';

/** The shape of Linkerd 1's linkerd-grpc.yml (its gRPC routers), the k8s namer as published. */
const LINKERD_GRPC = `admin:
  ip: 0.0.0.0
  port: 9990
namers:
- kind: io.l5d.k8s
  experimental: true
  host: localhost
  port: 8001
routers:
- protocol: h2
  experimental: true
  label: outgoing
  dtab: |
    /srv        => /#/io.l5d.k8s/default/grpc;
    /grpc       => /srv;
    /svc        => /$/io.buoyant.http.domainToPathPfx/grpc;
  identifier:
    kind: io.l5d.header.path
    segments: 1
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.k8s.daemonset
      namespace: default
      port: incoming
      service: l5d
  servers:
  - port: 4340
    ip: 0.0.0.0
  client:
    tls:
      commonName: linkerd
      trustCerts:
      - /io.buoyant/linkerd/certs/cacertificate.pem
- protocol: h2
  experimental: true
  label: incoming
  dtab: |
    /srv        => /#/io.l5d.k8s/default/grpc;
    /grpc       => /srv;
    /svc        => /$/io.buoyant.http.domainToPathPfx/grpc;
  identifier:
    kind: io.l5d.header.path
    segments: 1
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.k8s.localnode
  servers:
  - port: 4341
    ip: 0.0.0.0
    tls:
      certPath: /io.buoyant/linkerd/certs/certificate.pem
      keyPath: /io.buoyant/linkerd/certs/key.pk8
`;

t.test('linkerd-grpc.yml loads as written: h2 routers on 4340/4341, experimental warned', async (t) => {
  const { config, warnings } = parseConfig(LINKERD_GRPC, '/etc/linkerd/config.yaml', { env: { NODE_NAME: 'node-a' } });
  t.same(
    config.routers.map((r) => [r.protocol, r.label, r.servers[0]?.port]),
    [
      ['h2', 'outgoing', 4340],
      ['h2', 'incoming', 4341],
    ],
  );
  t.same(config.routers[0]?.identifier, [{ kind: 'io.l5d.header.path', segments: 1 }]);
  t.ok(
    warnings.some((w) => w.includes('experimental')),
    'experimental: accepted, not enforced',
  );
});

t.test('an h2 router defaults to naming by :authority; h2 keys on an http router are refused by name', async (t) => {
  const h2 = parseConfig('routers:\n- protocol: h2\n  servers: [{port: 4240}]\n', '/x.yaml');
  t.same(h2.config.routers[0]?.identifier, [{ kind: 'io.l5d.header.token', header: ':authority' }]);
  t.throws(
    () => parseConfig('routers:\n- protocol: http\n  servers: [{port: 4140, maxConcurrentStreamsPerConnection: 10}]\n', '/x.yaml'),
    /maxConcurrentStreamsPerConnection.*only protocol: h2/s,
  );
  t.throws(
    () => parseConfig('routers:\n- protocol: http\n  servers: [{port: 4140}]\n  service: {responseClassifier: {kind: io.l5d.h2.grpc.default}}\n', '/x.yaml'),
    /io.l5d.h2.grpc.default is not a classifier of protocol: http/,
  );
  t.throws(() => parseConfig('routers:\n- protocol: thrift\n  servers: [{port: 4140}]\n', '/x.yaml'), /protocol/);
});

t.test('the same shape, on loopback with an fs namer, routes a gRPC call through both routers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-l5d-grpc-'));
  const disco = join(dir, 'disco');
  await mkdir(disco);
  const [outgoing, incoming, adminA, adminB] = (await freePorts('127.0.0.2', 4)) as [number, number, number, number];
  const pki = await writeDemoPki(join(dir, 'certs'), 'linkerd', [
    { name: 'node-a', ip: '127.0.0.2' },
    { name: 'node-b', ip: '127.0.0.3' },
  ]);
  const app = await startGreeter('127.0.0.3', 'l5d');
  // domainToPathPfx/grpc turns /svc/helloworld.Greeter into /grpc/Greeter/helloworld -> /#/io.l5d.fs/Greeter/helloworld.
  await writeFile(join(disco, 'Greeter'), `127.0.0.3 ${app.port} node=node-b\n`);
  await writeFile(join(disco, 'l5d'), `127.0.0.2 ${incoming} node=node-a\n127.0.0.3 ${incoming} node=node-b\n`);
  const meshes: Hostmesh[] = [];
  t.teardown(async () => {
    await Promise.all(meshes.map((m) => m.close(100)));
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  const pods = new PodIndex();
  pods.markSynced();
  for (const [node, ip, admin] of [
    ['node-a', '127.0.0.2', adminA],
    ['node-b', '127.0.0.3', adminB],
  ] as const) {
    const certs = pki.nodes.get(node) as { cert: string; key: string };
    // Only what the design allows a test to change: addresses, ports, file paths (and the namer, fs for k8s).
    const text = LINKERD_GRPC.replace(
      /- kind: io\.l5d\.k8s\n {2}experimental: true\n {2}host: localhost\n {2}port: 8001/,
      `- kind: io.l5d.fs\n  rootDir: ${disco}`,
    )
      .replaceAll('/#/io.l5d.k8s/default/grpc', '/#/io.l5d.fs')
      .replace('      namespace: default\n      port: incoming\n      service: l5d', '      routers: /#/io.l5d.fs/l5d')
      .replace('ip: 0.0.0.0\n  port: 9990', `ip: ${ip}\n  port: ${admin}`)
      .replace('port: 4340\n    ip: 0.0.0.0', `port: ${outgoing}\n    ip: ${ip}`)
      .replace('port: 4341\n    ip: 0.0.0.0', `port: ${incoming}\n    ip: ${ip}`)
      .replace('/io.buoyant/linkerd/certs/cacertificate.pem', pki.ca)
      .replace('/io.buoyant/linkerd/certs/certificate.pem', certs.cert)
      .replace('/io.buoyant/linkerd/certs/key.pk8', certs.key);
    const { config } = parseConfig(text, join(dir, `${node}.yaml`), { env: { NODE_NAME: node } });
    meshes.push(await startHostmesh(config, { logger: silentLogger(), pods }));
  }
  const client = greeterClient(`127.0.0.2:${outgoing}`);
  t.teardown(() => client.close());
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      const reply = await unary(client, 'SayHello', { name: 'linkerd' });
      t.match(reply.message, /^hello linkerd from l5d/);
      break;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
});
