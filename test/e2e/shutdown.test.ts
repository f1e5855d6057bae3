// Graceful drain: requests in flight when shutdown starts complete; new connections are refused.

import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';

t.test('in-flight requests finish during shutdown, new ones are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-drain-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let release: () => void = () => undefined;
  const arrived = new Promise<void>((resolveArrived) => {
    const backend = http.createServer((_req, res) => {
      resolveArrived();
      release = () => res.end('slow but complete');
    });
    backend.listen(0, '127.0.0.1', async () => {
      const { port } = backend.address() as { port: number };
      await writeFile(join(dir, 'slow'), `127.0.0.1 ${port}\n`);
    });
    t.teardown(() => new Promise<void>((r) => backend.close(() => r())));
  });
  const [proxyPort, adminPort] = (await freePorts('127.0.0.1', 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: '127.0.0.1', port: adminPort, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: '/svc => /#/io.l5d.fs;',
        identifier: [],
        transformers: [],
        servers: [{ ip: '127.0.0.1', port: proxyPort }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 5000,
    baseDir: dir,
  };
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  const inFlight = request({ host: '127.0.0.1', port: proxyPort, path: 'http://slow/' });
  await arrived;
  // The operator's form (a state change needs the hostmesh-admin header; admin-security.test.ts).
  const shutdown = request({ host: '127.0.0.1', port: adminPort, path: '/admin/shutdown', method: 'POST', headers: { 'hostmesh-admin': '1' } });
  t.equal((await shutdown).status, 200);
  // Poll until the listener stops accepting (ceiling 5 s), then let the slow request finish.
  const deadline = Date.now() + 5000;
  let refused = false;
  while (!refused && Date.now() < deadline) {
    refused = await request({ host: '127.0.0.1', port: proxyPort, path: 'http://slow/' }).then(
      (r) => r.status === 503,
      () => true,
    );
  }
  t.ok(refused, 'new requests are refused while draining');
  release();
  const r = await inFlight;
  t.equal(r.status, 200);
  t.equal(r.body, 'slow but complete');
  await mesh.close();
});

t.test('GET /admin/shutdown is 405', async (t) => {
  const [proxyPort, adminPort] = (await freePorts('127.0.0.1', 2)) as [number, number];
  const mesh = await startHostmesh(
    {
      admin: { ip: '127.0.0.1', port: adminPort, allowRemoteShutdown: false },
      namers: [],
      routers: [
        {
          protocol: 'http',
          label: 'outgoing',
          dtab: '/svc => /$/inet/127.0.0.1/1;',
          identifier: [],
          transformers: [],
          servers: [{ ip: '127.0.0.1', port: proxyPort }],
          client: { loadBalancer: { kind: 'p2c' } },
          maxHops: 64,
        },
      ],
      shutdownGraceMs: 1000,
      baseDir: '/',
    },
    { logger: silentLogger() },
  );
  t.teardown(() => mesh.close());
  const r = await request({ host: '127.0.0.1', port: adminPort, path: '/admin/shutdown' });
  t.equal(r.status, 405);
  t.equal((await request({ host: '127.0.0.1', port: adminPort, path: '/admin/ping' })).body, 'pong');
  t.equal((await request({ host: '127.0.0.1', port: adminPort, path: '/ready' })).status, 200);
  const dead = await request({ host: '127.0.0.1', port: proxyPort, path: 'http://anything/' });
  t.equal(dead.status, 502);
  t.match(decodeURIComponent(String(dead.headers['l5d-err'])), /cannot reach 127\.0\.0\.1:1/);
});
