// The per-request families keep plain numbers on their rows and publish them at scrape time
// (src/metrics/scrape-rows.ts). What a scraper reads must be what prom-client's own children
// printed when every request called observe()/inc(): the same lines, labels and values, buckets
// and the overflow rows included. The reference here is prom-client itself, fed the old way.

import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { MAX_CLIENTS_PER_SERVICE } from '../../src/metrics/request-metrics.js';
import { MAX_LABEL_CHARS, MAX_SERVICES, Metrics, OVERFLOW } from '../../src/metrics/metrics.js';
import { bucketIndex, HistogramRow, publishHistogram } from '../../src/metrics/scrape-rows.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Durations: anywhere, and exactly on the bounds (a value equal to a bound is in that bucket). */
const seconds = fc.oneof(fc.double({ min: -1, max: 30, noNaN: true }), fc.constantFrom(...BUCKETS, 0, 10.000001, 1e9));

t.test('bucketIndex: the first bound a value does not exceed, else past the last', async (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 20 }), fc.double({ noNaN: true }), (raw, v) => {
      const bounds = [...raw].sort((a, b) => a - b);
      const i = bucketIndex(bounds, v);
      const first = bounds.findIndex((b) => v <= b);
      return i === (first < 0 ? bounds.length : first);
    }),
  );
  t.equal(bucketIndex(BUCKETS, 0.001), 0, 'on a bound: that bound');
  t.equal(bucketIndex(BUCKETS, 10.5), BUCKETS.length, 'above the last: the +Inf row');
});

t.test('a published HistogramRow reads as prom-client fed observe() for each value', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(seconds, { maxLength: 60, size: 'max' }), async (values) => {
      const registry = new Registry();
      const row = new HistogramRow(BUCKETS);
      const labels = { router: 'out', service: '/svc/web' };
      new Histogram({
        name: 'rows_seconds',
        help: 'h',
        labelNames: ['router', 'service'],
        buckets: BUCKETS,
        registers: [registry],
        collect() {
          publishHistogram(this, (add) => add(labels, row));
        },
      });
      const reference = new Histogram({ name: 'reference_seconds', help: 'h', labelNames: ['router', 'service'], buckets: BUCKETS, registers: [registry] });
      const child = reference.labels('out', '/svc/web');
      for (const v of values) {
        row.observe(v);
        child.observe(v);
      }
      const text = await registry.metrics();
      const lines = (name: string): string[] =>
        text
          .split('\n')
          .filter((l) => l.startsWith(name))
          .map((l) => l.slice(name.length));
      t.same(lines('rows_seconds'), lines('reference_seconds'));
      return true;
    }),
    { numRuns: 60 },
  );
  const row = new HistogramRow(BUCKETS);
  t.throws(() => row.observe(Number.NaN), new TypeError('Value is not a valid number: NaN'), 'NaN refused as prom-client refused it');
  t.equal(row.count, 0, 'and not counted');
});

/** Eight names near the services cap (some get rows, the rest share overflow) and one too long for a label. */
const SERVICE_NAMES = [...Array.from({ length: 8 }, (_, i) => `/svc/s${i}`), `/svc/${'l'.repeat(MAX_LABEL_CHARS)}`];
const CLIENT_NAMES = [...Array.from({ length: MAX_CLIENTS_PER_SERVICE + 4 }, (_, i) => `/#/io.l5d.fs/c${i}`), `/$/inet/${'h'.repeat(MAX_LABEL_CHARS)}/80`];
const FILLERS = MAX_SERVICES - 4;

