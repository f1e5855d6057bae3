// Shares of a router's busy samples spent in hostmesh's own per-request frames outside the
// forwarding engine (issue 28): prom-client, the metrics, admission, the delivery check, the
// policy's destination, the bounded maps, ... for the routers of one or more profile folders side
// by side (e.g. before/after). Counts samples, not their time deltas: on a starved machine a
// descheduled process makes single samples look long, while sample counts stay proportional to CPU.
// Usage: node dist/test/bench/profile-frames.js [--skip S] DIR...   (DIR: a copy of bench-results/profiles)
// A router is told apart by its frames: B (incoming) runs the delivery check, A (outgoing) does not.

import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CallFrame, Profile } from './cpu-profile.js';

const { values, positionals } = parseArgs({ options: { skip: { type: 'string', default: '15' } }, allowPositionals: true });
const SKIP_US = Number(values.skip) * 1e6;

/** Frames counted once per sample when on the stack (inclusive): [label, file part, function name]. */
const INCLUSIVE: readonly [string, string, string | undefined][] = [
  ['prom-client (incl.)', '/node_modules/prom-client/', undefined],
  ['RequestMetrics.done (incl.)', 'metrics/request-metrics.js', 'done'],
  ['RouterMetrics classified/authz/retry (incl.)', 'metrics/router-metrics.js', undefined],
  ['Linkerd 1 stats record (incl.)', 'metrics/linkerd1-stats.js', 'record'],
  ['Admission.release (incl.)', 'endpoint/admission.js', 'release'],
  ['Admission #fits (incl.)', 'endpoint/admission.js', '#fits'],
  ['delivery check (incl.)', 'concrete/delivery.js', undefined],
  ['destinationOf (incl.)', 'authorize/authorize.js', 'destinationOf'],
  ['skipDraining (incl.)', 'concrete/draining-peers.js', 'skipDraining'],
  ['Path.concat (incl.)', 'dtab/path.js', 'concat'],
  ['logical #bind (incl.)', 'logical/logical.js', '#bind'],
  ['router #plan (incl.)', 'router/router.js', '#plan'],
];

/** Frames counted when they are the sampled one (self): [label, test]. */
const SELF: readonly [string, (f: CallFrame) => boolean][] = [
  ['hostmesh src/ all (self)', (f) => f.url.includes('/dist/src/')],
  ['hostmesh src/ outside stages/forward (self)', (f) => f.url.includes('/dist/src/') && !f.url.includes('/stages/forward/')],
  ['hostmesh metrics/ (self)', (f) => f.url.includes('/dist/src/metrics/')],
  ['prom-client (self)', (f) => f.url.includes('/node_modules/prom-client/')],
  ['BoundedMap.get (self)', (f) => f.url.includes('core/bounded-map.js') && f.functionName === 'get'],
  ['EndpointPools.get (self)', (f) => f.url.includes('endpoint/endpoint-pool.js') && f.functionName === 'get'],
  ['daemonset transform (self)', (f) => f.url.includes('concrete/transformers.js')],
];

const columns: { name: string; busy: number; counts: Map<string, number> }[] = [];
for (const dir of positionals) {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const incoming = p.nodes.some((n) => n.callFrame.url.includes('concrete/delivery.js') && (n.hitCount ?? 0) > 0);
    const counts = new Map<string, number>();
    const bump = (k: string): void => void counts.set(k, (counts.get(k) ?? 0) + 1);
    let t = 0;
    let busy = 0;
    p.samples.forEach((id, i) => {
      t += p.timeDeltas[i] ?? 0;
      const n = byId.get(id);
      if (t < SKIP_US || n === undefined || n.callFrame.functionName === '(idle)') return;
      busy++;
      for (const [label, test] of SELF) if (test(n.callFrame)) bump(label);
      const seen = new Set<string>();
      for (let at: number | undefined = n.id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)?.callFrame;
        if (f === undefined) break;
        for (const [label, part, fn] of INCLUSIVE) {
          if (!seen.has(label) && f.url.includes(part) && (fn === undefined || f.functionName === fn)) {
            seen.add(label);
            bump(label);
          }
        }
      }
    });
    // The single-router row and idle processes: too few samples to say anything.
    if (busy < 1000) continue;
    columns.push({ name: `${basename(dir)} ${incoming ? 'B' : 'A'}`, busy, counts });
  }
}

const labels = [...SELF.map(([l]) => l), ...INCLUSIVE.map(([l]) => l)];
console.log(`| share of busy samples | ${columns.map((c) => c.name).join(' | ')} |`);
console.log(`|---|${columns.map(() => '---').join('|')}|`);
console.log(`| busy samples | ${columns.map((c) => c.busy).join(' | ')} |`);
for (const l of labels) console.log(`| ${l} | ${columns.map((c) => `${((100 * (c.counts.get(l) ?? 0)) / c.busy).toFixed(2)}%`).join(' | ')} |`);
