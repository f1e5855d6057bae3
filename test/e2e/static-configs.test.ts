// Linkerd 1's io.l5d.static configs through a running router (config loaded from YAML): per-service
// retries and timeouts by logical-name prefix, per-client TLS by bound-id prefix, never plaintext.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { request } from '../helpers/http.js';
import { listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound, timed } from '../helpers/prompt.js';
import net from 'node:net';

const HOST = '127.0.0.1';
const EXT = '127.0.0.6';
const EXT_WRONG = '127.0.0.7';

const hits = new Map<string, number>();
const backend = await listen(
  http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path.startsWith('/always-503')) {
      res.writeHead(503);
      res.end('down\n');
      return;
    }
    if (path.startsWith('/sleep')) {
      const timer = setTimeout(() => res.end('late\n'), 1000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.end('ok\n');
  }),
  HOST,
);
t.teardown(async () => {
  backend.closeAllConnections();
  await new Promise((r) => backend.close(r));
});

// The external TLS server, twice (two addresses, so two bound ids with different prefix configs).
const ca = createCa({ commonName: 'external CA', days: 1 });
const cert = issueCertificate(ca, { commonName: 'api.external.test', dnsNames: ['api.external.test'], usage: 'server', days: 1 });
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-static-configs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await writeFile(join(dir, 'ca.pem'), ca.certPem);
const tlsSeen: { host: string; servername: string | false | null }[] = [];
const handshakes = new Map<string, number>();
async function tlsServer(host: string): Promise<number> {
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    tlsSeen.push({ host, servername: (req.socket as TLSSocket).servername });
    res.end('over tls\n');
  });
  server.on('connection', () => handshakes.set(host, (handshakes.get(host) ?? 0) + 1));
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as { port: number }).port;
}
const extPort = await tlsServer(EXT);
const wrongPort = await tlsServer(EXT_WRONG);

const backendPort = (backend.address() as { port: number }).port;
// A pod that fails every request, beside the good backend, for failure accrual per prefix.
const badHits = new Map<string, number>();
const bad = await listen(
  http.createServer((req, res) => {
    const host = req.headers.host ?? '';
    badHits.set(host, (badHits.get(host) ?? 0) + 1);
    res.writeHead(500);
    res.end('broken\n');
  }),
  HOST,
);
t.teardown(async () => {
  bad.closeAllConnections();
  await new Promise((r) => bad.close(r));
});
const badPort = (bad.address() as { port: number }).port;
await writeFile(join(dir, 'pods'), `${HOST} ${backendPort}\n${HOST} ${badPort}\n`);
await writeFile(join(dir, 'pods2'), `${HOST} ${backendPort}\n${HOST} ${badPort}\n`);
const [routerPort, adminPort] = (await freePorts(HOST, 2)) as [number, number];
const yaml = `
admin: {ip: ${HOST}, port: ${adminPort}}
namers: [{kind: io.l5d.fs, rootDir: .}]
routers:
- protocol: http
  label: outgoing
  dtab: |
    /svc => /$/inet/${HOST}/${backendPort};
    /svc/ext => /$/inet/${EXT}/${extPort};
    /svc/wrong => /$/inet/${EXT_WRONG}/${wrongPort};
    /svc/pods => /#/io.l5d.fs/pods;
    /svc/pods2 => /#/io.l5d.fs/pods2;
  servers: [{ip: ${HOST}, port: ${routerPort}}]
  bindingCache: {paths: 100, clients: 100}
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc
      retries: {maxRetriesPerRequest: 2}
    - prefix: /svc/users
      responseClassifier: {kind: io.l5d.http.retryableRead5XX}
    - prefix: /svc/slow
      totalTimeoutMs: 150
  client:
    kind: io.l5d.static
    configs:
    - prefix: /$/inet/${EXT}
      tls: {commonName: api.external.test, trustCerts: [ca.pem]}
    - prefix: /$/inet/${EXT_WRONG}
      tls: {commonName: other.external.test, trustCerts: [ca.pem]}
    - prefix: /#/io.l5d.fs/pods
      failureAccrual: {kind: io.l5d.consecutiveFailures, failures: 1, backoff: {kind: constant, ms: 600000}}
shutdownGraceMs: 100
`;
const { config } = parseConfig(yaml, join(dir, 'config.yaml'));
const mesh: Hostmesh = await startHostmesh(config, { logger: silentLogger() });
t.teardown(() => mesh.close(100));

const via = (service: string, path: string) => request({ host: HOST, port: routerPort, path, headers: { host: service } });

/**
 * A normal request (users) before an attack, timed: "served within 1 s" after it is 10x this, at
 * least 2 s, so a busy machine, which slows both, cannot trip it.
 */
async function normalBound(t: Test): Promise<number> {
  const r = await timed(() => via('users', '/before'));
  t.equal(r.value.status, 200, `a normal request before (${r.ms.toFixed(0)} ms)`);
  return promptBound(r.ms, 2000);
}

