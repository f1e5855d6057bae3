// The admin's dead-endpoint views in the DaemonSet topology: the outgoing router's balancer
// chooses among peer routers (the daemonset transformer replaces each pod by the router on its
// node), and failure accrual is kept per peer router. /client_state.json and /admin/services.json
// must show those, as the hostmesh_failure_accrual_dead_endpoints gauge counts them, and still
// say which pods were bound.

import { clockWithNow } from '../../src/core/clock.js';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { listen } from '../helpers/mesh.js';

const HOST = '127.0.0.1';

interface ClientView {
  id: string;
  endpoints: { address: string; nodeName: string | null; accrual: string }[];
  destinations: { address: string; nodeName: string | null }[];
}

t.test('dead peer routers show in client_state.json and services.json as the balancer skips them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-ds-accrual-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Two peer routers: node-1's answers 500 to everything (a failing node), node-2's 200.
  const peer = async (status: number): Promise<number> => {
    const s = await listen(
      http.createServer((req, res) => {
        req.resume();
        res.statusCode = status;
        res.end(String(status));
      }),
      HOST,
    );
    t.teardown(() => {
      s.closeAllConnections();
      s.close();
    });
    return (s.address() as { port: number }).port;
  };
  const bad = await peer(500);
  const good = await peer(200);
  await writeFile(join(dir, 'hostmesh'), `${HOST} ${bad} node=node-1\n${HOST} ${good} node=node-2\n`);
  await writeFile(join(dir, 'web'), `10.9.0.1 8080 node=node-1\n10.9.0.2 8080 node=node-2\n`);
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: '/svc => /#/io.l5d.fs;',
        identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
        transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh' }],
        servers: [{ ip: HOST, port }],
        client: {
          loadBalancer: { kind: 'p2c' },
          failureAccrual: { kind: 'io.l5d.consecutiveFailures', failures: 3, backoff: { kind: 'constant', ms: 600_000 } },
        },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 0,
    baseDir: dir,
  };
  const hm = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => 1_000_000) });
  t.teardown(() => hm.close(0));

  const gauge = async (): Promise<number> =>
    parsePrometheus((await request({ host: HOST, port: admin, path: '/metrics' })).body).find(
      (s) => s.name === 'hostmesh_failure_accrual_dead_endpoints' && s.labels['router'] === 'outgoing',
    )?.value ?? 0;
  // Until the failing node's router is marked dead (3 failures in a row there); bounded.
  for (let i = 0; i < 200 && (await gauge()) < 1; i++) await request({ host: HOST, port, path: '/', headers: { host: 'web' } });
  t.equal(await gauge(), 1, 'the gauge counts one dead endpoint: the failing peer router');
  const after = await Promise.all(Array.from({ length: 10 }, () => request({ host: HOST, port, path: '/', headers: { host: 'web' } })));
  t.same(
    after.map((r) => r.status),
    Array(10).fill(200),
    'the balancer skips it: every request goes to the healthy node',
  );

  const state = JSON.parse((await request({ host: HOST, port: admin, path: '/client_state.json' })).body) as Record<string, ClientView[]>;
  const web = state['outgoing']?.find((c) => c.id === '/#/io.l5d.fs/web');
  t.ok(web, 'the bound client is listed');
  t.same(
    web?.endpoints.map((e) => [e.address, e.nodeName, e.accrual]).sort(),
    [
      [`${HOST}:${bad}`, 'node-1', 'dead'],
      [`${HOST}:${good}`, 'node-2', 'alive'],
    ].sort(),
    'client_state.json: the peer routers the balancer chooses among, the failing one dead',
  );
  t.same(web?.destinations.map((e) => e.address).sort(), ['10.9.0.1:8080', '10.9.0.2:8080'], 'and the pods the name bound, before the transformer');

  const { services } = JSON.parse((await request({ host: HOST, port: admin, path: '/admin/services.json' })).body) as {
    services: { router: string; service: string; resilience: { deadEndpoints: { client: string; address: string; accrual: string }[] } }[];
  };
  const row = services.find((r) => r.router === 'outgoing' && r.service === '/svc/web');
  t.same(
    row?.resilience.deadEndpoints,
    [{ client: '/#/io.l5d.fs/web', address: `${HOST}:${bad}`, accrual: 'dead' }],
    'services.json: the dead peer router on the service row',
  );
});
