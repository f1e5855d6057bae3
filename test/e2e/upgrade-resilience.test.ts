// Upgrades under issue 18's resilience rules, on one plaintext router with an io.l5d.fs namer: a
// refused connection is requeued on the name's other endpoint, the request's deadline bounds the
// wait for the 101, a deadline already past is answered at once, and failure accrual counts them.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { createCa } from '../../src/tls/generate.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { testRouter } from '../helpers/router-config.js';

const HOST = '127.0.0.1';
let dir: string;
let hm: Hostmesh;
let echo: http.Server;
/** Upgrades that reach the app that never answers them (its sockets, to count and close). */
const stuck: net.Socket[] = [];
let silent: net.Server;
/** A TCP server that never answers a TLS handshake, and how many of its connections closed. */
let mute: net.Server;
const muteSockets: net.Socket[] = [];
let muteClosed = 0;
let ports: { router: number; admin: number; dead: number };

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-upgrade-'));
  echo = await listen(http.createServer(), HOST);
  const wss = new WebSocketServer({ server: echo });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo ${String(m)}`)));
  // An app that accepts the connection and never answers the upgrade.
  silent = net.createServer((s) => {
    stuck.push(s);
    s.on('error', () => undefined);
    s.resume(); // read (and drop) the request, so the router's close is seen
  });
  await new Promise<void>((resolve) => silent.listen(0, HOST, resolve));
  mute = net.createServer((s) => {
    muteSockets.push(s);
    s.on('error', () => undefined);
    s.on('close', () => muteClosed++);
    s.resume();
  });
  await new Promise<void>((resolve) => mute.listen(0, HOST, resolve));
  const mutePort = (mute.address() as net.AddressInfo).port;
  await writeFile(join(dir, 'ca.pem'), createCa({ commonName: 'upgrade test CA', days: 1 }).certPem);
  const [router, admin, dead] = (await freePorts(HOST, 3)) as [number, number, number];
  ports = { router, admin, dead };
  const echoPort = (echo.address() as net.AddressInfo).port;
  const silentPort = (silent.address() as net.AddressInfo).port;
  // `ws`: a dead endpoint first and a live one; `hang`: only the app that never answers.
  await writeFile(join(dir, 'ws'), `${HOST} ${dead}\n${HOST} ${echoPort}\n`);
  await writeFile(join(dir, 'hang'), `${HOST} ${silentPort}\n`);
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      testRouter('out', HOST, router, `/svc => /#/io.l5d.fs; /svc/tls-mute => /$/inet/${HOST}/${mutePort};`, {
        // Round robin sends every other upgrade to the dead endpoint first. The mute server is a
        // TLS client by prefix: its handshake never finishes.
        client: {
          loadBalancer: { kind: 'roundRobin' },
          failureAccrual: { kind: 'none' },
          configs: [{ prefix: `/$/inet/${HOST}/${mutePort}`, tls: { commonName: 'mute.test', trustCerts: [join(dir, 'ca.pem')] }, connectTimeoutMs: 300 }],
        },
      }),
    ],
    shutdownGraceMs: 100,
    baseDir: dir,
  };
  hm = await startHostmesh(config, { logger: silentLogger() });
});

t.teardown(async () => {
  for (const s of stuck) s.destroy();
  for (const s of muteSockets) s.destroy();
  mute.close();
  await hm.close(100);
  echo.close();
  silent.close();
  await rm(dir, { recursive: true, force: true });
});

