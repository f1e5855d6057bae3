// Each RouterEvents event, as a user scraping /metrics sees it: the Prometheus line it moves, with
// the names and labels the README and the Grafana dashboard use. The router reports through the
// interface only (router/events.ts), so the events are called through it here too.

import t from 'tap';
import { MAX_SERVICES, Metrics, OVERFLOW } from '../../src/metrics/metrics.js';
import type { AuthzEvents, RouterEvents, RouterPartEvents } from '../../src/router/events.js';
import { scrape } from './scrape.js';

const R = { router: 'out' };

/** Event, the call, then the line that changed (name, labels, value after one call). */
const CASES: [string, (e: RouterEvents & RouterPartEvents) => void, string, Record<string, string>, number][] = [
  ['override', (e) => e.override(), 'hostmesh_dtab_overrides_total', R, 1],
  ['budgetExceeded', (e) => e.budgetExceeded('override'), 'hostmesh_binding_budget_exceeded_total', { ...R, source: 'override' }, 1],
  ['bindingEvicted', (e) => e.bindingEvicted('capacity'), 'hostmesh_binding_cache_evictions_total', { ...R, reason: 'capacity' }, 1],
  ['shed', (e) => e.shed('queue_full'), 'hostmesh_requests_shed_total', { ...R, reason: 'queue_full' }, 1],
  ['timeout', (e) => e.timeout('headers', '/svc/web'), 'hostmesh_upstream_timeouts_total', { ...R, kind: 'headers' }, 1],
  ['requeue', (e) => e.requeue('connect_failed', '/svc/web'), 'hostmesh_requeues_total', { ...R, reason: 'connect_failed' }, 1],
  ['retry', (e) => e.retry('/svc/web'), 'hostmesh_retries_total', { ...R, service: '/svc/web' }, 1],
  ['budgetExhausted', (e) => e.budgetExhausted('retry', '/svc/web'), 'hostmesh_retry_budget_exhausted_total', { ...R, kind: 'retry' }, 1],
  ['classified', (e) => e.classified('/svc/web', 'retryable'), 'hostmesh_response_classes_total', { ...R, service: '/svc/web', class: 'retryable' }, 1],
  ['accrualRemoval', (e) => e.accrualRemoval('/#/io.l5d.k8s/default/http/web'), 'hostmesh_failure_accrual_removals_total', R, 1],
  ['accrualDead', (e) => e.accrualDead(3), 'hostmesh_failure_accrual_dead_endpoints', R, 3],
  ['drainingPeerMarked', (e) => e.drainingPeerMarked(), 'hostmesh_draining_peer_marks_total', R, 1],
  ['drainingPeers', (e) => e.drainingPeers(2), 'hostmesh_draining_peers', R, 2],
  ['paramsEvicted', (e) => e.paramsEvicted('pools'), 'hostmesh_static_params_evictions_total', { ...R, scope: 'pools' }, 1],
  ['deliveryRefused', (e) => e.deliveryRefused('other_node'), 'hostmesh_delivery_refused_total', { ...R, reason: 'other_node' }, 1],
  ['ingressRefused', (e) => e.ingressRefused('too_many_rules'), 'hostmesh_ingress_refused_total', { ...R, reason: 'too_many_rules' }, 1],
  ['ingressServed', (e) => e.ingressServed(4, 9), 'hostmesh_ingress_served', { ...R, what: 'rules' }, 9],
];

t.test('each router event moves its Prometheus line, and only for its router', async (t) => {
  for (const [event, call, name, labels, value] of CASES) {
    const m = new Metrics();
    const events: RouterEvents & RouterPartEvents = m.router('out').router;
    m.router('in');
    t.equal((await scrape(m))(name, labels), undefined, `${event}: no ${name} line before`);
    call(events);
    const read = await scrape(m);
    t.equal(read(name, labels), value, `${event}: ${name}${JSON.stringify(labels)} ${value}`);
    t.equal(read(name, { ...labels, router: 'in' }), undefined, `${event}: the other router's line is untouched`);
    call(events);
    if (name.endsWith('_total')) t.equal((await scrape(m))(name, labels), 2 * value, `${event}: counted again`);
  }
});

t.test('the endpoint pool events keep the open gauge and count closes by reason', async (t) => {
  const m = new Metrics();
  const pools = m.router('out').router.pools;
  pools.poolOpened?.();
  pools.poolOpened?.();
  pools.poolClosed?.('idle');
  pools.connect();
  pools.refused?.();
  const read = await scrape(m);
  t.equal(read('hostmesh_endpoint_pools', R), 1);
  t.equal(read('hostmesh_endpoint_pools_closed_total', { ...R, reason: 'idle' }), 1);
  t.equal(read('hostmesh_connections_total', { ...R, side: 'client' }), 1, 'a pool connection is a client connection');
  t.equal(read('hostmesh_requests_shed_total', { ...R, reason: 'endpoint_pools_full' }), 1);
});

t.test('resilience events land on the service row the dashboard shows', async (t) => {
  const m = new Metrics();
  const e = m.router('out').router;
  e.retry('/svc/web');
  e.requeue('not_delivered', '/svc/web');
  e.budgetExhausted('requeue', '/svc/web');
  e.timeout('total', '/svc/web');
  e.timeout('deadline_passed');
  const row = m.services().find((r) => r.service === '/svc/web');
  t.match(row?.resilience, { retries: 1, requeues: 1, budgetExhausted: 1, timeouts: 1, lastMinute: { retries: 1 } });
});

t.test('per-service lines share the services bound: past MAX_SERVICES names, the overflow row', async (t) => {
  const m = new Metrics();
  const e = m.router('out').router;
  for (let i = 0; i < MAX_SERVICES + 20; i++) {
    e.retry(`/svc/s${i}`);
    e.classified(`/svc/s${i}`, 'success');
  }
  e.retry(`/svc/${'x'.repeat(300)}`);
  const read = await scrape(m);
  t.equal(read('hostmesh_retries_total', { ...R, service: '/svc/s0' }), 1, 'an early name keeps its row');
  t.equal(read('hostmesh_retries_total', { ...R, service: OVERFLOW }), 21, 'the 20 past the cap and the long name share overflow');
  t.equal(read('hostmesh_response_classes_total', { ...R, service: OVERFLOW, class: 'success' }), 20);
  t.equal(m.router('out').requests.services.size, MAX_SERVICES + 1, 'the services table stays bounded (+ overflow)');
});

t.test('authorization decisions count by service and feed the callers view', async (t) => {
  const m = new Metrics();
  const rm = m.router('in').router;
  const e: AuthzEvents = rm;
  e.authzDecision('/svc/web', '/#/io.l5d.k8s/shop/http/web', 'spiffe://cluster.local/ns/shop/sa/a', 'allow');
  e.overrideRefused('/svc/web', '/#/io.l5d.k8s/shop/http/web', 'unauthenticated');
  const read = await scrape(m);
  t.equal(read('hostmesh_authz_total', { router: 'in', service: '/svc/web', decision: 'allow' }), 1);
  t.equal(read('hostmesh_authz_total', { router: 'in', service: '/svc/web', decision: 'deny' }), 1, 'a refused override counts as a deny');
  t.equal(rm.authzCallers.view().length, 1, 'one destination with its callers');
});

t.test('a dtab version rejected counts per router', async (t) => {
  const m = new Metrics();
  m.router('out').router.dtabRejected();
  t.equal((await scrape(m))('hostmesh_dtab_reload_failures_total', R), 1);
});
