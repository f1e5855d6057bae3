// `workers: 2` on an mTLS incoming port: each worker verifies client certificates itself. Requests
// with a mesh certificate reach the app through both workers (each worker's own connections to the
// app, read from /proc); connections without one are refused, whichever worker takes them, and
// /metrics counts every refusal once.

import '../helpers/test-keys.js';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { asPeer, writeListenerPki } from '../helpers/listener-pki.js';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePorts } from '../helpers/ports.js';
import { ownerOfClientPort, startPrimary } from '../helpers/workers.js';

const IP = '127.0.0.54';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-workers-tls-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const { ca, peer } = await writeListenerPki(dir, IP);

function call(port: number, withCertificate: boolean): Promise<string> {
  return new Promise((resolve) => {
    https
      .get(
        {
          host: IP,
          port,
          path: '/',
          headers: { host: 'web' },
          agent: false,
          ...asPeer(ca, withCertificate ? peer : undefined),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(`${res.statusCode} ${body}`));
          res.on('error', () => resolve('refused'));
        },
      )
      .on('error', () => resolve('refused'));
  });
}

t.test('workers: 2 on an mTLS port: both workers serve mesh peers, and refuse clients without a certificate', async (t) => {
  const sources = new Set<number>();
  let hits = 0;
  const app = http.createServer((req, res) => {
    hits++;
    sources.add(req.socket.remotePort ?? 0);
    res.end('app');
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => {
    app.closeAllConnections();
    app.close();
  });
  const appPort = (app.address() as net.AddressInfo).port;
  const [port, admin] = (await freePorts(IP, 2)) as [number, number];
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `
admin: {ip: ${IP}, port: ${admin}}
nodeName: node-1
workers: 2
drainAnnounceMs: 0
routers:
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/${appPort};
  servers:
  - {port: ${port}, ip: ${IP}, tls: {certPath: cert.pem, keyPath: key.pem, caCertPath: ca.pem, requireClientAuth: true}}
`,
  );
  const primary = startPrimary(t, file, IP, admin);
  const workers = await primary.untilRunning(2);
  t.equal(workers.length, 2, 'two workers serving');
  const scrape = primary.scrape;

  const before = (await scrape()).filter((s) => s.name === 'hostmesh_tls_handshake_failures_total').reduce((n, s) => n + s.value, 0);
  const peers = await Promise.all(Array.from({ length: 8 }, () => call(port, true)));
  t.same(peers, Array(8).fill('200 app'), 'every request with a mesh certificate is answered');
  const owners = new Set([...sources].map((p) => ownerOfClientPort(p, workers)));
  t.same([...owners].sort(), [...workers].sort(), 'both workers served mTLS requests');
  const served = hits;
  const strangers = await Promise.all(Array.from({ length: 8 }, () => call(port, false)));
  t.same(strangers, Array(8).fill('refused'), 'every connection without a client certificate is refused');
  t.equal(hits, served, 'no request of a stranger reached the app');
  const after = (await scrape()).filter((s) => s.name === 'hostmesh_tls_handshake_failures_total').reduce((n, s) => n + s.value, 0);
  t.equal(after - before, 8, '/metrics counts each refusal once, across both workers');
});
