// Hostile: l5d-dtab overrides that name many distinct /$/inet endpoints. The router keeps at most
// client.maxEndpointPools endpoint pools (closing the least recently used idle one with its
// sockets), refuses a new endpoint with 503 ENDPOINT_POOLS_FULL only when every pool has requests
// in flight, and closes idle pools once its injected clock passes the idle time. Real sockets on
// loopback; sockets are counted on the servers' side by the kernel (/proc/net/tcp).

import { clockWithNow } from '../../../../src/core/clock.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { parseConfig } from '../../../../src/config/load.js';
import { silentLogger } from '../../../../src/log.js';
import { startHostmesh } from '../../../../src/app/hostmesh.js';
import { request } from '../../../helpers/http.js';
import { freePorts } from '../../../helpers/ports.js';
import { eventually, heldSockets } from '../../../helpers/sockets.js';

const CAP = 6;
const ENDPOINTS = 16;

interface Backend {
  readonly server: http.Server;
  readonly port: number;
  /** Answers held while `hold` is set, released by release(). */
  hold: boolean;
  readonly held: http.ServerResponse[];
}

async function backend(): Promise<Backend> {
  const b: Backend = { server: http.createServer(), port: 0, hold: false, held: [] };
  b.server.on('request', (_req, res: http.ServerResponse) => {
    if (b.hold) b.held.push(res);
    else res.end('ok');
  });
  // Idle connections would be kept a minute: any close seen here is the router's doing.
  b.server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  return Object.assign(b, { port: (b.server.address() as AddressInfo).port });
}

t.test('distinct override endpoints: pools and sockets stay at the cap, idle ones go on the injected clock', async (t) => {
  const backends = await Promise.all(Array.from({ length: ENDPOINTS + 1 }, () => backend()));
  const app = backends[0] as Backend; // the router's own dtab: normal traffic
  const others = backends.slice(1);
  const [port, adminPort] = (await freePorts('127.0.0.1', 2)) as [number, number];
  let clock = 1_000_000;
  const { config } = parseConfig(
    `admin: {ip: 127.0.0.1, port: ${adminPort}}
routers:
- protocol: http
  label: out
  dtab: /svc => /$/inet/127.0.0.1/${app.port};
  servers:
  - {ip: 127.0.0.1, port: ${port}}
  client:
    maxEndpointPools: ${CAP}
`,
    'l5d.yaml',
  );
  const mesh = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => clock) });
  t.teardown(async () => {
    await mesh.close(100);
    for (const b of backends) {
      for (const r of b.held) r.end();
      b.server.closeAllConnections();
      await new Promise((r) => b.server.close(r));
    }
  });
  const ports = backends.map((b) => b.port);
  const held = (): number => heldSockets('127.0.0.1', ports); // one read of /proc/net/tcp for all of them
  const metric = async (name: string): Promise<number> => {
    const text = (await request({ host: '127.0.0.1', port: adminPort, path: '/metrics' })).body;
    let sum = 0;
    let seen = false;
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
        if (line.includes('router="out"')) {
          sum += Number(line.slice(line.lastIndexOf(' ') + 1));
          seen = true;
        }
      }
    }
    return seen ? sum : Number.NaN;
  };
  // The gauge read in process each step (a full scrape costs more); the admin page is read below.
  const openPools = async (): Promise<number> => (await mesh.metrics.routerFamilies.endpointPools.get()).values.reduce((n, v) => n + v.value, 0);
  const normal = async (): Promise<number> => (await request({ host: '127.0.0.1', port, path: '/', headers: { host: 'app' } })).status;
  const override = (b: Backend): Promise<{ status: number; body: string }> =>
    request({ host: '127.0.0.1', port, path: '/', headers: { host: 'app', 'l5d-dtab': `/svc/app => /$/inet/127.0.0.1/${b.port}` } });

  t.equal(await normal(), 200, 'normal traffic before');
  let worst = 0;
  for (const b of others) {
    t.equal((await override(b)).status, 200, `override to :${b.port} served`);
    worst = Math.max(worst, await openPools());
    // The victim's socket closes asynchronously after it is evicted: settle, then count.
    t.ok(await eventually(() => held() <= CAP, 5000), `router holds at most ${CAP} sockets to endpoints (${held()})`);
    clock += 10; // requests a little apart: the least recently used is well defined
  }
  t.equal(worst, CAP, `at most ${CAP} endpoint pools open at any point`);
  t.equal(await metric('hostmesh_endpoint_pools'), CAP, 'the gauge shows the cap');
  t.ok((await metric('hostmesh_endpoint_pools_closed_total')) >= ENDPOINTS + 1 - CAP, 'pools closed past the cap are counted');
  t.equal(await normal(), 200, 'normal traffic during');

  // Every open pool busy (a request held on each): a new endpoint is refused, nothing is opened.
  const busy = others.slice(0, CAP);
  for (const b of busy) b.hold = true;
  const pending = busy.map((b) => override(b));
  t.ok(await eventually(() => busy.every((b) => b.held.length === 1), 5000), 'one request in flight on each of the cap pools');
  const refused = await override(others[CAP] as Backend);
  t.equal(refused.status, 503, 'a new endpoint with every pool busy: 503');
  t.match(refused.body, /ENDPOINT_POOLS_FULL|endpoint pools full/, 'through the error catalog');
  t.equal(heldSockets('127.0.0.1', (others[CAP] as Backend).port), 0, 'nothing connected to the refused endpoint');
  t.equal(await metric('hostmesh_requests_shed_total'), 1, 'the refusal is counted');
  for (const b of busy) {
    b.hold = false;
    for (const r of b.held.splice(0)) r.end('ok');
  }
  t.same(
    (await Promise.all(pending)).map((r) => r.status),
    busy.map(() => 200),
    'the held requests finish',
  );
  t.equal((await override(others[CAP] as Backend)).status, 200, 'the endpoint is served once a pool is idle');
  t.equal(await normal(), 200, 'normal traffic after');

  // Idle time passes on the router's clock: every pool closes, with its sockets.
  t.ok(held() > 0, 'sockets still open before the clock moves');
  clock += 61_000;
  mesh.evictIdle();
  t.equal(await metric('hostmesh_endpoint_pools'), 0, 'no endpoint pool open after the idle time');
  t.ok(await eventually(() => held() === 0, 5000), `every socket to an endpoint is closed (${held()} held)`);
  t.equal(await normal(), 200, 'and normal traffic is served again');
});
