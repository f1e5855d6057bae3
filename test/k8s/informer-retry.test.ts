// Informers against the API server's retry signals and its stream endings, as client-go's
// reflector reads them: Retry-After on 429/503 (priority and fairness, an overloaded server) and
// on "Too large resource version" (504 in an ERROR event, retryAfterSeconds), watches that end at
// once with no event (backed off, never a tight loop), 410 answered to every watch (re-lists backed
// off), the backoff reset only by progress, resuming from a bookmark's version after a clean end,
// and what a stream may carry: duplicate ADDED, DELETED with the final state, events split across
// chunks and several in one. Retry sleeps are virtual (recorded by the test), the clock is fixed.

import t, { type Test } from 'tap';
import { K8sClient } from '../../src/k8s/client.js';
import type { KObject } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { Informer, type InformerEvent } from '../../src/k8s/informer.js';
import { SERVICES } from '../../src/k8s/resources.js';
import { silentLogger } from '../../src/log.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { service, until } from '../helpers/k8s.js';

async function setup(t: Test, options: { pageSize?: number } = {}) {
  const api = await new FakeApiServer().start();
  const client = new K8sClient(plainConnection('127.0.0.1', api.port));
  const slept: number[] = [];
  // The hung-watch deadlines the informer set (fired by the test, never by time).
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const clock = {
    now: () => 0,
    schedule: (ms: number, fn: () => void): (() => void) => {
      const timer = { fn, ms, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
  };
  const sleep = (ms: number): Promise<void> => {
    slept.push(ms);
    return new Promise((resolve) => setImmediate(resolve));
  };
  // random 1: every delay is the backoff's ceiling (50, 100, 200, ...), so the test can name it.
  const informer = new Informer({
    client,
    resource: SERVICES,
    namespace: 'default',
    logger: silentLogger(),
    backoff: { baseMs: 50, capMs: 1000, random: () => 1 },
    sleep,
    clock,
    watchTimeoutSeconds: 300,
    ...options,
  });
  t.teardown(async () => {
    await informer.stop();
    await Promise.all([client.close(), api.close()]);
  });
  const events: InformerEvent<KObject>[] = [];
  informer.on((e) => events.push(e));
  const watchUrls = (): string[] => api.requests.filter((r) => r.url.includes('watch=1')).map((r) => r.url);
  return { api, informer, events, slept, watchUrls, timers };
}

const names = (events: InformerEvent<KObject>[]): string[] => events.map((e) => `${e.type} ${e.object.metadata.name}`);

t.test('429 and 503 with Retry-After: the wait is the server’s, not the shorter backoff', async (t) => {
  const { api, informer, slept } = await setup(t);
  api.apply(service('default', 'a'));
  api.failNext(1, { code: 429, reason: 'TooManyRequests', message: 'Too many requests, please try again later.', retryAfterSeconds: 7, on: 'list' });
  api.failNext(1, { code: 503, reason: 'ServiceUnavailable', retryAfterSeconds: 3, on: 'watch' });
  informer.start();
  t.ok(await until(() => informer.synced && api.watchCount === 1), 'listed and watching in the end');
  t.same(slept, [7000, 3000], 'slept as long as each Retry-After asked');
  t.equal(informer.stats.lists, 1, 'the list asked its page again; the 503 on the watch did not re-list');
  t.equal(informer.list().length, 1);
});

t.test('"Too large resource version" (504 ERROR event, retryAfterSeconds 1): re-watch from the same version after 1 s, no re-list', async (t) => {
  const { api, informer, slept, watchUrls } = await setup(t);
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  api.apply(service('default', 'a'));
  t.ok(await until(() => informer.list().length === 1));
  const rv = informer.resourceVersion;
  api.errorWatches(504, 'Timeout', `Too large resource version: ${Number(rv) + 5}, current: ${rv}`, 1);
  t.ok(await until(() => watchUrls().length === 2 && api.watchCount === 1));
  t.same(slept, [1000]);
  t.match(watchUrls()[1], new RegExp(`resourceVersion=${rv}&`));
  t.equal(informer.stats.lists, 1);
  t.notOk(informer.stale, 'fresh again once the watch is back');
});

t.test('watches that end at once with no event back off (doubling), and an event resets the backoff', async (t) => {
  const { api, informer, slept, events, watchUrls } = await setup(t);
  api.endWatchesAtOnce(true);
  informer.start();
  t.ok(await until(() => slept.length >= 4), 'backed off between empty watches');
  api.endWatchesAtOnce(false);
  t.same(slept.slice(0, 4), [50, 100, 200, 400]);
  t.ok(watchUrls().length <= slept.length + 1, `one watch per backoff step (${watchUrls().length} watches, ${slept.length} sleeps)`);
  t.equal(informer.stats.lists, 1, 'no re-list: the version stays valid');
  t.ok(await until(() => api.watchCount === 1));
  api.apply(service('default', 'a'));
  t.ok(await until(() => events.length === 1), 'the event arrived');
  const before = slept.length;
  api.endWatchesAtOnce(true);
  api.dropWatches();
  t.ok(await until(() => slept.length >= before + 2));
  t.same(slept.slice(before, before + 2), [50, 100], 'progress reset the backoff');
});

t.test('a 410 to every watch: re-lists are backed off, not a tight loop', async (t) => {
  const { api, informer, slept } = await setup(t);
  api.failNext(3, { code: 410, reason: 'Expired', message: 'too old resource version', on: 'watch' });
  informer.start();
  t.ok(await until(() => api.watchCount === 1), 'watching after three 410s');
  t.equal(informer.stats.gone, 3);
  t.equal(informer.stats.lists, 4, 'one re-list per 410');
  t.same(slept, [50, 100, 200], 'each re-list after a backoff step');
});

t.test('a clean end resumes from the last bookmark’s version, without a re-list', async (t) => {
  const { api, informer, watchUrls } = await setup(t);
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  api.apply(service('other', 'elsewhere'));
  api.bookmark();
  const rv = String(api.resourceVersion);
  t.ok(await until(() => informer.resourceVersion === rv));
  api.dropWatches();
  t.ok(await until(() => watchUrls().length === 2));
  t.match(watchUrls()[1], new RegExp(`resourceVersion=${rv}&`));
  t.equal(informer.stats.lists, 1);
});

t.test('a stream split across chunks, several events per chunk, a duplicate ADDED and a DELETED with the final state', async (t) => {
  const { api, informer, events } = await setup(t);
  api.apply(service('default', 'a'));
  informer.start();
  t.ok(await until(() => api.watchCount === 1 && events.length === 1));
  const a = informer.get('default', 'a') as KObject;
  const dup = JSON.stringify({ type: 'ADDED', object: { ...a, kind: 'Service', apiVersion: 'v1' } });
  const b1 = { kind: 'Service', apiVersion: 'v1', metadata: { name: 'b', namespace: 'default', resourceVersion: '900' }, spec: { ports: [] } };
  const b2 = { ...b1, metadata: { ...b1.metadata, resourceVersion: '901', labels: { final: 'yes' } } };
  const stream = `${dup}\n${JSON.stringify({ type: 'ADDED', object: b1 })}\n${JSON.stringify({ type: 'DELETED', object: b2 })}\n`;
  const cut = dup.length + 10;
  api.writeWatches(stream.slice(0, 5));
  api.writeWatches(stream.slice(5, cut));
  api.writeWatches(stream.slice(cut));
  t.ok(await until(() => informer.resourceVersion === '901'));
  t.same(names(events), ['add a', 'add b', 'delete b'], 'the duplicate ADDED of an unchanged object emits nothing');
  t.same(events[2]?.object.metadata.labels, { final: 'yes' }, 'the delete carries the final state');
  t.same(
    informer.list().map((o) => o.metadata.name),
    ['a'],
  );
});

t.test('a bookmark without a resourceVersion does not lose the version', async (t) => {
  const { api, informer, watchUrls } = await setup(t);
  informer.start();
  t.ok(await until(() => api.watchCount === 1));
  api.apply(service('default', 'a'));
  t.ok(await until(() => informer.list().length === 1));
  const rv = informer.resourceVersion;
  api.writeWatches(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Service', apiVersion: 'v1', metadata: {} } })}\n`);
  api.writeWatches(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '' } } })}\n`);
  api.dropWatches();
  t.ok(await until(() => watchUrls().length === 2));
  t.match(watchUrls()[1], new RegExp(`resourceVersion=${rv}&`), 'resumed from the last real version');
});

t.test('a list page refused with Retry-After is asked again after that delay, not the whole list', async (t) => {
  const { api, informer, slept } = await setup(t, { pageSize: 2 });
  for (const n of ['a', 'b', 'c', 'd', 'e']) api.apply(service('default', n));
  let queued = false;
  api.onListPage = (continued) => {
    if (continued || queued) return;
    queued = true; // the page after the first one answers 429 once
    api.failNext(1, { code: 429, reason: 'TooManyRequests', retryAfterSeconds: 2, on: 'list' });
  };
  informer.start();
  t.ok(await until(() => informer.synced));
  t.same(slept, [2000]);
  t.equal(informer.stats.lists, 1, 'one list');
  t.equal(informer.stats.pages, 3, 'three pages, the second asked twice');
  const lists = api.requests.filter((r) => !r.url.includes('watch=1')).map((r) => new URL(r.url, 'http://x').searchParams.get('continue'));
  t.equal(lists.length, 4);
  t.equal(lists[1], lists[2], 'the same continue token again');
  t.equal(informer.list().length, 5);
});

t.test('an error answer with a 32 MiB message: read 64 KiB at most, keep 1,000 characters', async (t) => {
  const { api, informer, slept } = await setup(t);
  api.failNext(1, { code: 500, reason: 'InternalError', padBytes: 32 * 1024 * 1024, on: 'list' });
  informer.start();
  t.ok(await until(() => informer.synced, 20_000));
  t.equal(slept.length, 1, 'backed off once');
  t.ok((informer.lastError ?? '').length < 1100, `the error kept is short (${(informer.lastError ?? '').length} characters)`);
});

t.test('a watch that sends nothing and never ends is aborted 30 s after its timeoutSeconds, then watched again', async (t) => {
  const { api, informer, watchUrls, timers } = await setup(t);
  api.apply(service('default', 'a'));
  informer.start();
  t.ok(await until(() => api.watchCount === 1 && timers.length === 1));
  t.equal(timers[0]?.ms, 330_000, 'timeoutSeconds 300 + 30 s');
  timers[0]?.fn(); // the server never ended it: the deadline passes
  t.ok(await until(() => watchUrls().length === 2 && api.watchCount === 1), 'the hung stream closed and a new watch opened');
  t.equal(informer.stats.hungWatches, 1);
  t.equal(informer.stats.lists, 1, 'no re-list: resumed from the version');
  t.equal(informer.list().length, 1, 'the last known state kept');
  api.dropWatches();
  t.ok(await until(() => timers.length === 3));
  t.ok(timers[1]?.cancelled, 'a watch that ended cancels its deadline');
});
