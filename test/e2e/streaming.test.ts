// Bodies stream through both routers (node-a -> mTLS -> node-b) with back-pressure, never
// buffered whole: 256 MiB each way with memory bounded. The other streaming behaviours (a paused
// reader, a client or backend gone mid-body, trailers, 100-continue, HEAD, 204, 304) are in
// streaming-edges.test.ts: two files, so each stays far inside tap's timeout on a busy machine.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { Readable } from 'node:stream';
import t from 'tap';
import { B, listen, startMesh, type TestMesh } from '../helpers/mesh.js';
import { expectedHash, MiB, pattern, peakRssGrowth, proxied as via, responseOf, sha256Of } from '../helpers/streams.js';

// tap.timeout (120 s, package.json): the runner (scripts/run-tests.mjs) kills a file 15 s past it, so a
// longer one here would never be reached and the file would end killed, without tap's report of
// where it was. About 43 s on a loaded machine (flake8's notes).
t.setTimeout(120_000);

let mesh: TestMesh;
t.before(async () => {
  mesh = await startMesh();
});
t.teardown(() => mesh.close());

const proxied = (path: string, options: http.RequestOptions = {}): http.ClientRequest => via(mesh, path, options);

t.test('256 MiB up and 256 MiB down through both routers, memory bounded', async (t) => {
  const total = 256 * MiB;
  const want = await expectedHash(total);
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') {
      void sha256Of(req).then(({ hash, bytes }) => res.end(JSON.stringify({ hash, bytes })));
    } else if (req.url === '/down') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      pattern(total).pipe(res);
    } else res.end();
  });
  await listen(server, B);
  t.teardown(() => server.close());
  await mesh.register('bulk', server);

  const growthUp = await peakRssGrowth(async () => {
    const req = proxied('http://bulk/up', { method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
    const res = responseOf(req);
    pattern(total).pipe(req);
    const body = JSON.parse(await new Response(Readable.toWeb(await res) as ReadableStream).text()) as { hash: string; bytes: number };
    t.equal(body.bytes, total, 'the backend received every byte');
    t.equal(body.hash, want, 'and in order');
  });
  const growthDown = await peakRssGrowth(async () => {
    const res = await responseOf(proxied('http://bulk/down').end());
    const got = await sha256Of(res);
    t.equal(got.bytes, total, 'the client received every byte');
    t.equal(got.hash, want);
  });
  t.comment(`peak RSS growth: up ${(growthUp / MiB).toFixed(1)} MiB, down ${(growthDown / MiB).toFixed(1)} MiB`);
  // The test process holds the client, both routers and the backend; 256 MiB buffered anywhere
  // would show. 128 MiB leaves room for GC timing and TLS buffers.
  t.ok(growthUp < 128 * MiB, `upload peak RSS growth ${(growthUp / MiB).toFixed(1)} MiB < 128 MiB`);
  t.ok(growthDown < 128 * MiB, `download peak RSS growth ${(growthDown / MiB).toFixed(1)} MiB < 128 MiB`);
});
