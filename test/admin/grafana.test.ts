// The Grafana dashboard in k8s/ queries only metrics hostmesh exports (no drift between the two),
// and every panel has a query.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { Metrics } from '../../src/metrics/metrics.js';
import { parsePrometheus } from '../helpers/prometheus.js';

interface Panel {
  title: string;
  targets: { expr: string }[];
}

t.test('every metric the dashboard queries is exported', async (t) => {
  const dash = JSON.parse(readFileSync('k8s/grafana-dashboard.json', 'utf8')) as { panels: Panel[] };
  const m = new Metrics();
  const r = m.router('outgoing');
  r.listener.started();
  r.listener.done('/svc/world', '/#/io.l5d.k8s/default/http/world', 200, 0.01);
  r.listener.connectionOpened('server');
  r.listener.tlsFailure('no_client_certificate');
  r.router.override();
  r.router.dtabRejected();
  m.addNamer({ kind: 'io.l5d.k8s', updates: 3, stale: false });
  const exported = new Set(parsePrometheus(await m.prometheus()).map((s) => s.name));
  t.ok(dash.panels.length >= 6, 'golden signals and health panels');
  for (const p of dash.panels) {
    t.ok(p.targets.length > 0, `${p.title} has a query`);
    for (const target of p.targets) {
      for (const name of target.expr.match(/hostmesh_[a-z_]+/g) ?? []) t.ok(exported.has(name), `${p.title}: ${name} is exported`);
    }
  }
});
