// A router started from a Linkerd 1 config with `telemetry: [{kind: io.l5d.prometheus}]` and
// `httpAccessLog`: after known traffic (5 answers 200, 2 answer 404, 3 answer 500) its admin port
// serves every name the linkerd-viz dashboards query, with Linkerd 1's labels and values; its
// metrics.json has Linkerd 1's keys and tree; its access log has one Linkerd 1 line per request;
// /delegator serves the dtab playground.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { LINKERD1_ALERT_NAMES, LINKERD_VIZ_NAMES } from '../fixtures/linkerd1-dashboard-names.js';
import { request } from '../helpers/http.js';
import { parsePrometheus, type Sample } from '../helpers/prometheus.js';

const HOST = '127.0.0.1';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-l5d1-telemetry-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const app = http.createServer((req, res) => {
  req.resume();
  res.statusCode = Number(/^\/(\d{3})/.exec(req.url ?? '')?.[1] ?? 200);
  res.end('app');
});
await new Promise<void>((resolve) => app.listen(0, HOST, () => resolve()));
t.teardown(() => new Promise<void>((resolve) => app.close(() => resolve())));
const appPort = (app.address() as { port: number }).port;

const text = `admin: {ip: ${HOST}, port: 0}
telemetry:
- kind: io.l5d.prometheus
- kind: io.l5d.recentRequests
  sampleRate: 1.0
routers:
- protocol: http
  label: outgoing
  dtab: /svc/web => /$/inet/${HOST}/${appPort};
  httpAccessLog: logs/access.log
  httpAccessLogRollPolicy: daily
  httpAccessLogRotateCount: 3
  servers: [{port: 0, ip: ${HOST}}]
`;
const file = join(dir, 'linkerd.yaml');
await writeFile(file, text);
const loaded = parseConfig(text, file);
const mesh = await startHostmesh(loaded.config, { logger: silentLogger() });
t.teardown(() => mesh.close(0));
const port = mesh.routers[0]?.listeners[0]?.address.port as number;
const admin = (path: string): ReturnType<typeof request> => request({ host: HOST, port: mesh.admin.address.port, path });
const client = `$/inet/${HOST}/${appPort}`;
const server = `${HOST}/${port}`;

const paths = [...Array(5).fill('/ok'), '/404', '/404', '/500', '/500', '/500'] as string[];
t.before(async () => {
  for (const p of paths) {
    const r = await request({ host: HOST, port, path: p, headers: { host: 'web', 'user-agent': 'curl/8 "quoted"', referer: 'http://ref/' } });
    if (r.status !== (p === '/ok' ? 200 : Number(p.slice(1)))) throw new Error(`${p} answered ${r.status}`);
  }
});

t.test('the config: io.l5d.prometheus enforced, the other telemeter warned with what is lost', async (t) => {
  t.same(loaded.config.telemetry, { prometheus: { path: '/admin/metrics/prometheus', prefix: '' } });
  t.ok(loaded.warnings.some((w) => /io\.l5d\.recentRequests: accepted, not enforced: the admin recent requests view is not served/.test(w)));
  t.notOk(
    loaded.warnings.some((w) => /httpAccessLog|telemetry: accepted/.test(w)),
    'httpAccessLog and telemetry are no longer "accepted, not enforced"',
  );
});

t.test('every name the linkerd-viz dashboards query is served, with its labels', async (t) => {
  const r = await admin('/admin/metrics/prometheus');
  t.equal(r.status, 200);
  const samples = parsePrometheus(r.body); // strict: every family typed, every line well formed
  for (const want of [...LINKERD_VIZ_NAMES, ...LINKERD1_ALERT_NAMES]) {
    const found = samples.filter((s) => s.name === want.name && want.labels.every((l) => s.labels[l] !== undefined));
    t.ok(found.length > 0, `${want.name} {${want.labels.join(', ')}} (${want.use})`);
    for (const q of want.quantiles ?? [])
      t.ok(
        found.some((s) => s.labels['quantile'] === q),
        `${want.name} quantile ${q}`,
      );
  }
  t.ok(
    samples.some((s) => s.name.startsWith('hostmesh_')),
    'beside hostmesh_* names',
  );
  t.notMatch((await admin('/metrics')).body, /^rt:/m, '/metrics stays hostmesh_* only');
});