/** Opens a WebSocket to `host` through the router (http_proxy style: the router's address, Host = the name). */
function open(host: string, headers: Record<string, string> = {}): Promise<{ ws?: WebSocket; status?: number; err?: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${HOST}:${ports.router}/`, { headers: { host, ...headers } });
    ws.once('open', () => resolve({ ws, ms: performance.now() - started }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, err: decodeURIComponent(String(res.headers['l5d-err'] ?? '')), ms: performance.now() - started });
      res.resume();
    });
    ws.once('error', (err) => resolve({ err: err.message, ms: performance.now() - started }));
  });
}

/** A plain GET to `host` through the router: its status and decoded l5d-err. */
function fetchVia(host: string): Promise<{ status: number; err: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port: ports.router, path: '/', headers: { host } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, err: decodeURIComponent(String(res.headers['l5d-err'] ?? '')) });
    });
    req.on('error', reject);
    req.end();
  });
}

/** An l5d-ctx-deadline set now that passes in `ms` (epoch nanoseconds, as Finagle writes it). */
function deadlineIn(ms: number): string {
  const now = BigInt(Date.now());
  return `${now * 1_000_000n} ${(now + BigInt(ms)) * 1_000_000n}`;
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://${HOST}:${ports.admin}/metrics`)).text();
  return parsePrometheus(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

t.test('an upgrade whose first endpoint refuses the connection is requeued on the other one', async (t) => {
  const before = await metric('hostmesh_requeues_total');
  // Ten upgrades under round robin: about half meet the dead endpoint first; every one opens.
  for (let i = 0; i < 10; i++) {
    const r = await open('ws');
    t.ok(r.ws, `upgrade ${i} opened (${r.err ?? 'ok'})`);
    if (r.ws === undefined) continue;
    const reply = new Promise<string>((resolve) => r.ws?.once('message', (m) => resolve(String(m))));
    r.ws.send(`hello ${i}`);
    t.equal(await reply, `echo hello ${i}`, 'the tunnel carries bytes both ways');
    r.ws.close();
  }
  const requeued = (await metric('hostmesh_requeues_total')) - before;
  t.ok(requeued >= 1, `refused connections were requeued (${requeued} of 10)`);
});

t.test("an upgrade's l5d-ctx-deadline bounds the wait for the 101: 503 TIMEOUT, the attempt cancelled", async (t) => {
  const n = stuck.length;
  const r = await open('hang', { 'l5d-ctx-deadline': deadlineIn(1500) });
  t.equal(r.status, 503, 'the deadline is a 503');
  t.match(r.err, /deadline/, 'l5d-err names the deadline');
  t.ok(r.ms < 5000, `answered without waiting for the app (${Math.round(r.ms)} ms)`);
  t.equal(stuck.length, n + 1, 'the app got the upgrade request');
  const last = stuck[stuck.length - 1] as net.Socket;
  await new Promise<void>((resolve) => (last.destroyed || last.readableEnded ? resolve() : last.once('close', () => resolve())));
  t.pass("the upstream connection was closed: the app's upgrade request was cancelled");
});

t.test('an upgrade whose deadline has already passed is answered at once and never sent', async (t) => {
  const n = stuck.length;
  const r = await open('hang', { 'l5d-ctx-deadline': deadlineIn(-1000) });
  t.equal(r.status, 503);
  t.match(r.err, /deadline/);
  t.equal(stuck.length, n, 'the app saw nothing');
});

t.test("an upgrade's connect is bounded by client.connectTimeoutMs: a TLS handshake that never ends is a 502, its socket closed", async (t) => {
  const before = muteClosed;
  const r = await open('tls-mute');
  t.equal(r.status, 502);
  t.match(r.err, /upgrade failed: timed out connecting to 127\.0\.0\.1:\d+/);
  t.ok(r.ms < 5000, `answered at the prefix's 300 ms connect timeout, not the 10 s default (${Math.round(r.ms)} ms)`);
  while (muteClosed === before) await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(muteClosed, before + 1, 'the half-finished TLS connection was closed');
});

t.test('a request is bounded by the same client.connectTimeoutMs: 503 TIMEOUT with l5d-err, the socket closed', async (t) => {
  const before = muteClosed;
  const started = performance.now();
  const r = await fetchVia('tls-mute');
  t.equal(r.status, 503);
  t.match(r.err, /timed out connecting to 127\.0\.0\.1:\d+/);
  t.ok(performance.now() - started < 5000, 'at the prefix connect timeout, not the 10 s default');
  while (muteClosed === before) await new Promise((resolve) => setTimeout(resolve, 10));
  t.pass('the half-finished TLS connection was closed');
});

t.test('the router still serves an ordinary upgrade afterwards', async (t) => {
  const r = await open('ws');
  t.ok(r.ws, 'opened');
  r.ws?.close();
});
