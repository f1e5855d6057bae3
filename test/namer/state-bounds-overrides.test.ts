// State created from request data is bounded: thousands of distinct l5d-dtab overrides through a
// router with the fs namer are held in a small cache of their own and evicted once idle (time
// driven by an injected clock); the router keeps serving normal requests throughout. The flood of
// distinct Hosts against the same router is test/namer/state-bounds.test.ts.

import t from 'tap';
import { OVERRIDES, startFsStateRouter } from '../helpers/fs-state-router.js';

const r = await startFsStateRouter(t);

t.test('2,000 distinct 1 KB overrides: a small separate cache, evicted when idle', async (t) => {
  const pad = 'p'.repeat(900);
  const before = (await r.metric('hostmesh_binding_cache_evictions_total', { router: 'outgoing', reason: 'capacity' })) ?? 0;
  const attack = r.flood(2000, (i) => r.get('web', { 'l5d-dtab': `/pad/${i} => /x/${pad}; /svc/web => /#/io.l5d.fs/web` }));
  await r.normalWithin1s(t, 'during the override flood');
  const counts = await attack;
  t.equal(counts.get(200), 2000, 'each override routes');
  const size = await r.metric('hostmesh_binding_cache_size', { router: 'outgoing' });
  t.ok(size !== undefined && size <= OVERRIDES + 1, `override bindings capped at ${OVERRIDES} (${size})`);
  const after = (await r.metric('hostmesh_binding_cache_evictions_total', { router: 'outgoing', reason: 'capacity' })) ?? 0;
  t.ok(after - before >= 2000 - OVERRIDES, `capacity evictions counted (${after - before})`);
  r.advance(601_000);
  r.hm.evictIdle();
  t.ok(((await r.metric('hostmesh_binding_cache_size', { router: 'outgoing' })) ?? Infinity) <= 1, 'override bindings gone once idle');
  await r.normalWithin1s(t, 'after eviction');
});
