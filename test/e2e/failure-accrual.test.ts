// Failure accrual through a running router: one of three pods answers 500 to everything; it is
// marked dead after the configured failures, skipped while dead, probed after backoff, revived.

import { clockWithNow } from '../../src/core/clock.js';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound, timed } from '../helpers/prompt.js';
import { listen } from '../helpers/mesh.js';

const HOST = '127.0.0.1';
const FAILURES = 3;
const BACKOFF_MS = 10_000;

let clock = Date.now();
let dir: string;
let mesh: Hostmesh;
let port: number;
let admin: number;
const hits = { good1: 0, good2: 0, bad: 0 };
let badHealthy = false;
const servers: http.Server[] = [];

async function pod(name: keyof typeof hits): Promise<number> {
  const s = http.createServer((req, res) => {
    hits[name]++;
    req.resume();
    res.statusCode = name === 'bad' && !badHealthy ? 500 : 200;
    res.end(name);
  });
  servers.push(await listen(s, HOST));
  return (s.address() as { port: number }).port;
}

/** `n` requests, `concurrency` at a time; returns their statuses. */
async function send(n: number, concurrency = 10): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - i) }, () => request({ host: HOST, port, path: '/', headers: { host: 'web' } }));
    for (const r of await Promise.all(batch)) out.push(r.status);
  }
  return out;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://${HOST}:${admin}/metrics`)).text();
  return parsePrometheus(text).find((s) => s.name === name && s.labels['router'] === 'out')?.value ?? 0;
}

async function endpoints(): Promise<{ address: string; accrual: string }[]> {
  const state = (await (await fetch(`http://${HOST}:${admin}/client_state.json`)).json()) as Record<
    string,
    { endpoints: { address: string; accrual: string }[] }[]
  >;
  return state['out']?.[0]?.endpoints ?? [];
}

async function badState(): Promise<string | undefined> {
  return (await endpoints()).find((e) => e.address === `${HOST}:${badPort}`)?.accrual;
}

let badPort: number;

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-accrual-'));
  const [g1, g2, b] = [await pod('good1'), await pod('good2'), await pod('bad')];
  badPort = b;
  await writeFile(join(dir, 'web'), `${HOST} ${g1}\n${HOST} ${g2}\n${HOST} ${b}\n`);
  [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      {
        protocol: 'http',
        label: 'out',
        dtab: '/svc => /#/io.l5d.fs;',
        identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
        transformers: [],
        servers: [{ ip: HOST, port }],
        client: {
          loadBalancer: { kind: 'p2c' },
          failureAccrual: { kind: 'io.l5d.consecutiveFailures', failures: FAILURES, backoff: { kind: 'constant', ms: BACKOFF_MS } },
        },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 100,
    baseDir: dir,
  };
  mesh = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => clock) });
});

t.teardown(async () => {
  await mesh?.close(100);
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await rm(dir, { recursive: true, force: true });
});

t.test('an endpoint failing every request is marked dead within the configured failures and skipped', async (t) => {
  // One at a time until the bad pod has had its FAILURES: each of them is a 500 the user sees.
  let sent = 0;
  while (hits.bad < FAILURES && sent < 200) {
    await send(1, 1);
    sent++;
  }
  t.equal(hits.bad, FAILURES, 'the bad pod got exactly the configured failures');
  t.equal(await badState(), 'dead', 'client_state.json shows it dead');
  t.equal(await metric('hostmesh_failure_accrual_removals_total'), 1);
  t.equal(await metric('hostmesh_failure_accrual_dead_endpoints'), 1);

  // While dead (the clock does not move): 300 requests, 10 at a time, none to the bad pod.
  const before = hits.bad;
  const statuses = await send(300);
  t.equal(hits.bad - before, 0, 'no request went to the dead endpoint');
  t.ok(
    statuses.every((s) => s === 200),
    'every request succeeded on the live pods',
  );
  t.ok(hits.good1 > 50 && hits.good2 > 50, 'both live pods share the load');
});

t.test('after the backoff one probe goes; a failed probe marks it dead again', async (t) => {
  clock += BACKOFF_MS;
  const before = hits.bad;
  const statuses = await send(100);
  t.equal(hits.bad - before, 1, 'exactly one probe reached the dead endpoint');
  t.equal(statuses.filter((s) => s !== 200).length, 1, 'the probe is the only failure');
  t.equal(await badState(), 'dead');
  t.equal(await metric('hostmesh_failure_accrual_removals_total'), 1, 'a failed probe is not a new removal');
});

t.test('a successful probe brings the endpoint back into rotation', async (t) => {
  badHealthy = true;
  clock += BACKOFF_MS;
  const before = hits.bad;
  const statuses = await send(150);
  t.ok(
    statuses.every((s) => s === 200),
    'all succeed',
  );
  t.ok(hits.bad - before > 10, `the revived pod takes its share again (${hits.bad - before} of 150)`);
  t.equal(await badState(), 'alive');
  t.equal(await metric('hostmesh_failure_accrual_dead_endpoints'), 0);
});

t.test('when every endpoint is dead the balancer picks one anyway (Finagle, Linkerd 1)', async (t) => {
  badHealthy = false;
  // The admin request before: "at once" is 10x this (at least 2 s), so a busy machine, which slows
  // both, cannot trip it.
  const baseline = await timed(() => fetch(`http://${HOST}:${admin}/metrics`).then((r) => r.status));
  t.equal(baseline.value, 200, `an admin request before (${baseline.ms.toFixed(0)} ms)`);
  const bound = promptBound(baseline.ms, 2000);
  const servers2 = { ...hits };
  // Make the live pods fail too by pointing the name at the bad pod only: all of one endpoint dead.
  await writeFile(join(dir, 'web'), `${HOST} ${badPort}\n`);
  // The fs namer has noticed the file once the router's client holds the bad pod alone: waited
  // for (a 300 ms sleep sampled it), bounded against a hang.
  const alone = async (): Promise<string> => (await endpoints()).map((e) => e.address).join(' ');
  const until = Date.now() + 30_000;
  while ((await alone()) !== `${HOST}:${badPort}` && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  t.equal(await alone(), `${HOST}:${badPort}`, "the router's client holds the bad pod alone");
  await send(FAILURES + 5, 1);
  t.equal(await badState(), 'dead');
  const before = hits.bad;
  const statuses = await send(10);
  t.equal(hits.bad - before, 10, 'requests still reach the only endpoint: answered by it, not refused');
  t.ok(statuses.every((s) => s === 500));
  t.ok(servers2.bad <= hits.bad);
  // The router itself stays responsive: an admin request answers at once.
  const after = await timed(() => fetch(`http://${HOST}:${admin}/metrics`).then((r) => r.status));
  t.equal(after.value, 200);
  t.ok(after.ms < bound, `answered at once (${after.ms.toFixed(0)} ms; bound ${bound} ms, 10x before)`);
});
