// The admin server against a browser and against its own router: foreign Host (DNS rebinding)
// and cross-origin requests are refused, state changes need a header no page can send without a
// preflight, and a shutdown that arrives through a router (a name bound to the admin) is refused.

import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { hostAllowed } from '../../src/admin/admin-guard.js';
import { freePorts } from '../helpers/ports.js';
import { request, type Reply } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { promptBound, timed, within } from '../helpers/prompt.js';

t.setTimeout(60_000);

const HOST = '127.0.0.1';
let mesh: Hostmesh;
let proxy = 0;
let adminPort = 0;

let boundMs = 0;
/** A normal request through the router (status 0 when it failed). */
const serve = (): Promise<{ status: number; body: string }> =>
  request({ host: HOST, port: proxy, path: 'http://health/' }).catch(() => ({ status: 0, body: '' }));

t.before(async () => {
  [proxy, adminPort] = (await freePorts(HOST, 2)) as [number, number];
  const backend = http.createServer((_req, res) => res.end('healthy'));
  await new Promise<void>((r) => backend.listen(0, HOST, r));
  t.teardown(() => new Promise<void>((r) => backend.close(() => r())));
  const backendPort = (backend.address() as net.AddressInfo).port;
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: adminPort, allowRemoteShutdown: false, allowedHosts: ['hostmesh-admin.example'] },
    namers: [],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: `/svc/health => /$/inet/${HOST}/${backendPort};`,
        identifier: [],
        transformers: [],
        servers: [{ ip: HOST, port: proxy }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 0,
    baseDir: '/',
  };
  mesh = await startHostmesh(config, { logger: silentLogger() });
  // The router's normal request before any attack: "within 1 s" is 10x this (at least 2 s), so a
  // busy machine, which slows both, cannot trip it.
  await serve();
  const baseline = await timed(serve);
  if (baseline.value.body !== 'healthy') throw new Error(`the router does not serve before the attacks: ${baseline.value.status}`);
  boundMs = promptBound(baseline.ms, 2000);
});
t.teardown(() => mesh.close(0));

const admin = (path: string, options: http.RequestOptions = {}, body?: string): Promise<Reply> =>
  request({ host: HOST, port: adminPort, path, ...options }, body);

/** The admin still answers, and the router still serves through it: nothing was shut down. */
async function alive(t: Test): Promise<void> {
  const ping = await within(admin('/admin/ping'), boundMs, { status: 0, headers: {}, body: `no answer within ${boundMs} ms` });
  t.equal(ping.body, 'pong', 'the admin still answers');
  const r = await within(serve(), boundMs, { status: 0, body: `no answer within ${boundMs} ms` });
  t.equal(r.body, 'healthy', `the router still serves within 1 s (bound ${boundMs} ms, 10x before the attacks)`);
}

async function refusals(reason: string): Promise<number> {
  const samples = parsePrometheus((await admin('/metrics')).body);
  return samples.filter((s) => s.name === 'hostmesh_admin_refusals_total' && s.labels['reason'] === reason).reduce((a, s) => a + s.value, 0);
}

t.test('which Host names the admin answers: loopback, its own addresses, configured names', async (t) => {
  const any = { adminIp: '0.0.0.0', localAddresses: () => ['10.1.2.3', 'fd00::7', '127.0.0.1'], allowedHosts: ['router.example'] };
  for (const host of [
    undefined,
    'localhost',
    'localhost:9990',
    'LOCALHOST.',
    'app.localhost:8080',
    '127.0.0.1:9990',
    '127.9.9.9',
    '[::1]:9990',
    '10.1.2.3:9990',
    '[fd00::7]:9990',
    'router.example',
    'Router.Example:9990',
  ]) {
    t.ok(hostAllowed(host, any), `${host ?? '(no Host)'} is allowed`);
  }
  for (const host of [
    'evil.example',
    'evil.example:9990',
    '10.9.9.9:9990',
    '[fd00::8]',
    'localhost.evil.example',
    'router.example.evil',
    '',
    '10.1.2.3@evil',
    '[::1',
  ]) {
    t.notOk(hostAllowed(host, any), `${host} is refused`);
  }
  const specific = { adminIp: '10.1.2.3', localAddresses: () => ['10.1.2.3', '10.4.4.4'], allowedHosts: [] };
  t.ok(hostAllowed('10.1.2.3:9990', specific), 'the address the admin listens on');
  t.notOk(hostAllowed('10.4.4.4:9990', specific), 'another interface the admin does not listen on');
});

t.test('DNS rebinding: a foreign Host is refused on every admin path', async (t) => {
  const before = await refusals('host');
  for (const path of ['/config.json', '/admin/ping', '/delegator.json?path=/svc/x', '/metrics', '/']) {
    const r = await admin(path, { headers: { host: `evil.example:${adminPort}` } });
    t.equal(r.status, 403, `${path}: 403`);
    t.match(decodeURIComponent(String(r.headers['l5d-err'])), /Host/, 'l5d-err says why');
    t.notMatch(r.body, /routers|pong/, 'nothing is read');
  }
  t.equal((await refusals('host')) - before, 5, 'each refusal is counted');
  t.equal((await admin('/config.json', { headers: { host: `localhost:${adminPort}` } })).status, 200, 'localhost is fine');
  t.equal((await admin('/config.json', { headers: { host: 'hostmesh-admin.example' } })).status, 200, 'a configured name (admin.allowedHosts) is fine');
  // HTTP/1.0 without Host (no browser sends that) is answered.
  const raw = await new Promise<string>((resolve) => {
    const s = net.connect(adminPort, HOST, () => s.write('GET /admin/ping HTTP/1.0\r\n\r\n'));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (out += c));
    s.on('close', () => resolve(out));
  });
  t.match(raw, /^HTTP\/1\.[01] 200/);
  await alive(t);
});

