// End to end through two routers (node-a 127.0.0.2, node-b 127.0.0.3) over mutual TLS, with the
// demo's topology: real sockets, certificates made at test time, real clients.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { spawn } from 'node:child_process';
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ProxyAgent, request as undiciRequest } from 'undici';
import { startDemo, type Demo } from '../../src/demo/demo.js';
import { silentLogger } from '../../src/log.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { needs } from '../helpers/requires.js';

const A = '127.0.0.2';
const B = '127.0.0.3';

let demo: Demo;
let ports: { outgoing: number; incoming: number; admin: number };

t.before(async () => {
  const [outgoing, incoming, admin] = (await freePorts(A, 3)) as [number, number, number];
  ports = { outgoing, incoming, admin };
  demo = await startDemo(silentLogger(), ports);
});
t.teardown(() => demo.close());

const viaA = (path: string, headers: http.OutgoingHttpHeaders = {}) => request({ host: A, port: ports.outgoing, path, headers });

t.test('absolute-form (what http_proxy clients send) crosses both routers', async (t) => {
  const r = await viaA('http://world/');
  t.equal(r.status, 200);
  t.equal(r.body, 'world (node-b)\n');
  t.equal(r.headers['x-called-by'], 'spiffe://hostmesh/node/node-a', 'the destination saw the verified caller');
});

t.test('origin-form with Host is routed the same way', async (t) => {
  const r = await viaA('/', { host: 'world' });
  t.equal(r.status, 200);
  t.equal(r.body, 'world (node-b)\n');
});

t.test('hello calls world through its own router', async (t) => {
  const r = await viaA('http://hello/');
  t.equal(r.body, 'Hello from node-a, world says: world (node-b)\n');
});

t.test('curl with http_proxy', needs(t, 'curl', 'curl with http_proxy (test/e2e/mesh.test.ts)'), async (t) => {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('curl', ['-s', '-S', 'http://world/'], {
      env: { ...process.env, http_proxy: `http://${A}:${ports.outgoing}`, NO_PROXY: '' },
    });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`curl exited ${code}`))));
  });
  t.equal(out, 'world (node-b)\n');
});

t.test("undici's ProxyAgent without tunnelling", async (t) => {
  const agent = new ProxyAgent({ uri: `http://${A}:${ports.outgoing}`, proxyTunnel: false });
  t.teardown(() => agent.close());
  const r = await undiciRequest('http://world/path?q=1', { dispatcher: agent });
  t.equal(r.statusCode, 200);
  t.equal(await r.body.text(), 'world (node-b)\n');
});

t.test('l5d-dtab reroutes a request and follows the call chain as l5d-ctx-dtab', async (t) => {
  const direct = await viaA('http://world/', { 'l5d-dtab': '/svc/world => /svc/world-v2' });
  t.equal(direct.body, 'world-v2 (node-b)\n');
  const chained = await viaA('http://hello/', { 'l5d-dtab': '/svc/world => /svc/world-v2' });
  t.equal(chained.body, 'Hello from node-a, world says: world-v2 (node-b)\n');
});

