// State created from request data is bounded: thousands of distinct Hosts through a router with the
// fs namer leave capped caches while held, and nothing once idle (time driven by an injected clock);
// the router keeps serving normal requests throughout. Then the pieces alone: interpreter reference
// counts, fs namer eviction, the k8s namer's namespace cap. The flood of distinct dtab overrides
// against the same router is test/namer/state-bounds-overrides.test.ts (a file of its own, so
// neither comes near tap's timeout on a loaded machine).

import { clockWithNow } from '../../src/core/clock.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { FsNamer } from '../../src/namer/fs-namer.js';
import { Path } from '../../src/dtab/path.js';
import { Dtab } from '../../src/dtab/dtab.js';
import { parsePath } from '../../src/dtab/parse.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { K8sNamer } from '../../src/namer/k8s/k8s-namer.js';
import { K8sClient } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { until } from '../helpers/k8s.js';
import { MAX_IDLE, PATHS, startFsStateRouter } from '../helpers/fs-state-router.js';

const r = await startFsStateRouter(t);

t.test('5,000 distinct Hosts: bindings capped while held, lookups and namer entries released once idle', async (t) => {
  t.equal(await r.get('web'), 200, 'the router serves web');
  const attack = r.flood(5000, (i) => r.get(`h-${i}.example`));
  await r.normalWithin1s(t, 'during the flood');
  const counts = await attack;
  t.equal(counts.get(502), 5000, 'each unknown Host is a 502');
  await r.normalWithin1s(t, 'after the flood');

  const size = await r.metric('hostmesh_binding_cache_size', { router: 'outgoing' });
  t.ok(size !== undefined && size <= PATHS, `router bindings capped at ${PATHS} (${size})`);
  const lookups = await r.metric('hostmesh_interpreter_lookups');
  t.ok(lookups !== undefined && lookups <= PATHS + 5, `interpreter lookups follow the live bindings (${lookups})`);
  const held = await r.metric('hostmesh_namer_entries', { namer: 'io.l5d.fs' });
  t.ok(held !== undefined && held <= PATHS + MAX_IDLE, `fs namer entries: those in use plus at most maxIdleNames idle (${held})`);
  const capacity = await r.metric('hostmesh_binding_cache_evictions_total', { router: 'outgoing', reason: 'capacity' });
  t.ok(capacity !== undefined && capacity >= 5000 - PATHS, `capacity evictions counted (${capacity})`);

  r.advance(601_000); // past the router's idleTtlSecs and the namer's
  r.hm.evictIdle();
  r.hm.evictIdle(); // a namer entry becomes idle when the binding above released it
  r.advance(31_000);
  r.hm.evictIdle();
  t.ok(((await r.metric('hostmesh_binding_cache_size', { router: 'outgoing' })) ?? Infinity) <= 1, 'router bindings back to zero');
  t.ok(((await r.metric('hostmesh_interpreter_lookups')) ?? Infinity) <= 1, 'interpreter lookups back to zero');
  const entries = await r.metric('hostmesh_namer_entries', { namer: 'io.l5d.fs' });
  t.ok(entries !== undefined && entries <= 1, `fs namer entries back to zero (${entries})`);
  t.ok(((await r.metric('hostmesh_namer_evictions_total', { namer: 'io.l5d.fs' })) ?? 0) >= 4999, 'namer evictions counted');
  t.ok(((await r.metric('hostmesh_binding_cache_evictions_total', { router: 'outgoing', reason: 'idle' })) ?? 0) >= 1, 'idle evictions counted');
  await r.normalWithin1s(t, 'after eviction');
});

t.test('the fs namer re-reads only the files of names in use, and drops unused ones after idleTtl', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-fsnamer-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a'), '10.0.0.1 80\n');
  let now = 0;
  const namer = new FsNamer({ rootDir: dir, pollMs: 60_000, idleTtlMs: 10_000, clock: clockWithNow(() => now) });
  t.teardown(() => namer.close());
  const held = namer.lookup(new Path(['a']));
  const off = held.subscribe(() => undefined);
  for (let i = 0; i < 100; i++) namer.lookup(new Path([`n${i}`]));
  t.equal(namer.size, 101, 'one entry per name looked up');
  now += 10_001;
  namer.evictIdle();
  t.equal(namer.size, 1, 'names nobody observes are dropped after idleTtl');
  t.equal(namer.evictions, 100);
  off();
  now += 10_001;
  namer.evictIdle();
  t.equal(namer.size, 0, 'the last observer gone, the entry goes too');
});

t.test('the interpreter holds a namer lookup only while a live binding watches it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-interp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a'), '10.0.0.1 80\n');
  const namer = new FsNamer({ rootDir: dir, pollMs: 60_000 });
  t.teardown(() => namer.close());
  const interp = new NameInterpreter({ namers: [namer] });
  const dtab = Dtab.read('/svc => /#/io.l5d.fs');
  const b1 = interp.bind(dtab, parsePath('/svc/a/extra'));
  const b2 = interp.bind(dtab, parsePath('/svc/a/extra'));
  t.equal(interp.lookupCount, 1, 'one shared lookup for both bindings');
  t.equal(interp.bindingCount, 1, 'identical (dtab, path) share one binding');
  b1.close();
  t.equal(interp.lookupCount, 1, 'still held by the other binding');
  b2.close();
  t.equal(interp.lookupCount, 0, 'released with the last binding');
  t.equal(interp.bindingCount, 0);
  interp.explain(dtab, parsePath('/svc/b'));
  t.equal(interp.lookupCount, 0, 'an explanation keeps nothing');
});

t.test('k8s namer at maxNamespaces: an idle namespace is given up, else the name fails naming the limit', async (t) => {
  const api = await new FakeApiServer().start();
  let now = 0;
  const namer = new K8sNamer({
    client: new K8sClient(plainConnection('127.0.0.1', api.port)),
    logger: silentLogger(),
    maxNamespaces: 2,
    idleTtlMs: 10_000,
    clock: clockWithNow(() => now),
  });
  t.teardown(async () => {
    await namer.close();
    await api.close();
  });
  const offA = namer.lookup(new Path(['ns-a', 'http', 'web'])).subscribe(() => undefined);
  namer.lookup(new Path(['ns-b', 'http', 'web'])); // never observed: idle from the start
  now += 1;
  const offC = namer.lookup(new Path(['ns-c', 'http', 'web'])).subscribe(() => undefined);
  t.same(namer.watchedNamespaces().sort(), ['ns-a', 'ns-c'], 'the idle namespace made room');
  const refused = namer.lookup(new Path(['ns-d', 'http', 'web'])).get();
  t.equal(refused.kind, 'failed', 'every watched namespace in use: refused');
  t.match(refused.kind === 'failed' ? refused.error.message : '', /ns-d.*maxNamespaces/);
  t.equal(namer.refused, 1);
  t.ok(await until(() => api.watchCount === 4), 'two watches per namespace, no more');
  offA();
  offC();
  now += 10_000;
  namer.evictIdle();
  t.same(namer.watchedNamespaces(), [], 'names idle past idleTtl take their namespaces with them');
  t.ok(await until(() => api.watchCount === 0), 'and the API watches are closed');
});
