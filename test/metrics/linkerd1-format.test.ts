// Linkerd 1's io.l5d.prometheus naming rules and formats, table-driven from the cases its own
// telemeter tests pin (counter, stat quantiles, labelled service/client/server scopes, a client's
// service scope, paths that match no rule), plus properties: any scope name survives as a label
// value, and the output always parses as the Prometheus text format.

import fc from 'fast-check';
import t from 'tap';
import { type Entry, linkerd1Flat, linkerd1Prometheus, linkerd1Tree, prometheusName, summarize } from '../../src/metrics/linkerd1-format.js';
import {
  LatencyHistogram,
  Linkerd1RouterStats,
  MAX_CLIENT_SERVICES,
  MAX_SCOPES,
  OVERFLOW_SCOPE,
  ScopeStats,
  SNAPSHOT_MS,
} from '../../src/metrics/linkerd1-stats.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const counter = (path: string[], value: number): Entry => ({ path, kind: 'counter', value });
const stat = (path: string[], values: number[]): Entry => ({ path, kind: 'stat', summary: summarize(Float64Array.from(values).sort()) });

t.test('names and labels by the telemeter rules', async (t) => {
  const table: [string[], string, [string, string][]][] = [
    [['foo', 'bar', 'bas'], 'foo:bar:bas', []],
    [
      ['rt', 'incoming', 'service', 'svc/foo', 'requests'],
      'rt:service:requests',
      [
        ['rt', 'incoming'],
        ['service', 'svc/foo'],
      ],
    ],
    [
      ['rt', 'incoming', 'client', '#/bar', 'requests'],
      'rt:client:requests',
      [
        ['rt', 'incoming'],
        ['client', '#/bar'],
      ],
    ],
    [
      ['rt', 'incoming', 'client', '#/bar', 'service', 'svc/foo', 'requests'],
      'rt:client:service:requests',
      [
        ['rt', 'incoming'],
        ['client', '#/bar'],
        ['service', 'svc/foo'],
      ],
    ],
    [
      ['rt', 'incoming', 'server', '127.0.0.1/4141', 'requests'],
      'rt:server:requests',
      [
        ['rt', 'incoming'],
        ['server', '127.0.0.1/4141'],
      ],
    ],
    [['rt', 'foo', 'non_stack_match', 'bar', 'additional_path', 'qux'], 'rt:non_stack_match:bar:additional_path:qux', [['rt', 'foo']]],
    [
      ['rt', 'out', 'client', '$/inet/1.2.3.4/80', 'status', '5XX'],
      'rt:client:status:5XX',
      [
        ['rt', 'out'],
        ['client', '$/inet/1.2.3.4/80'],
      ],
    ],
    [['jvm', 'heap', 'used'], 'jvm:heap:used', []],
  ];
  for (const [path, name, labels] of table) t.same(prometheusName(path), { name, labels }, path.join('/'));
  t.equal(prometheusName(['foo', 'bar', 'bas'], 'linkerd_').name, 'linkerd_foo:bar:bas', 'the prefix key');
});