t.test('cross-origin requests are refused; same-origin ones (the dashboard) are served', async (t) => {
  const self = `http://${HOST}:${adminPort}`;
  t.equal((await admin('/config.json', { headers: { origin: 'http://evil.example' } })).status, 403, 'a foreign Origin');
  t.equal((await admin('/config.json', { headers: { origin: 'null' } })).status, 403, 'an opaque Origin');
  t.equal((await admin('/config.json', { headers: { origin: `${self}.evil.example` } })).status, 403, 'a look-alike Origin');
  t.equal((await admin('/config.json', { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403, 'Sec-Fetch-Site: cross-site');
  t.equal((await admin('/config.json', { headers: { origin: self, 'sec-fetch-site': 'same-origin' } })).status, 200, 'same origin');
  const post = await admin(
    '/delegator.json',
    { method: 'POST', headers: { origin: self, 'content-type': 'application/json' } },
    JSON.stringify({ router: 'outgoing', path: '/svc/health' }),
  );
  t.equal(post.status, 200, "the dashboard's same-origin POST to the delegator");
});

t.test('a CORS preflight is never answered positively', async (t) => {
  const r = await admin('/admin/shutdown', {
    method: 'OPTIONS',
    headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'hostmesh-admin' },
  });
  t.ok(r.status >= 400, `refused (${r.status})`);
  t.notOk(
    Object.keys(r.headers).some((h) => h.startsWith('access-control-')),
    'no CORS grant',
  );
  await alive(t);
});

t.test("a browser's simple POST cannot shut the router down", async (t) => {
  const before = await refusals('simple');
  // What a web page can send without a preflight: a form post, text/plain fetch, no-cors.
  for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, {}] as http.OutgoingHttpHeaders[]) {
    const r = await admin('/admin/shutdown', { method: 'POST', headers }, 'x');
    t.equal(r.status, 403, `refused: ${JSON.stringify(headers)}`);
    t.match(r.body, /hostmesh-admin: 1/, 'the answer says what to send');
    t.ok(r.headers['l5d-err'], 'with l5d-err');
  }
  t.equal((await refusals('simple')) - before, 3);
  const cross = await admin('/admin/shutdown', { method: 'POST', headers: { origin: 'http://evil.example', 'hostmesh-admin': '1' } });
  t.equal(cross.status, 403, 'the header from a foreign Origin does not help');
  t.equal((await admin('/admin/shutdown', { headers: { 'hostmesh-admin': '1' } })).status, 405, 'GET is still 405');
  await alive(t);
});

t.test('a shutdown sent through the router (a name bound to the loopback admin) is refused', async (t) => {
  const before = await refusals('forwarded');
  // The attack: an override binds a loopback name to the admin; the router's connection comes
  // from loopback, so the loopback check alone would let it through.
  const r = await request({
    host: HOST,
    port: proxy,
    method: 'POST',
    path: 'http://localhost/admin/shutdown',
    headers: { 'hostmesh-admin': '1', 'l5d-dtab': `/svc/localhost => /$/inet/${HOST}/${adminPort}` },
  });
  t.equal(r.status, 403, 'refused');
  t.match(r.body, /through a router/);
  t.equal((await refusals('forwarded')) - before, 1, 'counted');
  // A client cannot hide the router's marks behind padding: they lead the forwarded request.
  const padded = await request({
    host: HOST,
    port: proxy,
    method: 'POST',
    path: 'http://localhost/admin/shutdown',
    headers: {
      'hostmesh-admin': '1',
      'l5d-dtab': `/svc/localhost => /$/inet/${HOST}/${adminPort}`,
      ...Object.fromEntries(Array.from({ length: 490 }, (_, i) => [`x-pad-${i}`, '1'])),
    },
  });
  t.equal(padded.status, 403, 'refused with 490 padding headers too');
  // A direct request that carries a router's marks is refused the same way.
  t.equal((await admin('/admin/shutdown', { method: 'POST', headers: { 'hostmesh-admin': '1', via: '1.1 hostmesh' } })).status, 403, 'Via: hostmesh');
  t.equal((await admin('/admin/shutdown', { method: 'POST', headers: { 'hostmesh-admin': '1', 'l5d-dst-service': '/svc/x' } })).status, 403, 'l5d-dst-service');
  await alive(t);
});

t.test("the operator's request shuts it down: curl -X POST -H 'hostmesh-admin: 1'", async (t) => {
  const r = await admin('/admin/shutdown', { method: 'POST', headers: { 'hostmesh-admin': '1' } });
  t.equal(r.status, 200);
  t.equal(r.body, 'shutting down\n');
  const deadline = Date.now() + 5000;
  let down = false;
  while (!down && Date.now() < deadline) {
    down = await admin('/admin/ping', { timeout: 500 }).then(
      () => false,
      () => true,
    );
    if (!down) await new Promise((res) => setTimeout(res, 50));
  }
  t.ok(down, 'the admin server closed');
});

t.test('admin.allowedHosts is validated: host names only', async (t) => {
  const yaml = (hosts: string): string =>
    `admin:\n  allowedHosts: [${hosts}]\nrouters:\n  - protocol: http\n    dtab: /svc => /$/inet/127.0.0.1/1;\n    servers:\n      - port: 4140\n`;
  t.same(parseConfig(yaml('hostmesh-admin.hostmesh.svc, node-1'), 'c.yaml').config.admin.allowedHosts, ['hostmesh-admin.hostmesh.svc', 'node-1']);
  for (const bad of ["'http://x'", "'x:9990'", "'*.example'", "''"]) t.throws(() => parseConfig(yaml(bad), 'c.yaml'), ConfigError, bad);
});