t.test('values equal the traffic, in the telemeter format', async (t) => {
  const body = (await admin('/admin/metrics/prometheus')).body;
  // Linkerd 1's exact line shape: labels rt then the stack, separated by ", ".
  t.match(body, `\nrt:client:requests{rt="outgoing", client="${client}"} 10\n`);
  t.match(body, `\nrt:service:requests{rt="outgoing", service="svc/web"} 10\n`);
  t.match(body, `\nrt:server:requests{rt="outgoing", server="${server}"} 10\n`);
  const samples = parsePrometheus(body);
  const value = (name: string, labels: Record<string, string>): number | undefined =>
    samples.find((s: Sample) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  const c = { rt: 'outgoing', client };
  t.equal(value('rt:client:success', c), 7);
  t.equal(value('rt:client:failures', c), 3);
  t.equal(value('rt:client:status:200', c), 5);
  t.equal(value('rt:client:status:2XX', c), 5);
  t.equal(value('rt:client:status:404', c), 2);
  t.equal(value('rt:client:status:4XX', c), 2);
  t.equal(value('rt:client:status:5XX', c), 3);
  t.equal(value('rt:client:request_latency_ms_count', c), 10);
  t.equal(value('rt:client:service:requests', { ...c, service: 'svc/web' }), 10);
  t.equal(value('rt:service:failures', { rt: 'outgoing', service: 'svc/web' }), 3);
  t.equal(value('rt:server:success', { rt: 'outgoing', server }), 7);
  t.equal(value('rt:client:loadbalancer:size', c), 1);
  t.equal(value('rt:client:loadbalancer:available', c), 1);
  const qs = ['0', '0.5', '0.9', '0.95', '0.99', '0.999', '0.9999', '1'].map((q) => value('rt:client:request_latency_ms', { ...c, quantile: q }) ?? -1);
  t.ok(
    qs.every((v, i) => v >= 0 && (i === 0 || v >= (qs[i - 1] as number))),
    `quantiles are whole ms, rising: ${qs.join(' ')}`,
  );
  t.ok((value('jvm:uptime', {}) ?? 0) > 0, 'jvm:uptime counts instances');
});

t.test('/admin/metrics.json: Linkerd 1 keys, and its tree', async (t) => {
  const flat = JSON.parse((await admin('/admin/metrics.json')).body) as Record<string, number>;
  t.equal(flat[`rt/outgoing/server/${server}/requests`], 10);
  t.equal(flat[`rt/outgoing/client/${client}/requests`], 10);
  t.equal(flat[`rt/outgoing/client/${client}/status/5XX`], 3);
  t.equal(flat['rt/outgoing/service/svc/web/success'], 7);
  t.equal(flat['rt/outgoing/service/svc/web/request_latency_ms.count'], 10);
  t.ok((flat['rt/outgoing/service/svc/web/request_latency_ms.p99'] ?? -1) >= 0);
  const tree = JSON.parse((await admin('/admin/metrics.json?tree=1')).body) as {
    rt: { outgoing: { server: Record<string, { requests: { counter: number } }>; client: Record<string, Record<string, Record<string, number>>> } };
  };
  t.equal(tree.rt.outgoing.server[server]?.requests.counter, 10);
  t.equal(tree.rt.outgoing.client[client]?.['failures']?.['counter'], 3);
  t.equal(tree.rt.outgoing.client[client]?.['request_latency_ms']?.['stat.count'], 10);
  t.ok(typeof tree.rt.outgoing.client[client]?.['request_latency_ms']?.['stat.p99'] === 'number');
});

t.test('/delegator serves the dtab playground', async (t) => {
  const r = await admin('/delegator');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /text\/html/);
  t.match(r.body, /Dtab playground/);
});

t.test('the access log: one Linkerd 1 line per request, fields a client cannot forge', async (t) => {
  const path = join(dir, 'logs', 'access.log');
  // Written by the router's own writer: settle on the count rather than sampling once.
  let lines: string[] = [];
  for (let i = 0; i < 200 && lines.length < paths.length; i++) {
    lines = await readFile(path, 'utf8').then(
      (s) => s.split('\n').filter(Boolean),
      () => [],
    );
    if (lines.length < paths.length) await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(lines.length, paths.length);
  t.match(lines[0], /^web 127\.0\.0\.1 - - \[\d\d\/\d\d\/\d{4}:\d\d:\d\d:\d\d UTC\] "GET \/ok HTTP\/1\.1" 200 3 "http:\/\/ref\/" "curl\/8 \\x22quoted\\x22"$/);
  t.match(lines.at(-1), /"GET \/500 HTTP\/1\.1" 500 3 /);
  const metrics = (await admin('/metrics')).body;
  t.match(metrics, /hostmesh_access_log_lines_total\{router="outgoing",result="written"\} 10/);
  t.match(metrics, /hostmesh_access_log_lines_total\{router="outgoing",result="dropped"\} 0/);
});
