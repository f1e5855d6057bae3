// WebSocket through both routers (ws client and server), CONNECT to mesh names through undici's
// default ProxyAgent (it tunnels plain http:// with CONNECT), and CONNECT refusals.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { ProxyAgent, request as undiciRequest } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { A, B, listen, startMesh, type TestMesh } from '../helpers/mesh.js';

let mesh: TestMesh;
t.before(async () => {
  mesh = await startMesh();
});
t.teardown(() => mesh.close());

/** Sends raw bytes to the outgoing router and resolves with everything it answers until close. */
function raw(text: string, host = A): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(mesh.ports.outgoing, host, () => s.write(text));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      out += c;
      // CONNECT answers end with the header block when refused with a body-less 403.
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(10_000, () => {
      s.destroy();
      resolve(out);
    });
  });
}

t.test('a WebSocket echoes through both routers', async (t) => {
  const server = http.createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server });
  const seenHeaders: http.IncomingHttpHeaders[] = [];
  wss.on('connection', (ws, req) => {
    seenHeaders.push(req.headers);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo: ${String(data)}`));
  });
  await listen(server, B);
  t.teardown(() => {
    wss.close();
    server.close();
  });
  await mesh.register('wsecho', server);

  // Connect to node-a's router instead of resolving `wsecho` (origin-form with Host: wsecho).
  const port = mesh.ports.outgoing;
  class ToRouter extends http.Agent {
    override createConnection(): net.Socket {
      return net.connect(port, A);
    }
  }
  const ws = new WebSocket('ws://wsecho/chat', { headers: { 'l5d-client-id': 'forged' }, agent: new ToRouter() });
  t.teardown(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const replies: string[] = [];
  const got = new Promise<void>((resolve) => {
    ws.on('message', (d) => {
      replies.push(String(d));
      if (replies.length === 3) resolve();
    });
  });
  ws.send('one');
  ws.send('two');
  ws.send(Buffer.from('three'), { binary: true });
  await got;
  t.same(replies, ['echo: one', 'echo: two', 'three'], 'frames cross both routers both ways, in order');
  const h = seenHeaders[0] as http.IncomingHttpHeaders;
  t.equal(h['l5d-client-id'], 'spiffe://hostmesh/node/node-a', 'the verified identity, not the forged one');
  t.equal(h['l5d-dst-service'], '/svc/wsecho');
  t.equal(h.upgrade, 'websocket');
});

t.test('an Upgrade to a name that does not bind is a 502 with l5d-err', async (t) => {
  const out = await raw(
    'GET http://nowhere/ HTTP/1.1\r\nHost: nowhere\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  t.match(out, /^HTTP\/1\.1 502 /);
  t.match(out, /l5d-err: no%20route/);
});

t.test("undici's default ProxyAgent tunnels http:// with CONNECT to mesh names", async (t) => {
  const agent = new ProxyAgent({ uri: `http://${A}:${mesh.ports.outgoing}` });
  t.teardown(() => agent.close());
  const r = await undiciRequest('http://world/', { dispatcher: agent });
  t.equal(r.statusCode, 200);
  t.equal(await r.body.text(), 'world (node-b)\n');
  const r2 = await undiciRequest('http://world/again', { dispatcher: agent, headers: { 'l5d-dtab': '/svc/world => /svc/world-v2' } });
  t.equal(await r2.body.text(), 'world-v2 (node-b)\n', 'requests inside the tunnel are routed one by one');
});

t.test('CONNECT to a non-mesh name or another port is 403 with l5d-err', async (t) => {
  let out = await raw('CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n');
  t.match(out, /^HTTP\/1\.1 403 /, 'a name that does not bind');
  t.match(out, /l5d-err: CONNECT%20example\.com%3A80/);
  out = await raw('CONNECT world:443 HTTP/1.1\r\nHost: world:443\r\n\r\n');
  t.match(out, /^HTTP\/1\.1 403 /, 'a mesh name on another port');
  t.match(out, /only%20port%2080/);
  out = await raw('CONNECT world HTTP/1.1\r\nHost: world\r\n\r\n');
  t.match(out, /^HTTP\/1\.1 (400|403) /, 'no port at all');
  const agent = new ProxyAgent({ uri: `http://${A}:${mesh.ports.outgoing}` });
  t.teardown(() => agent.close());
  await t.rejects(undiciRequest('http://not-in-the-mesh/', { dispatcher: agent }), 'undici reports the refused tunnel');
  // The router still serves.
  const ok = await undiciRequest('http://world/', { dispatcher: agent });
  t.equal(ok.statusCode, 200);
  await ok.body.text();
});