const svc = fc.nat(SERVICE_NAMES.length - 1);
const events = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('done' as const), service: svc, client: fc.nat(CLIENT_NAMES.length - 1), status: fc.integer({ min: 0, max: 700 }), seconds }),
    fc.record({ kind: fc.constant('retry' as const), service: svc }),
    fc.record({ kind: fc.constant('classified' as const), service: svc, cls: fc.constantFrom('success' as const, 'failure' as const, 'retryable' as const) }),
    fc.record({ kind: fc.constant('authz' as const), service: svc, verdict: fc.constantFrom('allow' as const, 'deny' as const, 'audit' as const) }),
    fc.record({ kind: fc.constant('started' as const) }),
  ),
  { maxLength: 80, size: 'max' },
);

const FAMILIES = [
  'hostmesh_requests_total',
  'hostmesh_request_duration_seconds',
  'hostmesh_requests_in_flight',
  'hostmesh_retries_total',
  'hostmesh_response_classes_total',
  'hostmesh_authz_total',
];

/**
 * The families as the per-request code fed them before: a prom-client child per label set, its
 * labels bounded by the services table (MAX_SERVICES names, then overflow; long names overflow)
 * and MAX_CLIENTS_PER_SERVICE clients per service row.
 */
class Reference {
  readonly registry = new Registry();
  readonly #rows = new Map<string, Set<string>>();
  readonly #requests: Counter;
  readonly #duration: Histogram;
  readonly #retries: Counter;
  readonly #classes: Counter;
  readonly #authz: Counter;

  constructor() {
    const registers = [this.registry];
    this.#requests = new Counter({ name: FAMILIES[0] as string, help: 'r', labelNames: ['router', 'service', 'client', 'status_class'], registers });
    this.#duration = new Histogram({ name: FAMILIES[1] as string, help: 'r', labelNames: ['router', 'service'], buckets: BUCKETS, registers });
    this.#retries = new Counter({ name: FAMILIES[3] as string, help: 'r', labelNames: ['router', 'service'], registers });
    this.#classes = new Counter({ name: FAMILIES[4] as string, help: 'r', labelNames: ['router', 'service', 'class'], registers });
    this.#authz = new Counter({ name: FAMILIES[5] as string, help: 'r', labelNames: ['router', 'service', 'decision'], registers });
  }

