// The test API server itself, checked against the Kubernetes API rules it claims to follow
// (api-concepts: "Resource versions", "Efficient detection of changes", "Watch bookmarks"; label
// and field selectors), with node's http client so the fixture is tested independently of ours.

import http from 'node:http';
import t from 'tap';
import { FakeApiServer, labelMatcher } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service, until } from '../helpers/k8s.js';

function get(api: FakeApiServer, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${api.url}${path}`, { headers, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      })
      .on('error', reject);
  });
}

/** Opens a watch and collects events; `stop()` closes it. */
function watch(
  api: FakeApiServer,
  path: string,
): { events: { type: string; object: Record<string, unknown> }[]; ended: () => boolean; status: () => number; stop: () => void } {
  const events: { type: string; object: Record<string, unknown> }[] = [];
  let ended = false;
  let status = 0;
  let buf = '';
  const req = http.get(`${api.url}${path}`, { agent: false }, (res) => {
    status = res.statusCode ?? 0;
    res.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        events.push(JSON.parse(buf.slice(0, nl)) as { type: string; object: Record<string, unknown> });
        buf = buf.slice(nl + 1);
      }
    });
    res.on('end', () => (ended = true));
    res.on('error', () => (ended = true));
  });
  req.on('error', () => (ended = true));
  return { events, ended: () => ended, status: () => status, stop: () => req.destroy() };
}

t.test('list carries the collection resourceVersion; items have no kind', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  api.apply(service('default', 'world'));
  api.apply(service('other', 'x'));
  const ns = await get(api, '/api/v1/namespaces/default/services');
  t.equal(ns.status, 200);
  t.equal(ns.json['kind'], 'ServiceList');
  t.equal((ns.json['metadata'] as { resourceVersion: string }).resourceVersion, String(api.resourceVersion));
  const items = ns.json['items'] as Record<string, unknown>[];
  t.equal(items.length, 1, 'namespaced list');
  t.equal(items[0]?.['kind'], undefined);
  const all = await get(api, '/api/v1/services');
  t.equal((all.json['items'] as unknown[]).length, 2, 'cluster-wide list');
  t.equal((await get(api, '/api/v1/namespaces/default/widgets')).status, 404);
});

t.test('watch from a resourceVersion sends only later events; no version sends current state first', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  api.apply(service('default', 'a'));
  const rv = api.resourceVersion;
  api.apply(service('default', 'b'));
  const w = watch(api, `/api/v1/namespaces/default/services?watch=1&resourceVersion=${rv}`);
  t.teardown(w.stop);
  t.ok(await until(() => w.events.length === 1));
  t.equal((w.events[0]?.object['metadata'] as { name: string }).name, 'b');
  api.apply(service('default', 'b'));
  api.delete('Service', 'default', 'a');
  t.ok(await until(() => w.events.length === 3));
  t.same(
    w.events.map((e) => e.type),
    ['ADDED', 'MODIFIED', 'DELETED'],
  );
  t.equal(w.events[2]?.object['kind'], 'Service', 'watch objects carry their kind');

  const fresh = watch(api, '/api/v1/namespaces/default/services?watch=1');
  t.teardown(fresh.stop);
  t.ok(await until(() => fresh.events.length === 1), 'synthetic ADDED for the current state');
  t.equal(fresh.events[0]?.type, 'ADDED');
});

t.test('too-old versions: 410 as a status, and as an ERROR event in an open stream', async (t) => {
  const api = await new FakeApiServer({ history: 2 }).start();
  t.teardown(() => api.close());
  const first = api.resourceVersion;
  for (let i = 0; i < 5; i++) api.apply(service('default', `s${i}`));
  const gone = await get(api, `/api/v1/namespaces/default/services?watch=1&resourceVersion=${first}`);
  t.equal(gone.status, 410);
  t.equal(gone.json['kind'], 'Status');
  t.equal(gone.json['reason'], 'Expired');
  const w = watch(api, `/api/v1/namespaces/default/services?watch=1&resourceVersion=${api.resourceVersion}`);
  t.ok(await until(() => w.status() === 200));
  api.expireWatches();
  t.ok(await until(() => w.ended()));
  t.equal(w.events[0]?.type, 'ERROR');
  t.equal(w.events[0]?.object['code'], 410);
});

t.test('bookmarks only for watchers that allow them; timeoutSeconds ends the stream', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  const rv = api.resourceVersion;
  const yes = watch(api, `/api/v1/services?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
  const no = watch(api, `/api/v1/services?watch=1&resourceVersion=${rv}`);
  t.teardown(() => {
    yes.stop();
    no.stop();
  });
  t.ok(await until(() => api.watchCount === 2));
  api.apply(service('default', 'a'));
  api.bookmark();
  t.ok(await until(() => yes.events.length === 2));
  t.equal(yes.events[1]?.type, 'BOOKMARK');
  t.equal((yes.events[1]?.object['metadata'] as { resourceVersion: string }).resourceVersion, String(api.resourceVersion));
  t.ok(await until(() => no.events.length === 1));
  t.equal(no.events.length, 1, 'no bookmark without allowWatchBookmarks');
  const timed = watch(api, `/api/v1/services?watch=1&resourceVersion=${api.resourceVersion}&timeoutSeconds=1`);
  t.ok(await until(() => timed.ended(), 5000), 'the server ends a watch at timeoutSeconds');
});

t.test('label and field selectors', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  api.apply(endpointSlice('default', 'world-1', 'world', [{ ip: '10.0.0.1' }]));
  api.apply(endpointSlice('default', 'hello-1', 'hello', [{ ip: '10.0.0.2' }]));
  const sel = await get(api, '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dworld');
  t.same(
    (sel.json['items'] as { metadata: { name: string } }[]).map((i) => i.metadata.name),
    ['world-1'],
  );
  const byName = await get(api, '/apis/discovery.k8s.io/v1/endpointslices?fieldSelector=metadata.name%3Dhello-1');
  t.same(
    (byName.json['items'] as { metadata: { name: string } }[]).map((i) => i.metadata.name),
    ['hello-1'],
  );
  t.equal((await get(api, '/api/v1/services?labelSelector=%3D%3D%3D')).status, 400, 'a bad selector is a 400');
  const m = labelMatcher('app in (a,b),tier!=db,!legacy,env');
  t.ok(m({ app: 'a', env: 'x' }));
  t.notOk(m({ app: 'c', env: 'x' }));
  t.notOk(m({ app: 'a', env: 'x', tier: 'db' }));
  t.notOk(m({ app: 'a', env: 'x', legacy: '1' }));
  t.notOk(m({ app: 'a' }));
});

t.test('the real API server normalizations: empty endpoints are null, empty subsets vanish', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  api.apply(endpointSlice('default', 'empty', 'empty', []));
  api.apply({ kind: 'Endpoints', metadata: { namespace: 'default', name: 'empty' }, subsets: [] });
  const slices = await get(api, '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices');
  t.equal((slices.json['items'] as Record<string, unknown>[])[0]?.['endpoints'], null);
  const eps = await get(api, '/api/v1/namespaces/default/endpoints');
  t.notOk('subsets' in ((eps.json['items'] as Record<string, unknown>[])[0] ?? {}));
});

t.test('bearer tokens', async (t) => {
  const api = await new FakeApiServer({ tokens: ['good'] }).start();
  t.teardown(() => api.close());
  t.equal((await get(api, '/api/v1/services')).status, 401);
  t.equal((await get(api, '/api/v1/services', { authorization: 'Bearer bad' })).status, 401);
  t.equal((await get(api, '/api/v1/services', { authorization: 'Bearer good' })).status, 200);
});
