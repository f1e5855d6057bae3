// A Linkerd 1 DaemonSet config (../shared/fixtures/linkerd1-daemonset-tls.yaml, copied verbatim to
// test/fixtures) run by `hostmesh run` as two processes, node-a and node-b, with only listen
// addresses, ports and file paths changed through --set. The k8s namer reads the test API server
// where the config's kubectl-proxy sidecar would be. hello (node-a) calls world through its
// router; the dtab sends world to world-v1 (node-b).

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { startHelloApp, startTextApp, type App } from '../../src/demo/apps.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { spawnCli } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { endpointSlice, pod, service } from '../helpers/k8s.js';
import { freePorts } from '../helpers/ports.js';
import { repoPath } from '../helpers/paths.js';

const FIXTURE = repoPath('test', 'fixtures', 'linkerd1-daemonset-tls.yaml');
const NODES = [
  { name: 'node-a', ip: '127.0.0.2' },
  { name: 'node-b', ip: '127.0.0.3' },
];

t.test('the Linkerd 1 DaemonSet config routes hello -> world-v1 across two routers', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-l5d1-'));
  // The fixture's client TLS expects the peer name `hostmesh-router`.
  const pki = await writeDemoPki(dir, 'hostmesh-router', NODES);
  const api = await new FakeApiServer().start();
  const [outgoing, incoming, admin] = (await freePorts('127.0.0.2', 3)) as [number, number, number];
  const apps: App[] = [];
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(apps.map((a) => a.close()));
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  // The cluster: Service l5d (the routers, hostNetwork), hello on node-a, world-v1 on node-b.
  const worldV1 = await startTextApp('world-v1', '127.0.0.11', 'world-v1 (node-b)');
  const hello = await startHelloApp('127.0.0.10', 'node-a', { host: '127.0.0.2', port: outgoing });
  apps.push(worldV1, hello);
  api.apply(
    service('default', 'l5d', [
      { name: 'incoming', port: incoming },
      { name: 'outgoing', port: outgoing },
    ]),
  );
  api.apply(
    endpointSlice(
      'default',
      'l5d-1',
      'l5d',
      NODES.map((n) => ({ ip: n.ip, node: n.name })),
      [
        { name: 'incoming', port: incoming },
        { name: 'outgoing', port: outgoing },
      ],
    ),
  );
  for (const app of [hello, worldV1]) {
    // The apps' Pods: the incoming router delivers only to pods its watch knows on its node.
    api.apply(pod('default', `${app.name}-1`, app === hello ? 'node-a' : 'node-b', app.host));
    api.apply(service('default', app.name));
    api.apply(
      endpointSlice('default', `${app.name}-1`, app.name, [{ ip: app.host, node: app === hello ? 'node-a' : 'node-b' }], [{ name: 'http', port: app.port }]),
    );
  }

  for (const node of NODES) {
    const certs = pki.nodes.get(node.name)!;
    const set = [
      `admin.ip=${node.ip}`,
      `admin.port=${admin}`,
      'namers.0.host=127.0.0.1',
      `namers.0.port=${api.port}`,
      // The test's pods are loopback addresses (a cluster simulated on one machine).
      'namers.0.allowLoopbackEndpoints=true',
      `routers.0.servers.0.ip=${node.ip}`,
      `routers.0.servers.0.port=${outgoing}`,
      `routers.0.client.tls.trustCerts.0=${pki.ca}`,
      `routers.0.client.tls.clientAuth.certPath=${certs.cert}`,
      `routers.0.client.tls.clientAuth.keyPath=${certs.key}`,
      `routers.1.servers.0.ip=${node.ip}`,
      `routers.1.servers.0.port=${incoming}`,
      `routers.1.servers.0.tls.certPath=${certs.cert}`,
      `routers.1.servers.0.tls.keyPath=${certs.key}`,
      `routers.1.servers.0.tls.caCertPath=${pki.ca}`,
    ].flatMap((s) => ['--set', s]);
    // NODE_NAME comes from the downward API in a cluster; localnode needs it.
    children.push(spawnCli(['run', '-c', FIXTURE, ...set], { NODE_NAME: node.name }));
  }

  for (const node of NODES) {
    let status = 0;
    for (let i = 0; i < 300 && status !== 200; i++) {
      status = await request({ host: node.ip, port: admin, path: '/ready' }).then(
        (r) => r.status,
        () => 0,
      );
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(status, 200, `${node.name} is ready`);
  }

  let body = '';
  for (let i = 0; i < 100 && !body.includes('world-v1'); i++) {
    body = (await request({ host: '127.0.0.2', port: outgoing, path: 'http://hello/' }).catch(() => ({ body: '' }))).body;
    if (!body.includes('world-v1')) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(body, 'Hello from node-a, world says: world-v1 (node-b)\n', 'hello -> world -> world-v1 across both routers');

  const direct = await request({ host: '127.0.0.2', port: outgoing, path: 'http://world-v1/' });
  t.equal(direct.body, 'world-v1 (node-b)\n');

  for (const c of children) c.kill('SIGTERM');
  for (const c of children) {
    const [code] = c.exitCode !== null ? [c.exitCode] : ((await once(c, 'exit')) as [number | null]);
    t.equal(code, 0, 'drains and exits 0');
  }
});
