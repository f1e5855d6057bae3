// hostConnectionPool.minSize against a real endpoint: after a burst opens more connections than
// minSize, the extra ones close at idleTimeMs and the first minSize stay open, idle; the same
// through a running router whose YAML config sets it.

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { Client } from 'undici';
import { parseConfig } from '../../../../src/config/load.js';
import { silentLogger } from '../../../../src/log.js';
import { clientLimits, EndpointPools } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { startHostmesh } from '../../../../src/app/hostmesh.js';
import { request } from '../../../helpers/http.js';
import { freePorts } from '../../../helpers/ports.js';
import { ManualClock } from '../../../helpers/manual-clock.js';
import { eventually } from '../../../helpers/sockets.js';

const IDLE_MS = 300;

/** A backend that holds requests until `burst` are in (then 1: each answered at once), and counts its open connections. */
async function backend(initialBurst: number): Promise<{ server: http.Server; port: number; open: () => number }> {
  let burst = initialBurst;
  const sockets = new Set<Socket>();
  let waiting: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    waiting.push(res);
    // Held until the burst is complete, so the pool has to open one connection per request.
    if (waiting.length >= burst) {
      for (const r of waiting) r.end('ok');
      waiting = [];
      burst = 1;
    }
  });
  // A long keep-alive hint: the server would keep idle connections for a minute, so any close
  // seen within the test is the router's pool closing them.
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, open: () => sockets.size };
}

/**
 * Waits until `ms` of undici's own keep-alive time has passed: a witness connection with that
 * keep-alive, opened now, closes when its timer fires. The pool's idle connections are closed by
 * timers of the same kind (undici's keep-alive, real socket timers, not the pool's clock), and
 * Node fires timers in expiry order, so once the witness is gone every pool timer due before it
 * has fired too: settled on an event, not slept for.
 */
async function witness(b: { port: number; open: () => number }, ms: number): Promise<void> {
  const before = b.open();
  const client = new Client(`http://127.0.0.1:${b.port}`, { keepAliveTimeout: ms, keepAliveMaxTimeout: ms });
  const r = await client.request({ method: 'GET', path: '/' });
  await r.body.text();
  if (!(await eventually(() => b.open() <= before, 40 * ms))) throw new Error('the witness connection never closed');
  await client.close();
}

async function burst(pools: EndpointPools, port: number, n: number): Promise<void> {
  const entry = pools.get({ host: '127.0.0.1', port, meta: {} });
  await Promise.all(
    Array.from({ length: n }, async () => {
      const r = await entry.pool.request({ method: 'GET', path: '/' });
      await r.body.text();
    }),
  );
}

/**
 * Lets `ms` of pool idle time pass: the lean pool's connection timers run on the injected clock
 * (moved here); undici's run on real timers (a witness connection shows they fired).
 */
async function idleFor(engine: 'lean' | 'undici', clock: ManualClock, b: { port: number; open: () => number }, ms: number): Promise<void> {
  if (engine === 'lean') await clock.advance(ms);
  else await witness(b, ms);
}

for (const engine of ['lean', 'undici'] as const) {
  for (const minSize of [0, 2]) {
    t.test(`${engine}, minSize ${minSize}: a burst of 5 connections shrinks to ${minSize} after idleTimeMs`, async (t) => {
      const b = await backend(5);
      // The pool's own idle eviction runs on this clock: the test moves it, so it never evicts behind the test's back.
      const clock = new ManualClock();
      const pools = new EndpointPools(undefined, { limits: clientLimits({ hostConnectionPool: { minSize, maxSize: 8, idleTimeMs: IDLE_MS }, engine }), clock });
      t.teardown(async () => {
        await pools.close();
        b.server.closeAllConnections();
        await new Promise((r) => b.server.close(r));
      });
      await burst(pools, b.port, 5);
      t.equal(b.open(), 5, 'the burst opened five connections');
      if (engine === 'lean') await clock.advance(IDLE_MS + 1);
      t.ok(await eventually(() => b.open() <= minSize, 20 * IDLE_MS), `the extra connections close after idleTimeMs (${b.open()} open)`);
      // Several idle periods later the floor is still there: nothing closes the first minSize, neither
      // the connections' keep-alive (3 idle periods) nor the pool's sweeper (its clock moved 4).
      await idleFor(engine, clock, b, 3 * IDLE_MS);
      await clock.advance(4 * IDLE_MS);
      t.equal(b.open(), minSize, `${minSize} connections stay open while idle`);
      t.equal(pools.size, 1, 'the pool itself is not evicted by its sweeper within idleTimeMs x 4');
      // The next requests run on the kept connections: none is opened while they suffice.
      let opened = 0;
      b.server.on('connection', () => opened++);
      for (let i = 0; i < 5; i++) await burst(pools, b.port, 1);
      if (minSize > 0) t.equal(opened, 0, `sequential requests reuse the kept connections (${opened} opened)`);
    });
  }

  t.test(`${engine}, minSize 2: nothing is pre-opened; the one connection a request opened outlives idleTimeMs`, async (t) => {
    const b = await backend(1);
    const clock = new ManualClock();
    const pools = new EndpointPools(undefined, {
      limits: clientLimits({ hostConnectionPool: { minSize: 2, maxSize: 8, idleTimeMs: IDLE_MS }, engine }),
      clock,
    });
    t.teardown(async () => {
      await pools.close();
      b.server.closeAllConnections();
      await new Promise((r) => b.server.close(r));
    });
    await burst(pools, b.port, 1);
    await idleFor(engine, clock, b, 4 * IDLE_MS);
    await clock.advance(4 * IDLE_MS);
    t.equal(b.open(), 1, 'one connection, kept past idleTimeMs');
  });
}

t.test('through a running router: the YAML key keeps 2 of a burst of 5 connections to the endpoint', async (t) => {
  const b = await backend(5);
  const [port, admin] = (await freePorts('127.0.0.1', 2)) as [number, number];
  const { config } = parseConfig(
    `admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - {ip: 127.0.0.1, port: ${port}}
  client:
    hostConnectionPool: {minSize: 2, idleTimeMs: ${IDLE_MS}}
`,
    'l5d.yaml',
  );
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  t.teardown(async () => {
    await mesh.close(100);
    b.server.closeAllConnections();
    await new Promise((r) => b.server.close(r));
  });
  const answers = await Promise.all(Array.from({ length: 5 }, () => request({ host: '127.0.0.1', port, path: '/', headers: { host: 'app' } })));
  t.same(
    answers.map((a) => a.status),
    [200, 200, 200, 200, 200],
  );
  t.equal(b.open(), 5, 'the burst opened five connections to the endpoint');
  t.ok(await eventually(() => b.open() <= 2, 20 * IDLE_MS), `three close after idleTimeMs (${b.open()} open)`);
  await witness(b, 3 * IDLE_MS);
  t.equal(b.open(), 2, 'two stay open while idle');
  t.equal((await request({ host: '127.0.0.1', port, path: '/', headers: { host: 'app' } })).status, 200, 'and the router serves on them');
});
