// Linkerd 1's metric pages on the admin port: with `telemetry: [{kind: io.l5d.prometheus}]` its
// names (rt:client:requests{rt=..., client=...}) beside hostmesh_* at its path; always, its keys
// in /admin/metrics.json and its tree at /admin/metrics.json?tree=1; and the access log counter.

import type http from 'node:http';
import { Counter } from 'prom-client';
import { type Linkerd1RouterView, linkerd1Entries, linkerd1Flat, linkerd1Prometheus, linkerd1Tree } from '../metrics/linkerd1-format.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Router } from '../router/router.js';
import type { AccessLog } from '../server/access-log.js';
import type { AdminServer } from './admin-server.js';

/** Linkerd 1's io.l5d.prometheus telemeter (config/ maps the `telemetry` list onto it). */
export interface PrometheusTelemetry {
  /** Where the Linkerd 1 names are served beside hostmesh_* (Linkerd 1's default /admin/metrics/prometheus). */
  readonly path: string;
  /** Put before every Linkerd 1 name (Linkerd 1's `prefix`, default none). */
  readonly prefix: string;
}

export interface Linkerd1AdminOptions {
  readonly metrics: Metrics;
  readonly routers: readonly { readonly label: string; readonly router: Router }[];
  readonly prometheus?: PrometheusTelemetry | undefined;
  /** Access logs by router label. */
  readonly accessLogs: ReadonlyMap<string, AccessLog>;
}

function send(res: http.ServerResponse, body: string, type: string): void {
  res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** What each router contributes to Linkerd 1's tree, read now. */
function views(o: Linkerd1AdminOptions): Linkerd1RouterView[] {
  return o.routers.map((r) => {
    const rm = o.metrics.router(r.label);
    return {
      label: r.label,
      stats: rm.requests.linkerd1,
      retries: [...rm.requests.services].map(([name, s]) => [name, s.resilience] as const),
      balancers: () =>
        r.router.clientState().map((c) => ({ id: c.id, size: c.endpoints.length, available: c.endpoints.filter((e) => e.accrual === 'alive').length })),
    };
  });
}

export function installLinkerd1Admin(admin: AdminServer, o: Linkerd1AdminOptions): void {
  const { metrics } = o;
  if (o.accessLogs.size > 0) {
    const logs = o.accessLogs;
    new Counter({
      name: 'hostmesh_access_log_lines_total',
      help: 'httpAccessLog lines written, or dropped (the writer was behind by httpAccessLogBufferKB, or a write failed: disk full, file removed).',
      labelNames: ['router', 'result'],
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const [router, log] of logs) {
          this.labels(router, 'written').inc(log.written);
          this.labels(router, 'dropped').inc(log.dropped);
        }
      },
    });
  }
  admin.route('/admin/metrics.json', (_req, res, url) => {
    const entries = linkerd1Entries(views(o));
    const tree = url.searchParams.get('tree');
    const body = tree === '1' || tree === 'true' ? linkerd1Tree(entries) : { ...metrics.flat(), ...linkerd1Flat(entries) };
    send(res, `${JSON.stringify(body, null, 2)}\n`, 'application/json');
  });
  const prom = o.prometheus;
  if (prom === undefined) return;
  const page = async (_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const own = await metrics.prometheus();
    send(res, own + linkerd1Prometheus(linkerd1Entries(views(o)), prom.prefix), metrics.contentType);
  };
  admin.route('/admin/metrics/prometheus', page);
  if (prom.path !== '/admin/metrics/prometheus') admin.route(prom.path, page);
}
