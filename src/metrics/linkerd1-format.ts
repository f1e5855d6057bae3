// Linkerd 1's metric names and formats, worked out at scrape time from the counters kept on the
// request path: the io.l5d.prometheus telemeter's text (rt:client:requests{rt="outgoing",
// client="#/io.l5d.k8s/default/http/world"}, linkerd/linkerd telemetry/prometheus is the spec),
// and /admin/metrics.json's flat keys (rt/outgoing/client/<id>/requests) and tree (?tree=1).

import { getHeapStatistics } from 'node:v8';
import { availableParallelism } from 'node:os';
import type { Linkerd1RouterStats, ScopeStats, Summary } from './linkerd1-stats.js';

export type { Summary } from './linkerd1-stats.js';

/** One metric of Linkerd 1's tree: its path (scopes then name) and value. */
export type Entry =
  | { readonly path: readonly string[]; readonly kind: 'counter' | 'gauge'; readonly value: number }
  /** A histogram's summary (undefined: no sample in its window). */
  | { readonly path: readonly string[]; readonly kind: 'stat'; readonly summary: Summary | undefined };

/** What one router contributes besides its request scopes (read at scrape time). */
export interface Linkerd1RouterView {
  readonly label: string;
  readonly stats: Linkerd1RouterStats;
  /** Per logical name (with its leading slash): retries made and retries refused by an empty budget. */
  readonly retries?: Iterable<readonly [string, { readonly retries: number; readonly requeues: number; readonly budgetExhausted: number }]>;
  /** Per bound id: endpoints known and endpoints the balancer may choose (not held dead by failure accrual). */
  readonly balancers?: () => Iterable<{ readonly id: string; readonly size: number; readonly available: number }>;
}

function scopeEntries(out: Entry[], base: readonly string[], s: ScopeStats, now: number): void {
  out.push({ path: [...base, 'requests'], kind: 'counter', value: s.requests });
  out.push({ path: [...base, 'success'], kind: 'counter', value: s.success });
  out.push({ path: [...base, 'failures'], kind: 'counter', value: s.failures });
  for (const [code, n] of s.status) if (code !== 0) out.push({ path: [...base, 'status', String(code)], kind: 'counter', value: n });
  for (const [cls, n] of s.statusClasses()) out.push({ path: [...base, 'status', cls], kind: 'counter', value: n });
  out.push({ path: [...base, 'request_latency_ms'], kind: 'stat', summary: s.latency.summary(now) });
}

const STARTED = Date.now();

/** Every Linkerd 1 metric hostmesh can serve, in tree order (rt/..., then the process gauges). */
export function linkerd1Entries(routers: Iterable<Linkerd1RouterView>): Entry[] {
  const out: Entry[] = [];
  for (const r of routers) {
    const rt = ['rt', r.label];
    const now = r.stats.now();
    for (const [name, s] of r.stats.servers) scopeEntries(out, [...rt, 'server', name], s, now);
    const retries = new Map([...(r.retries ?? [])].map(([name, v]) => [name.startsWith('/') ? name.slice(1) : name, v]));
    for (const [name, s] of r.stats.services) {
      const base = [...rt, 'service', name];
      scopeEntries(out, base, s, now);
      const rs = retries.get(name);
      if (rs !== undefined) {
        out.push({ path: [...base, 'retries', 'total'], kind: 'counter', value: rs.retries });
        out.push({ path: [...base, 'retries', 'budget_exhausted'], kind: 'counter', value: rs.budgetExhausted });
      }
    }
    const balancers = new Map([...(r.balancers?.() ?? [])].map((b) => [b.id.startsWith('/') ? b.id.slice(1) : b.id, b]));
    for (const [id, c] of r.stats.clients) {
      const base = [...rt, 'client', id];
      scopeEntries(out, base, c, now);
      out.push({ path: [...base, 'failure_accrual', 'removals'], kind: 'counter', value: c.removals });
      const b = balancers.get(id);
      if (b !== undefined) {
        out.push({ path: [...base, 'loadbalancer', 'size'], kind: 'gauge', value: b.size });
        out.push({ path: [...base, 'loadbalancer', 'available'], kind: 'gauge', value: b.available });
      }
      for (const [svc, s] of c.services) scopeEntries(out, [...base, 'service', svc], s, now);
    }
  }
  // The process under the JVM names Linkerd 1's dashboards count instances and memory with.
  const heap = getHeapStatistics();
  out.push({ path: ['jvm', 'uptime'], kind: 'gauge', value: Date.now() - STARTED });
  out.push({ path: ['jvm', 'num_cpus'], kind: 'gauge', value: availableParallelism() });
  out.push({ path: ['jvm', 'heap', 'used'], kind: 'gauge', value: heap.used_heap_size });
  out.push({ path: ['jvm', 'heap', 'max'], kind: 'gauge', value: heap.heap_size_limit });
  return out;
}

/** Nearest-rank quantile of sorted samples, as whole milliseconds (Linkerd 1's stats are longs). */
function rank(sorted: Float64Array, q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.floor(sorted[i] as number);
}