  /** The row a name is counted on (made on first use). */
  row(name: string): string {
    if (this.#rows.has(name)) return name;
    const key = this.#rows.size >= MAX_SERVICES || name.length > MAX_LABEL_CHARS ? OVERFLOW : name;
    if (!this.#rows.has(key)) this.#rows.set(key, new Set());
    return key;
  }

  label(name: string): string {
    return this.#rows.has(name) || (this.#rows.size < MAX_SERVICES && name.length <= MAX_LABEL_CHARS) ? name : OVERFLOW;
  }

  done(service: string, client: string, status: number, seconds: number): void {
    const row = this.row(service);
    const clients = this.#rows.get(row) as Set<string>;
    const c = clients.has(client) ? client : clients.size >= MAX_CLIENTS_PER_SERVICE || client.length > MAX_LABEL_CHARS ? OVERFLOW : client;
    clients.add(c);
    const cls = status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : '5xx';
    this.#requests.labels('out', row, c, cls).inc();
    this.#duration.labels('out', row).observe(seconds);
  }

  retry(service: string): void {
    this.#retries.labels('out', this.row(service)).inc();
  }

  classified(service: string, cls: string): void {
    this.#classes.labels('out', this.row(service), cls).inc();
  }

  authz(service: string, verdict: string): void {
    this.#authz.labels('out', this.label(service), verdict).inc();
  }
}

/** Each family's sample lines, sorted (the order of series within a family carries no meaning). */
function samples(text: string, family: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family}_`))
    .sort();
}

/** Events on both sides after `fillers` services answered once (0, or enough to reach the cap). */
async function sameAsReference(t: Test, fillers: number, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(events, async (evs) => {
      const m = new Metrics();
      const rm = m.router('out');
      m.router('idle');
      const ref = new Reference();
      let started = 0;
      let touched = false;
      // Fill the services table close to its cap, so the names of the events both get rows and overflow.
      for (let i = 0; i < fillers; i++) {
        rm.listener.done(`/svc/filler${i}`, '/#/io.l5d.fs/f', 200, 0.003);
        ref.done(`/svc/filler${i}`, '/#/io.l5d.fs/f', 200, 0.003);
        started--;
        touched = true;
      }
      for (const e of evs) {
        if (e.kind === 'started') {
          rm.listener.started();
          started++;
          touched = true;
          continue;
        }
        const service = SERVICE_NAMES[e.service] as string;
        if (e.kind === 'done') {
          const client = CLIENT_NAMES[e.client] as string;
          rm.listener.done(service, client, e.status, e.seconds);
          ref.done(service, client, e.status, e.seconds);
          started--;
          touched = true;
        } else if (e.kind === 'retry') {
          rm.router.retry(service);
          ref.retry(service);
        } else if (e.kind === 'classified') {
          rm.router.classified(service, e.cls);
          ref.classified(service, e.cls);
        } else {
          rm.router.authz(service, '/#/io.l5d.fs/web', 'caller', e.verdict);
          ref.authz(service, e.verdict);
        }
      }
      const text = await m.prometheus();
      const expected = await ref.registry.metrics();
      for (const f of FAMILIES.filter((f) => f !== 'hostmesh_requests_in_flight')) t.same(samples(text, f), samples(expected, f), f);
      t.same(samples(text, 'hostmesh_requests_in_flight'), touched ? [`hostmesh_requests_in_flight{router="out"} ${started}`] : []);
      // The strict parser takes the whole text (one TYPE per family, every sample under it).
      parsePrometheus(text);
      return true;
    }),
    { numRuns },
  );
}

t.test('the request families read as prom-client children fed per request', async (t) => {
  await sameAsReference(t, 0, 40);
});

t.test('and so do the overflow rows: services past the cap, long names, clients past theirs', async (t) => {
  await sameAsReference(t, FILLERS, 6);
});

t.test('a scrape between requests sees the counts so far, and the next scrape the later ones', async (t) => {
  const m = new Metrics();
  const rm = m.router('out');
  rm.listener.started();
  rm.listener.done('/svc/web', '/#/io.l5d.fs/web', 200, 0.004);
  const first = parsePrometheus(await m.prometheus());
  rm.listener.done('/svc/web', '/#/io.l5d.fs/web', 200, 20);
  const second = parsePrometheus(await m.prometheus());
  const read = (s: typeof first, name: string, labels: Record<string, string>): number | undefined =>
    s.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === Object.keys(labels).length)
      ?.value;
  const web = { router: 'out', service: '/svc/web' };
  t.equal(read(first, 'hostmesh_request_duration_seconds_bucket', { ...web, le: '0.005' }), 1);
  t.equal(read(first, 'hostmesh_request_duration_seconds_bucket', { ...web, le: '+Inf' }), 1);
  t.equal(read(second, 'hostmesh_request_duration_seconds_bucket', { ...web, le: '10' }), 1, 'the 20 s request is above every bound');
  t.equal(read(second, 'hostmesh_request_duration_seconds_bucket', { ...web, le: '+Inf' }), 2, '+Inf counts it');
  t.equal(read(second, 'hostmesh_request_duration_seconds_sum', web), 20.004);
  t.equal(read(second, 'hostmesh_requests_total', { ...web, client: '/#/io.l5d.fs/web', status_class: '2xx' }), 2);
  t.equal(read(second, 'hostmesh_requests_in_flight', { router: 'out' }), -1, 'one started, two done');
  const json = (await m.registry.getMetricsAsJSON()).find((x) => x.name === 'hostmesh_request_duration_seconds');
  t.equal(
    json?.values.find((v) => (v as { metricName?: string }).metricName === 'hostmesh_request_duration_seconds_count')?.value,
    2,
    'getMetricsAsJSON reads the rows too',
  );
});
