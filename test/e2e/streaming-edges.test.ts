// Streaming through both routers (node-a -> mTLS -> node-b), the edges: a paused reader stalls
// the backend, a client gone mid-upload cancels the upstream, a backend gone mid-response
// truncates the client's response, and trailers, 100-continue, HEAD, 204 and 304 behave as
// HTTP/1.1 requires. The 256 MiB each-way memory bound is in streaming.test.ts.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import t from 'tap';
import { B, listen, startMesh, type TestMesh } from '../helpers/mesh.js';
import { MiB, pattern, proxied as via, responseOf, sha256Of } from '../helpers/streams.js';

let mesh: TestMesh;
t.before(async () => {
  mesh = await startMesh();
});
t.teardown(() => mesh.close());

const proxied = (path: string, options: http.RequestOptions = {}): http.ClientRequest => via(mesh, path, options);

t.test('a paused reader stalls the backend (back-pressure end to end)', async (t) => {
  const total = 128 * MiB;
  let written = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/slow-reader') return void res.end();
    const src = pattern(total);
    src.on('data', (c: Buffer) => (written += c.length));
    src.pipe(res);
  });
  await listen(server, B);
  t.teardown(() => server.close());
  await mesh.register('firehose', server);

  const res = await responseOf(proxied('http://firehose/slow-reader').end());
  res.pause();
  // Poll until the backend stops making progress (no change across 500 ms), ceiling 20 s.
  let last = -1;
  const deadline = Date.now() + 20_000;
  while (written !== last && Date.now() < deadline) {
    last = written;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.ok(written < total / 2, `the backend stalled after ${(written / MiB).toFixed(1)} MiB of ${total / MiB} MiB`);
  res.resume();
  const got = await sha256Of(res);
  t.equal(got.bytes, total, 'and everything arrives once the reader resumes');
});

t.test('a client gone mid-upload cancels the upstream request', async (t) => {
  let sawAbort = false;
  let gotBytes = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/upload') return void res.end();
    req.on('data', (c: Buffer) => (gotBytes += c.length));
    req.on('close', () => {
      if (!req.complete) sawAbort = true;
    });
  });
  await listen(server, B);
  t.teardown(() => server.close());
  await mesh.register('uploads', server);

  const req = proxied('http://uploads/upload', { method: 'PUT', headers: { 'transfer-encoding': 'chunked' } });
  req.on('error', () => undefined);
  req.write(Buffer.alloc(256 * 1024, 1));
  const deadline = Date.now() + 10_000;
  while (gotBytes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(gotBytes > 0, 'the upload started streaming before it ended');
  req.destroy();
  while (!sawAbort && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(sawAbort, 'the backend saw its request end incomplete');
});

t.test('a backend gone mid-response ends the client response truncated, not hanging', async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url !== '/die') return void res.end();
    res.writeHead(200, { 'content-length': String(10 * MiB) });
    res.write(Buffer.alloc(MiB, 2), () => setTimeout(() => res.socket?.destroy(), 50));
  });
  await listen(server, B);
  t.teardown(() => server.close());
  await mesh.register('dies', server);

  const res = await responseOf(proxied('http://dies/die').end());
  t.equal(res.statusCode, 200);
  let bytes = 0;
  const outcome = await new Promise<string>((resolve) => {
    res.on('data', (c: Buffer) => (bytes += c.length));
    res.on('end', () => resolve('end'));
    res.on('aborted', () => resolve('aborted'));
    res.on('error', () => resolve('error'));
    res.on('close', () => resolve(res.complete ? 'end' : 'truncated'));
  });
  t.not(outcome, 'end', `the client sees a truncated response (${outcome})`);
  t.ok(bytes < 10 * MiB, `got ${bytes} of ${10 * MiB} bytes`);
  t.notOk(res.complete);
});

t.test('trailers, 100-continue, HEAD, 204 and 304', async (t) => {
  const server = http.createServer((req, res) => {
    switch (req.url) {
      case '/trailers':
        res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
        res.write('body with a trailer');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
        return;
      case '/echo':
        req.pipe(res);
        return;
      case '/no-content':
        res.writeHead(204).end();
        return;
      case '/not-modified':
        res.writeHead(304, { etag: '"v1"' }).end();
        return;
      default:
        res.writeHead(200, { 'content-length': '11', 'x-kind': 'head' });
        res.end(req.method === 'HEAD' ? undefined : 'hello world');
    }
  });
  await listen(server, B);
  t.teardown(() => server.close());
  await mesh.register('misc', server);

  const tr = await responseOf(proxied('http://misc/trailers').end());
  const text = (await sha256Of(tr)).bytes;
  t.equal(text, 'body with a trailer'.length);
  t.equal(tr.trailers['x-checksum'], 'abc123', 'response trailers cross both routers');

  const cont = proxied('http://misc/echo', { method: 'POST', headers: { expect: '100-continue', 'content-length': '5' } });
  let sawContinue = false;
  cont.on('continue', () => {
    sawContinue = true;
    cont.end('hello');
  });
  const contRes = await responseOf(cont);
  const chunks: Buffer[] = [];
  for await (const c of contRes) chunks.push(c as Buffer);
  t.ok(sawContinue, 'the client got 100 Continue');
  t.equal(Buffer.concat(chunks).toString(), 'hello', 'and the body it then sent arrived');

  const head = await responseOf(proxied('http://misc/', { method: 'HEAD' }).end());
  t.equal(head.headers['content-length'], '11', 'HEAD keeps Content-Length');
  t.equal(head.headers['x-kind'], 'head');
  t.equal((await sha256Of(head)).bytes, 0, 'and has no body');

  const nc = await responseOf(proxied('http://misc/no-content').end());
  t.equal(nc.statusCode, 204);
  t.equal((await sha256Of(nc)).bytes, 0);

  const nm = await responseOf(proxied('http://misc/not-modified', { headers: { 'if-none-match': '"v1"' } }).end());
  t.equal(nm.statusCode, 304);
  t.equal(nm.headers.etag, '"v1"');
  t.equal((await sha256Of(nm)).bytes, 0);
});

t.test("a chunked request's trailers cross both routers; fields that may not be trailers do not", async (t) => {
  const seen: { body: string; trailers: string[] }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST') seen.push({ body, trailers: req.rawTrailers });
      res.end('ok');
    });
  });
  await listen(server, B);
  t.teardown(() => server.close());
  await mesh.register('upload-trailers', server);

  const req = proxied('http://upload-trailers/up', { method: 'POST', headers: { 'transfer-encoding': 'chunked', trailer: 'x-sum' } });
  const res = responseOf(req);
  req.write('part one, ');
  req.write('part two');
  req.addTrailers([
    ['X-Sum', 'abc123'],
    ['x-sum', 'again'],
    ['Host', 'elsewhere'],
    ['Authorization', 'Bearer late'],
  ]);
  req.end();
  const r = await res;
  t.equal(r.statusCode, 200, `answered (${String(r.headers['l5d-err'] ?? '')})`);
  await sha256Of(r);
  t.equal(seen.length, 1);
  t.equal(seen[0]?.body, 'part one, part two', 'the body arrived');
  t.same(
    seen[0]?.trailers,
    ['X-Sum', 'abc123', 'x-sum', 'again'],
    'the trailers arrived, repeats in order; Host and Authorization were dropped (RFC 9110 6.5.1)',
  );
});