/** The exact summary of sorted samples (tests and small sets; the router's stats use LatencyHistogram). */
export function summarize(sorted: Float64Array): Summary | undefined {
  const count = sorted.length;
  if (count === 0) return undefined;
  let sum = 0;
  for (const v of sorted) sum += Math.floor(v);
  return {
    count,
    sum,
    avg: sum / count,
    min: rank(sorted, 0),
    max: rank(sorted, 1),
    p50: rank(sorted, 0.5),
    p90: rank(sorted, 0.9),
    p95: rank(sorted, 0.95),
    p99: rank(sorted, 0.99),
    p9990: rank(sorted, 0.999),
    p9999: rank(sorted, 0.9999),
  };
}

/** A double as the JVM prints it (`1.0`, `1.5`). */
function double(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

const STACKS = new Set(['service', 'client', 'server']);

/**
 * The Prometheus name and labels of a tree path, by the telemeter's rules: rt/<router> becomes
 * rt="<router>", rt/<stack>/<id> becomes <stack>="<id>", a client's service/<path> becomes
 * service="<path>"; the rest is the name, joined by `:`, other characters made `_`.
 */
export function prometheusName(path: readonly string[], prefix = ''): { name: string; labels: [string, string][] } {
  let rest = [...path];
  const labels: [string, string][] = [];
  if (rest[0] === 'rt' && rest.length > 2) {
    labels.push(['rt', rest[1] as string]);
    rest = ['rt', ...rest.slice(2)];
    if (STACKS.has(rest[1] as string) && rest.length > 3) {
      labels.push([rest[1] as string, rest[2] as string]);
      rest = ['rt', rest[1] as string, ...rest.slice(3)];
      if (rest[1] === 'client' && rest[2] === 'service' && rest.length > 4) {
        labels.push(['service', rest[3] as string]);
        rest = ['rt', 'client', 'service', ...rest.slice(4)];
      }
    }
  }
  return { name: (prefix + rest.join(':')).replace(/[^a-zA-Z0-9:]/g, '_'), labels };
}

/** Prometheus text format label escaping (backslash, double quote, line feed). */
function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labelText(labels: readonly [string, string][]): string {
  return labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(', ')}}`;
}

const QUANTILES: readonly [string, keyof Summary][] = [
  ['0', 'min'],
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.95', 'p95'],
  ['0.99', 'p99'],
  ['0.999', 'p9990'],
  ['0.9999', 'p9999'],
  ['1', 'max'],
];

/**
 * The io.l5d.prometheus text: counters and gauges as `name{labels} value`; a stat as its
 * quantiles `name{labels, quantile="0.5"}` with `name_count`, `name_sum` and `name_avg` (empty
 * stats are not written). Each name's samples are grouped under one TYPE line, as the exposition
 * format wants (Linkerd 1 wrote none).
 */
export function linkerd1Prometheus(entries: readonly Entry[], prefix = ''): string {
  const families = new Map<string, { type: string; lines: string[] }>();
  const add = (name: string, type: string, line: string): void => {
    let f = families.get(name);
    if (f === undefined) {
      f = { type, lines: [] };
      families.set(name, f);
    }
    f.lines.push(line);
  };
  for (const e of entries) {
    const { name, labels } = prometheusName(e.path, prefix);
    if (e.kind !== 'stat') {
      add(name, e.kind, `${name}${labelText(labels)} ${e.kind === 'gauge' ? double(e.value) : e.value}`);
      continue;
    }
    const s = e.summary;
    if (s === undefined) continue;
    for (const [q, key] of QUANTILES) add(name, 'summary', `${name}${labelText([...labels, ['quantile', q]])} ${s[key]}`);
    add(name, 'summary', `${name}_count${labelText(labels)} ${s.count}`);
    add(name, 'summary', `${name}_sum${labelText(labels)} ${s.sum}`);
    add(`${name}_avg`, 'gauge', `${name}_avg${labelText(labels)} ${double(s.avg)}`);
  }
  let text = '';
  for (const [name, f] of families) text += `# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`;
  return text;
}

/** /admin/metrics.json's flat keys: `rt/outgoing/service/svc/world/requests`, `.../request_latency_ms.p99`. */
export function linkerd1Flat(entries: readonly Entry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of entries) {
    const key = e.path.join('/');
    if (e.kind !== 'stat') {
      out[key] = e.value;
      continue;
    }
    const s = e.summary;
    out[`${key}.count`] = s?.count ?? 0;
    if (s !== undefined) for (const k of ['max', 'min', 'p50', 'p90', 'p95', 'p99', 'p9990', 'p9999', 'sum', 'avg'] as const) out[`${key}.${k}`] = s[k];
  }
  return out;
}

type TreeNode = { [key: string]: TreeNode | number };

/** /admin/metrics.json?tree=1: nested scopes, leaves `{"counter": n}`, `{"gauge": n}`, `{"stat.count": n, "stat.p50": ...}`. */
export function linkerd1Tree(entries: readonly Entry[]): TreeNode {
  const root: TreeNode = {};
  for (const e of entries) {
    let node = root;
    for (const part of e.path) {
      let next = node[part];
      if (next === undefined || typeof next === 'number') {
        next = {};
        node[part] = next;
      }
      node = next;
    }
    if (e.kind !== 'stat') {
      node[e.kind] = e.value;
      continue;
    }
    const s = e.summary;
    node['stat.count'] = s?.count ?? 0;
    if (s !== undefined) for (const k of ['max', 'min', 'p50', 'p90', 'p95', 'p99', 'p9990', 'p9999', 'sum', 'avg'] as const) node[`stat.${k}`] = s[k];
  }
  return root;
}
