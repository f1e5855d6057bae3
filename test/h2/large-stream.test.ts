// A large gRPC server stream through both h2 routers, run in a child process: every byte arrives,
// and the routers' RSS grows far less than the stream's size (flow control end to end: the app is
// slowed to what the client reads, nothing is buffered without bound). 64 MiB here (the suite's
// time budget on a shared machine); HOSTMESH_H2_STREAM_MIB=1024 runs the 1 GiB case.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import { greeterClient, startGreeter, unary, type HelloReply } from '../helpers/grpc-greeter.js';
import { B } from '../helpers/h2-mesh.js';
import { childEnv, childModule } from '../helpers/paths.js';

const MESSAGE = 64 * 1024;
const TOTAL = Number(process.env['HOSTMESH_H2_STREAM_MIB'] ?? '64') * 1024 * 1024;
/** What the routers' process (two nodes, four routers) may grow by while relaying the whole stream. */
const RSS_GROWTH_CEILING = 96 * 1024 * 1024;

t.test(`${TOTAL / 2 ** 20} MiB server stream through two routers with bounded router memory`, async (t) => {
  const app = await startGreeter(B, 'big');
  const mesh = childModule('test/helpers/h2-mesh-child.ts');
  const child = spawn(process.execPath, [...mesh.execArgv, mesh.file, B, String(app.port)], { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv() });
  const lines = createInterface({ input: child.stdout });
  const next = (): Promise<Record<string, unknown>> => new Promise((resolve) => lines.once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>)));
  t.teardown(async () => {
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    await app.close();
  });
  const { target } = (await next()) as { target: string };
  const client = greeterClient(target);
  t.teardown(() => client.close());
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await unary(client, 'SayHello', { name: 'probe' });
      break;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.stdin.write('rss\n');
  const baseline = (await next()) as { rssBytes: number };
  let bytes = 0;
  let messages = 0;
  await new Promise<void>((resolve, reject) => {
    const call = client.Lots({ count: TOTAL / MESSAGE, size: MESSAGE });
    call.on('data', (r: HelloReply) => {
      bytes += r.payload.length;
      messages++;
    });
    call.on('error', reject);
    call.on('end', () => resolve());
  });
  t.equal(messages, TOTAL / MESSAGE, 'every message arrived');
  t.equal(bytes, TOTAL, 'every byte arrived');
  child.stdin.write('rss\n');
  const after = (await next()) as { maxRssBytes: number };
  const growth = after.maxRssBytes - baseline.rssBytes;
  t.ok(
    growth < RSS_GROWTH_CEILING,
    `routers' peak RSS ${Math.round(after.maxRssBytes / 2 ** 20)} MiB, ${Math.round(growth / 2 ** 20)} MiB over the ${Math.round(baseline.rssBytes / 2 ** 20)} MiB before the stream (< ${RSS_GROWTH_CEILING / 2 ** 20} MiB)`,
  );
  t.comment(`${TOTAL / 2 ** 20} MiB relayed; routers' RSS growth ${Math.round(growth / 2 ** 20)} MiB`);
});