t.test('l5d-ctx-dtab and routing headers arrive downstream; forged l5d-client-id does not', async (t) => {
  // A backend that echoes the headers it received, registered in the fs namer on node-b.
  const seen: http.IncomingHttpHeaders[] = [];
  const echo = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end('ok');
  });
  await new Promise<void>((r) => echo.listen(0, B, r));
  t.teardown(() => new Promise<void>((r) => echo.close(() => r())));
  const { port } = echo.address() as { port: number };
  await writeFile(join(demo.dir, 'disco', 'echo'), `${B} ${port} node=node-b\n`);
  let r = await viaA('http://echo/', { 'l5d-dtab': '/svc/x => /svc/y', 'l5d-client-id': 'forged-by-app' });
  for (let i = 0; r.status !== 200 && i < 50; i++) {
    await new Promise((res) => setTimeout(res, 100));
    r = await viaA('http://echo/', { 'l5d-dtab': '/svc/x => /svc/y', 'l5d-client-id': 'forged-by-app' });
  }
  t.equal(r.status, 200);
  const h = seen[seen.length - 1] as http.IncomingHttpHeaders;
  t.equal(h['l5d-ctx-dtab'], '/svc/x=>/svc/y');
  t.equal(h['l5d-dtab'], undefined, 'l5d-dtab is consumed, not passed on');
  t.equal(h['l5d-client-id'], 'spiffe://hostmesh/node/node-a', 'only the verified identity');
  t.equal(h['l5d-dst-service'], '/svc/echo');
  t.equal(h['l5d-dst-client'], '/#/io.l5d.fs/echo');
  t.match(h['via'], /1\.1 hostmesh, 1\.1 hostmesh/);
  t.match(h['l5d-reqid'], /^[0-9a-f]{16}$/);
});

t.test('errors carry l5d-err with the status design.md gives', async (t) => {
  const neg = await viaA('http://nowhere/');
  t.equal(neg.status, 502);
  t.match(decodeURIComponent(String(neg.headers['l5d-err'])), /no route to \/svc\/nowhere/);
  t.match(neg.body, /dtab: \/svc=>\/#\/io.l5d.fs/);
  t.match(
    neg.body,
    /^delegation path:\n {2}\/svc\/nowhere\n {4}\/#\/io\.l5d\.fs\/nowhere {2}\(\/svc=>\/#\/io\.l5d\.fs\)\n {6}neg \(no route\)$/m,
    'the body shows where binding ended',
  );

  const bad = await viaA('http://world/', { 'l5d-dtab': '/svc => (' });
  t.equal(bad.status, 400);
  t.match(decodeURIComponent(String(bad.headers['l5d-err'])), /bad l5d-dtab/);
  t.equal(bad.body.split('\n')[0], decodeURIComponent(String(bad.headers['l5d-err'])), 'the body gives the same reason');

  const loop = await viaA('http://world/', { via: Array.from({ length: 64 }, () => '1.1 x').join(', ') });
  t.equal(loop.status, 400);
  t.match(decodeURIComponent(String(loop.headers['l5d-err'])), /loop/);

  const badHost = await viaA('/', { host: 'wor ld' });
  t.equal(badHost.status, 400);
  t.equal(decodeURIComponent(String(badHost.headers['l5d-err'])), "invalid Host 'wor ld'", 'l5d-err quotes the Host');
  t.equal(badHost.body, "invalid Host 'wor ld'\n", 'and so does the body');

  const scheme = await viaA('ftp://world/');
  t.equal(scheme.status, 400);
  t.equal(decodeURIComponent(String(scheme.headers['l5d-err'])), "unsupported scheme 'ftp' in absolute-form target");
  t.equal(scheme.headers['content-type'], 'text/plain; charset=utf-8');
});

t.test('a dead backend or peer is a 502 naming the address, and the router keeps serving', async (t) => {
  await writeFile(join(demo.dir, 'disco', 'dead'), `${B} 1 node=node-b\n`);
  let r = await viaA('http://dead/');
  for (let i = 0; r.status === 502 && /no route/.test(r.body) && i < 50; i++) {
    await new Promise((res) => setTimeout(res, 100));
    r = await viaA('http://dead/');
  }
  t.equal(r.status, 502);
  // The user's question is "which address?": the answer must name it, in l5d-err and the body.
  const err = decodeURIComponent(String(r.headers['l5d-err']));
  t.match(err, /cannot reach 127\.0\.0\.3:1\b/, `l5d-err names the dead address: ${err}`);
  t.match(r.body, /cannot reach 127\.0\.0\.3:1\b/, 'so does the body');
  t.match(r.body, /^service: \/svc\/dead$/m, 'with the service it was for');
  const ok = await viaA('http://world/');
  t.equal(ok.status, 200);
});
