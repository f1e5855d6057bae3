// The dashboard's per-service resilience figures through the real admin server after real traffic:
// retry rate over the last minute, retries, budget exhausted, requeues, timeouts, and the endpoints
// failure accrual marks dead, as /admin/services.json reports them (and Prometheus agrees).

import t from 'tap';
import { request } from '../helpers/http.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { APP_REQUESTS, HOST, SLOW_REQUESTS, startResilienceMesh, TWO_REQUESTS, type ResilienceMesh } from '../helpers/resilience-mesh.js';

interface Row {
  router: string;
  service: string;
  requests: number;
  resilience: {
    retries: number;
    requeues: number;
    budgetExhausted: number;
    timeouts: number;
    lastMinute: { requests: number; retries: number };
    retryRate: number | null;
    deadEndpoints: { client: string; address: string; accrual: string }[];
  };
}

let m: ResilienceMesh;
t.before(async () => {
  m = await startResilienceMesh();
});
t.teardown(() => m.close());

async function rows(): Promise<Row[]> {
  const r = await request({ host: HOST, port: m.ports.admin, path: '/admin/services.json' });
  return (JSON.parse(r.body) as { services: Row[] }).services;
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const r = await request({ host: HOST, port: m.ports.admin, path: '/metrics' });
  return parsePrometheus(r.body).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
}

const count = (xs: number[], x: number): number => xs.filter((y) => y === x).length;

t.test('per service: retry rate, retries, budget exhausted, requeues, timeouts, endpoints marked dead', async (t) => {
  const seen = await m.traffic();
  t.equal(count(seen.app, 200), APP_REQUESTS / 2, 'every second /svc/app request was retried and succeeded');
  t.equal(count(seen.app, 503), APP_REQUESTS / 2, 'the others found the budget empty: their 503 was relayed');
  t.same(seen.slow, Array(SLOW_REQUESTS).fill(503), '/svc/slow timed out');
  t.same(seen.two, Array(TWO_REQUESTS).fill(200), '/svc/two always answered: the refused connections were requeued');

  const all = await rows();
  const row = (router: string, service: string): Row => {
    const r = all.find((x) => x.router === router && x.service === service);
    if (r === undefined) throw new Error(`no row for ${router} ${service}`);
    return r;
  };
  const app = row('retries', '/svc/app');
  t.equal(app.requests, APP_REQUESTS);
  t.match(app.resilience, { retries: APP_REQUESTS / 2, budgetExhausted: APP_REQUESTS / 2, requeues: 0, timeouts: 0, deadEndpoints: [] });
  t.same(app.resilience.lastMinute, { requests: APP_REQUESTS, retries: APP_REQUESTS / 2 });
  t.equal(app.resilience.retryRate, 0.5, 'retry rate: retries / requests over the last minute');
  t.equal(await metric('hostmesh_retries_total', { router: 'retries', service: '/svc/app' }), app.resilience.retries, 'Prometheus agrees');

  const slow = row('retries', '/svc/slow');
  t.match(slow.resilience, { timeouts: SLOW_REQUESTS, retries: 0, requeues: 0, budgetExhausted: 0 });
  t.equal(slow.resilience.retryRate, 0);

  const two = row('requeues', '/svc/two');
  t.equal(two.requests, TWO_REQUESTS);
  t.ok(two.resilience.requeues >= 2, `requeued at least until the dead port was marked dead (${two.resilience.requeues})`);
  t.equal(two.resilience.requeues, await metric('hostmesh_requeues_total', { router: 'requeues', reason: 'connect_failed' }), 'Prometheus agrees');
  t.same(two.resilience.deadEndpoints, [{ client: '/#/io.l5d.fs/two', address: `${HOST}:${m.ports.dead}`, accrual: 'dead' }], 'the dead port is listed');
  t.equal(two.resilience.retries, 0);
});

t.test('a minute later the window is empty; the totals since start stay', async (t) => {
  m.advance(61_000);
  const app = (await rows()).find((x) => x.service === '/svc/app');
  t.same(app?.resilience.lastMinute, { requests: 0, retries: 0 });
  t.equal(app?.resilience.retryRate, null, 'no requests in the last minute: no rate');
  t.equal(app?.resilience.retries, APP_REQUESTS / 2);
  const ok = await request({ host: HOST, port: m.ports.retries, path: '/fine', headers: { host: 'app' } });
  t.equal(ok.status, 200, 'the router still serves');
});
