// Listener, identity/TLS, h2 and namer events as a user scraping /metrics sees them: each event
// moves the line the README names, called through the interface the layer reports with.

import t from 'tap';
import type { H2Events } from '../../src/h2/events.js';
import type { CallerEvents, SourceEvents } from '../../src/identity/events.js';
import { h2Metrics } from '../../src/metrics/h2-metrics.js';
import { children, MAX_CHILDREN } from '../../src/metrics/labels.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { ListenerEvents } from '../../src/server/events.js';
import type { TlsEvents } from '../../src/tls/events.js';
import { scrape } from './scrape.js';

const R = { router: 'out' };

const LISTENER: [string, (e: ListenerEvents) => void, string, Record<string, string>, number][] = [
  ['connectionOpened', (e) => e.connectionOpened('server'), 'hostmesh_connections_total', { ...R, side: 'server' }, 1],
  ['connectionClosed', (e) => e.connectionClosed('server', 10, 20), 'hostmesh_connections_closed_total', { ...R, side: 'server' }, 1],
  ['connectionClosed (bytes in)', (e) => e.connectionClosed('server', 10, 20), 'hostmesh_bytes_total', { ...R, direction: 'in' }, 10],
  ['connectionClosed (bytes out)', (e) => e.connectionClosed('server', 10, 20), 'hostmesh_bytes_total', { ...R, direction: 'out' }, 20],
  ['tlsFailure', (e) => e.tlsFailure('handshake'), 'hostmesh_tls_handshake_failures_total', { ...R, reason: 'handshake' }, 1],
  ['connectionRefused', (e) => e.connectionRefused('source_limit'), 'hostmesh_connections_refused_total', { ...R, reason: 'source_limit' }, 1],
  ['connectionDeadline', (e) => e.connectionDeadline('tunnel_idle'), 'hostmesh_connection_deadlines_total', { ...R, state: 'tunnel_idle' }, 1],
  ['tooManyHeaders', (e) => e.tooManyHeaders(), 'hostmesh_header_limit_refusals_total', R, 1],
  ['pipelinePaused', (e) => e.pipelinePaused(), 'hostmesh_pipeline_paused_total', R, 1],
  ['pipelineDropped', (e) => e.pipelineDropped(5), 'hostmesh_pipeline_dropped_total', R, 5],
  ['started', (e) => e.started(), 'hostmesh_requests_in_flight', R, 1],
  [
    'done',
    (e) => e.done('/svc/web', '/#/io.l5d.fs/web', 503, 0.02),
    'hostmesh_requests_total',
    { ...R, service: '/svc/web', client: '/#/io.l5d.fs/web', status_class: '5xx' },
    1,
  ],
  ['done (duration)', (e) => e.done('/svc/web', '/#/io.l5d.fs/web', 200, 0.02), 'hostmesh_request_duration_seconds_count', { ...R, service: '/svc/web' }, 1],
];

t.test('each listener event moves its Prometheus line', async (t) => {
  for (const [event, call, name, labels, value] of LISTENER) {
    const m = new Metrics();
    const e: ListenerEvents = m.router('out').listener;
    t.equal((await scrape(m))(name, labels), undefined, `${event}: no line before`);
    call(e);
    t.equal((await scrape(m))(name, labels), value, `${event}: ${name}${JSON.stringify(labels)} ${value}`);
  }
});

t.test('a request done leaves in-flight, and the dashboard and metrics.json see it', async (t) => {
  const m = new Metrics();
  const e: ListenerEvents = m.router('out').listener;
  e.started();
  e.done('/svc/web', '/#/io.l5d.fs/web', 200, 0.01);
  e.connectionOpened('server');
  e.peerConnected('spiffe://cluster.local/ns/hostmesh/sa/router');
  t.equal((await scrape(m))('hostmesh_requests_in_flight', R), 0);
  t.match(m.flat(), { 'rt/out/service/svc/web/requests': 1, 'rt/out/server/connections': 1, 'rt/out/requests_in_flight': 0 });
  t.equal(m.services()[0]?.successes, 1);
  t.equal(m.router('out').listener.peers.get('spiffe://cluster.local/ns/hostmesh/sa/router')?.connections, 1);
});

t.test('identity and TLS events', async (t) => {
  const m = new Metrics();
  const callers: CallerEvents = m.router('in').callers;
  const sources: SourceEvents = m.identity;
  const tls: TlsEvents = m.identity;
  callers.claim('wrong_node');
  sources.rewrittenSource();
  tls.reloaded('rejected');
  tls.reloaded('ok');
  const read = await scrape(m);
  t.equal(read('hostmesh_identity_claims_total', { router: 'in', result: 'wrong_node' }), 1);
  t.equal(read('hostmesh_rewritten_sources_total'), 1);
  t.equal(read('hostmesh_tls_reloads_total', { result: 'rejected' }), 1);
  t.equal(read('hostmesh_tls_reloads_total', { result: 'ok' }), 1);
});

t.test('h2 events', async (t) => {
  const m = new Metrics();
  const h2: H2Events = h2Metrics(m, 'grpc');
  h2.grpcAnswered('/svc/Greeter', 'UNAVAILABLE');
  h2.sessionEnded('rapid_reset');
  h2.sessionEnded('rapid_reset');
  const read = await scrape(m);
  t.equal(read('hostmesh_grpc_responses_total', { router: 'grpc', service: '/svc/Greeter', grpc_status: 'UNAVAILABLE' }), 1);
  t.equal(read('hostmesh_h2_sessions_ended_total', { router: 'grpc', reason: 'rapid_reset' }), 2);
});

t.test('namer state is read at scrape time', async (t) => {
  const m = new Metrics();
  let updates = 1;
  m.addNamer({
    kind: 'io.l5d.k8s',
    get updates() {
      return updates;
    },
    stale: true,
  });
  m.reportState({
    routers: () => [{ label: 'out', bindings: 7 }],
    interpreter: () => ({ lookups: 3, bindings: 2 }),
    namers: () => [{ kind: 'io.l5d.k8s', entries: 5, evictions: 1, namespaces: 2, refused: 4 }],
    pods: () => ({ conflictsSeen: 6, conflictedIps: 1 }),
  });
  updates = 9;
  const read = await scrape(m);
  t.equal(read('hostmesh_namer_updates_total', { namer: 'io.l5d.k8s' }), 9, 'the count at scrape time');
  t.equal(read('hostmesh_namer_stale', { namer: 'io.l5d.k8s' }), 1);
  t.equal(read('hostmesh_binding_cache_size', R), 7);
  t.equal(read('hostmesh_interpreter_lookups'), 3);
  t.equal(read('hostmesh_namer_entries', { namer: 'io.l5d.k8s' }), 5);
  t.equal(read('hostmesh_k8s_namespaces_refused_total', { namer: 'io.l5d.k8s' }), 4);
  t.equal(read('hostmesh_pod_ip_conflicts_total'), 6);
  t.equal(m.flat()['namer/io.l5d.k8s/updates'], 9);
});

t.test('children of a closed label set are resolved once, and the cache is bounded', async (t) => {
  let made = 0;
  const child = children((v) => ({ v, n: made++ }));
  t.equal(child('a'), child('a'), 'the same child');
  t.equal(made, 1);
  for (let i = 0; i < MAX_CHILDREN + 10; i++) child(`v${i}`);
  const before = made;
  child(`v${MAX_CHILDREN + 5}`);
  t.equal(made, before + 1, 'past the bound a value is made again, not kept');
  t.equal(child('v0').v, 'v0', 'kept ones stay');
});
