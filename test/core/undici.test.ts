// src/core/undici.ts: undici's dispatchers loaded without the rest of undici, and the endpoint
// pools' lean wait queue (undici's own allocates 16 KB per pool up front).

import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import t from 'tap';
import { Agent, Client, hasLeanQueue, Pool, WaitQueue } from '../../src/core/undici.js';

/** undici's Client, Pool and Agent modules loaded in this process so far. */
const require = createRequire(import.meta.url);
const loadedDispatchers = (): string[] =>
  Object.keys(require.cache)
    .map((k) => /undici[\\/]lib[\\/]dispatcher[\\/](client|pool|agent)\.js$/.exec(k)?.[1])
    .filter((k): k is string => k !== undefined)
    .sort();
// Read before any test runs: importing src/core/undici.ts must not load them.
const atImport = loadedDispatchers();

setFlagsFromString('--expose-gc');

t.test("undici's Client, Pool and Agent load when first used, not when imported; then they are undici's classes", async (t) => {
  t.same(atImport, [], 'none loaded by the import (a lean-engine router never uses them)');
  const pool = new Pool('http://127.0.0.1:9');
  t.teardown(() => pool.close());
  t.same(loadedDispatchers(), ['client', 'pool'], "a pool loads undici's Pool (and the Client it is made of)");
  t.ok(pool instanceof Pool, 'instanceof works through the lazy class');
  t.equal(
    Object.getPrototypeOf(Object.getPrototypeOf(pool)),
    (require('undici/lib/dispatcher/pool.js') as { prototype: object }).prototype,
    "a subclass of undici's Pool",
  );
  const client = new Client('http://127.0.0.1:9');
  t.ok(client instanceof Client, 'instanceof Client');
  t.notOk(client instanceof Pool, 'a Client is no Pool');
  t.equal(Object.getPrototypeOf(client), (require('undici/lib/dispatcher/client.js') as { prototype: object }).prototype, "undici's own Client");
  await client.close();
  class Mine extends Agent {
    readonly mine = true;
  }
  const agent = new Mine();
  t.ok(agent instanceof Mine && agent instanceof Agent && agent.mine, 'a class extending the lazy one constructs as itself');
  t.same(loadedDispatchers(), ['agent', 'client', 'pool']);
  await agent.close();
});
const gc = runInNewContext('gc') as () => void;

t.test('the pool runs on the lean queue: a future undici that renames its field fails here, not silently', async (t) => {
  const pool = new Pool('http://127.0.0.1:9');
  t.teardown(() => pool.close());
  t.ok(hasLeanQueue(pool));
});

t.test('requests beyond the connections wait in the queue and are all served, first come first served', async (t) => {
  const order: string[] = [];
  const server = http.createServer((req, res) => {
    order.push(req.url ?? '');
    setImmediate(() => res.end(req.url));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1, pipelining: 1 });
  t.teardown(() => pool.close());
  const paths = Array.from({ length: 40 }, (_, i) => `/${i}`);
  const bodies = await Promise.all(paths.map((path) => pool.request({ path, method: 'GET' }).then((r) => r.body.text())));
  t.same(bodies, paths, 'every request answered');
  t.same(order, paths, 'in the order they were queued');
  t.equal(pool.stats.queued, 0);
});

t.test('the request API is on every dispatcher (what undici index adds)', async (t) => {
  for (const d of [new Client('http://127.0.0.1:9'), new Agent(), new Pool('http://127.0.0.1:9')]) {
    t.type(d.request, 'function');
    t.type(d.stream, 'function');
    t.type(d.upgrade, 'function');
    await d.close();
  }
});

t.test('1,000 idle endpoint pools hold well under 16 MB of heap (undici alone: ~18 MB)', async (t) => {
  new Pool('http://127.0.0.1:9').close().catch(() => undefined);
  gc();
  const before = process.memoryUsage().heapUsed;
  const pools = Array.from({ length: 1000 }, (_, i) => new Pool(`http://127.0.0.1:${10_000 + i}`, { connections: 4 }));
  gc();
  const mb = (process.memoryUsage().heapUsed - before) / 1048576;
  t.ok(mb < 8, `${mb.toFixed(1)} MB for 1,000 pools`);
  await Promise.all(pools.map((p) => p.close()));
});

t.test('property: WaitQueue behaves as a FIFO array under any push/shift sequence', async (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.integer({ min: 0, max: 3000 }).map((n) => ({ push: n })),
          fc.constant({ shift: true }),
        ),
        { maxLength: 3000 },
      ),
      (ops) => {
        const q = new WaitQueue<number>();
        const model: number[] = [];
        for (const op of ops) {
          if ('push' in op) {
            q.push(op.push);
            model.push(op.push);
          } else if (q.shift() !== (model.shift() ?? null)) return false;
          if (q.isEmpty() !== (model.length === 0)) return false;
        }
        return true;
      },
    ),
    { numRuns: 100 },
  );
  // Long runs cross the compaction point (1,024 consumed) many times.
  const q = new WaitQueue<number>();
  let next = 0;
  for (let i = 0; i < 10_000; i++) {
    q.push(i);
    q.push(i + 0.5);
    if (q.shift() !== next) return t.fail(`at ${i}`);
    next += 0.5;
  }
  t.pass('10,000 rounds in order');
});