t.test('counter, gauge and stat lines as the telemeter wrote them', async (t) => {
  t.equal(linkerd1Prometheus([counter(['foo', 'bar', 'bas'], 2)], 'linkerd_'), '# TYPE linkerd_foo:bar:bas counter\nlinkerd_foo:bar:bas 2\n');
  t.equal(linkerd1Prometheus([{ path: ['foo', 'bar', 'bas'], kind: 'gauge', value: 2 }]), '# TYPE foo:bar:bas gauge\nfoo:bar:bas 2.0\n');
  t.equal(linkerd1Prometheus([stat(['foo'], [])]), '', 'an empty stat is not written');
  const two = linkerd1Prometheus([stat(['foo', 'bar', 'bas'], [1, 2])]);
  const lines = two.split('\n').filter((l) => !l.startsWith('#') && l !== '');
  t.same(lines.sort(), [
    'foo:bar:bas_avg 1.5',
    'foo:bar:bas_count 2',
    'foo:bar:bas_sum 3',
    'foo:bar:bas{quantile="0"} 1',
    'foo:bar:bas{quantile="0.5"} 1',
    'foo:bar:bas{quantile="0.9"} 2',
    'foo:bar:bas{quantile="0.95"} 2',
    'foo:bar:bas{quantile="0.99"} 2',
    'foo:bar:bas{quantile="0.999"} 2',
    'foo:bar:bas{quantile="0.9999"} 2',
    'foo:bar:bas{quantile="1"} 2',
  ]);
  t.equal(
    linkerd1Prometheus([counter(['rt', 'incoming', 'client', '#/bar', 'service', 'svc/foo', 'requests'], 1)]).split('\n')[1],
    'rt:client:service:requests{rt="incoming", client="#/bar", service="svc/foo"} 1',
  );
  t.same(
    summarize(Float64Array.from([1.9, 2.2])),
    { count: 2, sum: 3, avg: 1.5, min: 1, max: 2, p50: 1, p90: 2, p95: 2, p99: 2, p9990: 2, p9999: 2 },
    'whole milliseconds',
  );
});

t.test('metrics.json keys and tree', async (t) => {
  const entries = [counter(['rt', 'out', 'server', '0.0.0.0/4140', 'requests'], 3), stat(['rt', 'out', 'service', 'svc/a', 'request_latency_ms'], [5])];
  t.same(linkerd1Flat(entries), {
    'rt/out/server/0.0.0.0/4140/requests': 3,
    'rt/out/service/svc/a/request_latency_ms.count': 1,
    'rt/out/service/svc/a/request_latency_ms.max': 5,
    'rt/out/service/svc/a/request_latency_ms.min': 5,
    'rt/out/service/svc/a/request_latency_ms.p50': 5,
    'rt/out/service/svc/a/request_latency_ms.p90': 5,
    'rt/out/service/svc/a/request_latency_ms.p95': 5,
    'rt/out/service/svc/a/request_latency_ms.p99': 5,
    'rt/out/service/svc/a/request_latency_ms.p9990': 5,
    'rt/out/service/svc/a/request_latency_ms.p9999': 5,
    'rt/out/service/svc/a/request_latency_ms.sum': 5,
    'rt/out/service/svc/a/request_latency_ms.avg': 5,
  });
  const tree = linkerd1Tree(entries) as { rt: { out: { server: Record<string, { requests: { counter: number } }> } } };
  t.equal(tree.rt.out.server['0.0.0.0/4140']?.requests.counter, 3, 'a scope with slashes is one key, as in Linkerd 1');
});

t.test('any scope name is a label value that reads back as written; the output always parses', async () => {
  fc.assert(
    fc.property(fc.string(), fc.string({ minLength: 1 }), fc.nat(), (id, router, n) => {
      const text = linkerd1Prometheus([counter(['rt', router, 'client', id, 'requests'], n)], 'p_');
      const [s] = parsePrometheus(text);
      return s !== undefined && s.labels['client'] === id && s.labels['rt'] === router && s.value === n && s.name === 'p_rt:client:requests';
    }),
  );
});

t.test('scopes are bounded whatever the requests name', async (t) => {
  const stats = new Linkerd1RouterStats();
  for (let i = 0; i < MAX_SCOPES + 50; i++) stats.record('0.0.0.0/4140', `/svc/s${i}`, `/#/c${i}`, 200, 1);
  t.equal(stats.services.size, MAX_SCOPES + 1, 'MAX_SCOPES names and the overflow scope');
  t.equal(stats.services.get(OVERFLOW_SCOPE)?.requests, 50);
  t.equal(stats.clients.size, MAX_SCOPES + 1);
  t.equal(stats.clients.get(OVERFLOW_SCOPE)?.requests, 50);
  const one = new Linkerd1RouterStats();
  for (let i = 0; i < 40; i++) one.record(undefined, `/svc/x${i}`, '/#/one', 503, 1);
  t.equal(one.clients.get('#/one')?.services.size, MAX_CLIENT_SERVICES + 1, "a client's services are bounded too");
  t.equal(one.clients.get('#/one')?.failures, 40);
  t.same([...(one.clients.get('#/one')?.statusClasses() ?? [])], [['5XX', 40]]);
});