t.test('two service prefixes, one 503 backend: /svc/users is retried (retryableRead5XX), /svc/orders is not', async (t) => {
  const users = await via('users', '/always-503/u');
  t.equal(users.status, 503);
  t.equal(hits.get('/always-503/u'), 3, 'one attempt and the 2 retries of /svc (maxRetriesPerRequest), the classifier of /svc/users');
  const orders = await via('orders', '/always-503/o');
  t.equal(orders.status, 503);
  t.equal(hits.get('/always-503/o'), 1, 'the default classifier (nonRetryable5XX): never retried');
});

t.test("a service prefix's totalTimeoutMs bounds its requests only", async (t) => {
  const slow = await via('slow', '/sleep/1');
  t.equal(slow.status, 503);
  t.match(decodeURIComponent(String(slow.headers['l5d-err'])), /total timeout \(service\.totalTimeoutMs 150 ms\)/);
  const ok = await via('users', '/fine');
  t.equal(ok.status, 200, 'others are unaffected');
});

t.test('a client prefix with TLS: the request arrives over TLS with the commonName as servername', async (t) => {
  const r = await via('ext', '/hello');
  t.equal(r.status, 200);
  t.equal(r.body, 'over tls\n');
  t.same(tlsSeen.at(-1), { host: EXT, servername: 'api.external.test' });
});

t.test('a wrong commonName: 502 with l5d-err, nothing sent (no plaintext fallback), the router keeps serving', async (t) => {
  const bound = await normalBound(t);
  const before = tlsSeen.length;
  const r = await via('wrong', '/secret');
  t.equal(r.status, 502);
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), new RegExp(`cannot reach ${EXT_WRONG.replaceAll('.', '\\.')}:${wrongPort}`));
  t.equal(tlsSeen.length, before, 'the server received no request');
  t.ok((handshakes.get(EXT_WRONG) ?? 0) >= 1, 'a TLS handshake was tried (and refused by the name check)');
  const ok = await timed(() => via('users', '/after'));
  t.equal(ok.value.status, 200);
  t.ok(ok.ms < bound, `a normal request is served within 1 s (${ok.ms.toFixed(0)} ms; bound ${bound} ms, 10x before)`);
});

t.test("an Upgrade to a client with per-prefix TLS is tunnelled with that client's TLS (SNI, CA), never plaintext", async (t) => {
  const before = tlsSeen.length;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(routerPort, HOST, () => {
      socket.write('GET /ws HTTP/1.1\r\nHost: ext\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('over tls')) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  // The TLS server is no WebSocket server: it answers the request as plain HTTP, relayed as is.
  t.match(answer, /^HTTP\/1\.1 200 /);
  t.match(answer, /over tls/);
  t.same(tlsSeen.slice(before), [{ host: EXT, servername: 'api.external.test' }], 'over TLS, with the prefix commonName as SNI');
});

t.test('an Upgrade to a per-prefix TLS client whose certificate does not match is a 502, nothing sent', async (t) => {
  const before = tlsSeen.length;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(routerPort, HOST, () => {
      socket.write('GET /ws HTTP/1.1\r\nHost: wrong\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  t.match(answer, /^HTTP\/1\.1 502 /);
  t.match(decodeURIComponent(/l5d-err: ([^\r]*)/i.exec(answer)?.[1] ?? ''), /upgrade failed/);
  t.equal(tlsSeen.length, before, 'the server saw no request');
});

t.test('names come from requests: 600 distinct services keep 100 merged settings, and the router serves', async (t) => {
  const bound = await normalBound(t);
  for (let i = 0; i < 600; i++) await via(`svc-${i}`, '/fine');
  const metrics = await request({ host: HOST, port: adminPort, path: '/metrics' });
  const evicted = parsePrometheus(metrics.body).find(
    (m) => m.name === 'hostmesh_static_params_evictions_total' && m.labels['router'] === 'outgoing' && m.labels['scope'] === 'service',
  );
  t.ok((evicted?.value ?? 0) >= 500, `service settings evicted past the cap of 100: ${evicted?.value}`);
  const after = await timed(() => via('users', '/after-many'));
  t.equal(after.value.status, 200);
  t.ok(after.ms < bound, `served within 1 s (${after.ms.toFixed(0)} ms; bound ${bound} ms, 10x before the 600 names)`);
});

t.test("a client prefix's failureAccrual: its failing pod is dead after 1 failure, another client's after the default 5", async (t) => {
  for (let i = 0; i < 40; i++) {
    await via('pods', `/p/${i}`);
    await via('pods2', `/q/${i}`);
  }
  t.equal(badHits.get('pods'), 1, 'consecutiveFailures 1 (the prefix config): one request reached the failing pod');
  t.equal(badHits.get('pods2'), 5, 'the default consecutiveFailures 5 for a client no prefix config names');
  const state = JSON.parse((await request({ host: HOST, port: adminPort, path: '/client_state.json' })).body) as unknown;
  t.match(JSON.stringify(state), new RegExp(`"address":"${HOST.replaceAll('.', '\\.')}:${badPort}"[^}]*"accrual":"dead"`), 'client_state.json shows it dead');
  const metrics = parsePrometheus((await request({ host: HOST, port: adminPort, path: '/metrics' })).body);
  const dead = metrics.find((m) => m.name === 'hostmesh_failure_accrual_dead_endpoints' && m.labels['router'] === 'outgoing');
  t.equal(dead?.value, 2, 'the dead gauge sums the router state and the prefix state');
});
