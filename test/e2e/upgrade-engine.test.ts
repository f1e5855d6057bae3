// Upgrades on the one forwarding engine (issue 25): the same failure accrual and requeues as a
// request's, and an app's refusal of the upgrade (any answer but 101) relayed to the client as the
// app gave it, body and all, on one plaintext router with an io.l5d.fs namer.

import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { testRouter } from '../helpers/router-config.js';

const HOST = '127.0.0.1';
let dir: string;
let hm: Hostmesh;
let echo: http.Server;
let refuser: http.Server;
let refusals = 0;
let ports: { router: number; admin: number; dead: number };

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-upgrade-engine-'));
  echo = await listen(http.createServer(), HOST);
  const wss = new WebSocketServer({ server: echo });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo ${String(m)}`)));
  // An app that refuses every upgrade with a 403 and a chunked body (no Content-Length).
  refuser = await listen(http.createServer(), HOST);
  refuser.on('upgrade', (_req, socket: net.Socket) => {
    refusals++;
    socket.end(
      'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nx-app: refuser\r\ntransfer-encoding: chunked\r\n\r\n6\r\nno ws \r\n7\r\nfor you\r\n0\r\n\r\n',
    );
  });
  const [router, admin, dead] = (await freePorts(HOST, 3)) as [number, number, number];
  ports = { router, admin, dead };
  const echoPort = (echo.address() as net.AddressInfo).port;
  const refuserPort = (refuser.address() as net.AddressInfo).port;
  // `ws`: a dead endpoint and a live one (round robin meets the dead one first every other time).
  await writeFile(join(dir, 'ws'), `${HOST} ${dead}\n${HOST} ${echoPort}\n`);
  await writeFile(join(dir, 'refuser'), `${HOST} ${refuserPort}\n`);
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
    routers: [
      testRouter('out', HOST, router, '/svc => /#/io.l5d.fs;', {
        client: {
          loadBalancer: { kind: 'roundRobin' },
          // One refused connection marks the endpoint dead for a minute.
          failureAccrual: { kind: 'io.l5d.consecutiveFailures', failures: 1, backoff: { kind: 'constant', ms: 60_000 } },
        },
      }),
    ],
    shutdownGraceMs: 100,
    baseDir: dir,
  };
  hm = await startHostmesh(config, { logger: silentLogger() });
});

t.teardown(async () => {
  await hm.close(100);
  echo.close();
  refuser.close();
  await rm(dir, { recursive: true, force: true });
});

type Opened = { ws?: WebSocket; status?: number; headers?: http.IncomingHttpHeaders; body?: string; err?: string };

/** Opens a WebSocket to `host` through the router; a refusal comes back with its status, fields and body. */
function open(host: string): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${HOST}:${ports.router}/`, { headers: { host } });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', (err) => resolve({ err: err.message }));
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://${HOST}:${ports.admin}/metrics`)).text();
  return parsePrometheus(text)
    .filter((s) => s.name === name)
    .reduce((sum, s) => sum + s.value, 0);
}

t.test("an upgrade's refused connection is requeued and counted by failure accrual: the dead endpoint leaves the balancer", async (t) => {
  for (let i = 0; i < 6; i++) {
    const r = await open('ws');
    t.ok(r.ws, `upgrade ${i} opened (${r.err ?? r.status ?? 'ok'})`);
    if (r.ws === undefined) continue;
    const reply = new Promise<string>((resolve) => r.ws?.once('message', (m) => resolve(String(m))));
    r.ws.send(`hi ${i}`);
    t.equal(await reply, `echo hi ${i}`);
    r.ws.close();
  }
  t.equal(await metric('hostmesh_failure_accrual_removals_total'), 1, 'the refusing endpoint was marked dead once');
  t.equal(await metric('hostmesh_failure_accrual_dead_endpoints'), 1);
  t.equal(await metric('hostmesh_requeues_total'), 1, 'one requeue: after it, the balancer no longer chose the dead endpoint');
});

t.test("an app's refusal of the upgrade reaches the client as the app gave it: status, fields, whole body, then the close", async (t) => {
  const before = refusals;
  const r = await open('refuser');
  t.equal(r.status, 403);
  t.equal(r.headers?.['x-app'], 'refuser', "the app's fields");
  t.equal(r.body, 'no ws for you', 'the whole body, de-chunked once');
  t.equal(refusals, before + 1, 'sent once: a refusal is an answer, never retried or requeued');
});