t.test('latency: buckets at most 1/33 (3.03 %) below the true value; one-minute snapshots on the injected clock', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (ms) => {
      const h = new LatencyHistogram();
      h.record(ms, 1);
      const s = h.summary(1);
      // A bucket spans 1/32 of its lower edge, so a sample is at most 1/33 of itself above it (33,783
      // ms is reported as 32,768: 3.004 % below; a 3 % bound failed there, found by a random seed).
      return s !== undefined && s.p50 <= ms && s.p50 >= Math.floor((ms * 32) / 33) && s.count === 1 && s.sum === ms;
    }),
    { examples: [[33_783], [65], [2 ** 31]] },
  );
  const h = new LatencyHistogram();
  const t0 = 10 * SNAPSHOT_MS;
  for (let i = 1; i <= 100; i++) h.record(i, t0 + 1);
  t.match(h.summary(t0 + 2), { count: 100, p50: 50, p99: 98, min: 1, max: 100 }, 'while no minute has completed: the current one (99 in the bucket from 98)');
  h.record(7, t0 + SNAPSHOT_MS + 5);
  t.match(h.summary(t0 + SNAPSHOT_MS + 6), { count: 100, p50: 50 }, 'then the last complete minute, as Linkerd 1 reported');
  t.match(h.summary(t0 + 2 * SNAPSHOT_MS + 1), { count: 1, p50: 7 }, 'the next minute rolls it');
  t.equal(h.summary(t0 + 10 * SNAPSHOT_MS), undefined, 'idle minutes: nothing to report (not printed)');
});

t.test("a router's scopes record a request as each scope recording it on its own would", async (t) => {
  const sample = fc.record({
    service: fc.constantFrom(undefined, '/svc/a', '/svc/b'),
    client: fc.constantFrom(undefined, '/#/io.l5d.fs/a'),
    status: fc.integer({ min: 0, max: 700 }),
    ms: fc.oneof(fc.double({ min: -5, max: 1e7, noNaN: true }), fc.integer({ min: 0, max: 200 })),
  });
  fc.assert(
    fc.property(fc.array(sample, { maxLength: 40, size: 'max' }), (samples) => {
      const stats = new Linkerd1RouterStats(() => 5);
      const one = new Map<string, ScopeStats>();
      const own = (key: string): ScopeStats => {
        let s = one.get(key);
        if (s === undefined) one.set(key, (s = new ScopeStats()));
        return s;
      };
      for (const x of samples) {
        stats.record('127.0.0.1/4140', x.service, x.client, x.status, x.ms);
        own('server').record(x.status, x.ms, 5);
        if (x.service !== undefined) own(`service ${x.service}`).record(x.status, x.ms, 5);
        if (x.client !== undefined) own('client').record(x.status, x.ms, 5);
        if (x.client !== undefined && x.service !== undefined) own(`client ${x.service}`).record(x.status, x.ms, 5);
      }
      const view = (s: ScopeStats | undefined) => s && { n: [s.requests, s.success, s.failures], status: [...s.status], latency: s.latency.summary(5) };
      const got = {
        server: view(stats.servers.get('127.0.0.1/4140')),
        a: view(stats.services.get('svc/a')),
        b: view(stats.services.get('svc/b')),
        client: view(stats.clients.get('#/io.l5d.fs/a')),
        ca: view(stats.clients.get('#/io.l5d.fs/a')?.services.get('svc/a')),
      };
      const want = {
        server: view(one.get('server')),
        a: view(one.get('service /svc/a')),
        b: view(one.get('service /svc/b')),
        client: view(one.get('client')),
        ca: view(one.get('client /svc/a')),
      };
      return JSON.stringify(got) === JSON.stringify(want);
    }),
  );
  t.pass('fast-check found no counterexample');
});
