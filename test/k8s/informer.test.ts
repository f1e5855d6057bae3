// Informers against the test API server: list then watch, bookmarks, re-watch after a stream
// ends without re-listing, 410 in both forms (re-list, differences emitted exactly once), an API
// outage of 30 s of virtual retry time (stale state kept, then convergence with no duplicate or lost objects).

import t, { type Test } from 'tap';
import { K8sClient } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { Informer, SharedInformers, type InformerEvent } from '../../src/k8s/informer.js';
import { SERVICES } from '../../src/k8s/resources.js';
import type { KObject } from '../../src/k8s/client.js';
import { silentLogger } from '../../src/log.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { service, until } from '../helpers/k8s.js';

async function setup(t: Test, options: ConstructorParameters<typeof FakeApiServer>[0] = {}) {
  const api = await new FakeApiServer(options).start();
  const client = new K8sClient(plainConnection('127.0.0.1', api.port));
  const events: InformerEvent<KObject>[] = [];
  const informer = new Informer({ client, resource: SERVICES, namespace: 'default', logger: silentLogger(), backoff: { baseMs: 50, capMs: 1000 } });
  informer.on((e) => events.push(e));
  t.teardown(async () => {
    await informer.stop();
    await client.close();
    await api.close();
  });
  return { api, client, informer, events };
}

const names = (events: InformerEvent<KObject>[]): string[] => events.map((e) => `${e.type} ${e.object.metadata.name}`);

t.test('list, then watch from the list version; bookmarks advance it', async (t) => {
  const { api, informer, events } = await setup(t);
  api.apply(service('default', 'a'));
  api.apply(service('other', 'not-mine'));
  informer.start();
  t.ok(await until(() => informer.synced), 'synced after the first list');
  t.same(names(events), ['add a']);
  t.ok(await until(() => api.watchCount === 1), 'watching');
  api.apply(service('default', 'b'));
  api.apply(service('default', 'a'));
  api.delete('Service', 'default', 'b');
  t.ok(await until(() => events.length === 4));
  t.same(names(events), ['add a', 'add b', 'update a', 'delete b']);
  api.apply(service('other', 'elsewhere')); // moves the version on without an event for us
  api.bookmark();
  t.ok(await until(() => informer.resourceVersion === String(api.resourceVersion)), 'the bookmark moved the version');
  const watchRequest = api.requests.filter((r) => r.url.includes('watch=1')).at(-1);
  t.match(watchRequest?.url, /allowWatchBookmarks=true/);
});

t.test('a stream that ends is re-watched from the last version, without a re-list or loss', async (t) => {
  const { api, informer, events } = await setup(t);
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  api.dropWatches();
  api.apply(service('default', 'during-the-gap'));
  t.ok(await until(() => events.length === 1));
  t.ok(await until(() => api.watchCount === 1));
  api.apply(service('default', 'after'));
  t.ok(await until(() => events.length === 2));
  t.same(names(events), ['add during-the-gap', 'add after'], 'nothing lost, nothing twice');
  t.equal(informer.stats.lists, 1, 'no re-list');
  t.ok(informer.stats.watches >= 2);
});

t.test('410 as an HTTP status: re-list and emit only the differences, once', async (t) => {
  const { api, informer, events } = await setup(t, { history: 1 });
  api.apply(service('default', 'keep'));
  api.apply(service('default', 'change'));
  api.apply(service('default', 'remove'));
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  events.length = 0;
  api.setDown(true); // cut the watch so the next one starts from an old version
  api.apply(service('default', 'change'));
  api.delete('Service', 'default', 'remove');
  api.apply(service('default', 'new'));
  api.compact();
  api.setDown(false);
  t.ok(await until(() => informer.stats.gone >= 1 && informer.stats.lists === 2, 10_000), 'got 410, re-listed');
  t.ok(await until(() => events.length === 3));
  t.same(names(events).sort(), ['add new', 'delete remove', 'update change']);
  t.same(
    informer
      .list()
      .map((o) => o.metadata.name)
      .sort(),
    ['change', 'keep', 'new'],
  );
});

t.test('410 as an ERROR event inside a stream: the same', async (t) => {
  const { api, informer, events } = await setup(t);
  api.apply(service('default', 'x'));
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  api.expireWatches();
  t.ok(await until(() => informer.stats.lists === 2));
  t.ok(await until(() => api.watchCount === 1));
  api.apply(service('default', 'y'));
  t.ok(await until(() => events.length === 2));
  t.same(names(events), ['add x', 'add y'], 're-listing an unchanged state emits nothing');
});

t.test('the API away for 30 s: state kept and marked stale, then converges', async (t) => {
  const api = await new FakeApiServer().start();
  const client = new K8sClient(plainConnection('127.0.0.1', api.port));
  // The outage is 30 s of the informer's own time: its retry sleeps are virtual (the backoff asks
  // for them, the test adds them up), so the test sees every retry without waiting for them.
  let slept = 0;
  const sleep = (ms: number): Promise<void> => {
    slept += ms;
    return new Promise((resolve) => setImmediate(resolve));
  };
  const informer = new Informer({ client, resource: SERVICES, namespace: 'default', logger: silentLogger(), backoff: { baseMs: 50, capMs: 1000 }, sleep });
  const events: InformerEvent<KObject>[] = [];
  informer.on((e) => events.push(e));
  t.teardown(async () => {
    await informer.stop();
    await client.close();
    await api.close();
  });
  for (const n of ['a', 'b', 'c']) api.apply(service('default', n));
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  api.setDown(true);
  t.ok(await until(() => informer.stale), 'marked stale');
  t.equal(informer.list().length, 3, 'the last known state is kept');
  const sleptAtOutage = slept;
  // Changes the router cannot see while the API is away.
  api.apply(service('default', 'a'));
  api.delete('Service', 'default', 'b');
  api.apply(service('default', 'd'));
  t.ok(await until(() => slept - sleptAtOutage >= 30_000, 20_000), '30 s of retries went by');
  t.ok(informer.stats.errors >= 30, `kept retrying with the backoff capped at 1 s (${informer.stats.errors} failures)`);
  t.equal(informer.list().length, 3, 'still the last known state');
  api.setDown(false);
  t.ok(await until(() => !informer.stale && informer.list().length === 3, 10_000), 'back and converged');
  t.same(
    informer
      .list()
      .map((o) => o.metadata.name)
      .sort(),
    ['a', 'c', 'd'],
  );
  const after = names(events.slice(3));
  t.same(after.sort(), ['add d', 'delete b', 'update a'], 'each change emitted exactly once');
});

t.test('shared informers: one list+watch per collection, released with the last user', async (t) => {
  const api = await new FakeApiServer().start();
  const client = new K8sClient(plainConnection('127.0.0.1', api.port));
  const shared = new SharedInformers({ client, logger: silentLogger() });
  t.teardown(async () => {
    await shared.close();
    await client.close();
    await api.close();
  });
  const a = shared.acquire(SERVICES, 'default');
  const b = shared.acquire(SERVICES, 'default');
  const c = shared.acquire(SERVICES, 'other');
  t.equal(a.informer, b.informer);
  t.not(a.informer, c.informer);
  t.equal(shared.size, 2);
  t.ok(await until(() => api.watchCount === 2));
  a.release();
  a.release();
  t.equal(shared.size, 2, 'still used by b');
  b.release();
  t.equal(shared.size, 1);
  t.ok(await until(() => api.watchCount === 1), 'its watch is closed');
});
