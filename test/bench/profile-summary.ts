// Summarizes V8 CPU profiles (`node --cpu-prof`, e.g. `BENCH_PROFILE=1 npm run bench`, which writes
// bench-results/profiles/*.cpuprofile): for each file, busy time (all samples but idle), the top
// self-time frames as shares of busy time, and the busy time grouped by where the code lives
// (node internals, undici, prom-client, pino, hostmesh's src/, garbage collection, native).
// Usage: node dist/test/bench/profile-summary.js [--top N] [--skip S] [--window S] FILE.cpuprofile...

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { CallFrame, Profile } from './cpu-profile.js';

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' }, window: { type: 'string', default: '0' }, skip: { type: 'string', default: '0' } },
  allowPositionals: true,
});
const TOP = Number(values.top);
// --window S: only the busiest S seconds of the profile (the load phase; start-up excluded).
const WINDOW_US = Number(values.window) * 1e6;
// --skip S: leave out the first S seconds (start-up: module loading, config, first watches).
const SKIP_US = Number(values.skip) * 1e6;

function area(f: CallFrame): string {
  const u = f.url;
  if (f.functionName === '(garbage collector)') return 'gc';
  if (f.functionName === '(program)') return 'native/program';
  if (u === '') return 'native';
  if (u.includes('/node_modules/undici/')) return 'undici';
  if (u.includes('/node_modules/prom-client/')) return 'prom-client';
  if (u.includes('/node_modules/pino')) return 'pino';
  if (u.includes('/node_modules/')) return `deps:${u.split('/node_modules/')[1]?.split('/')[0] ?? '?'}`;
  if (u.startsWith('node:')) return `node ${u.replace(/^node:(internal\/)?/, '')}`;
  if (u.includes('/dist/src/')) return `hostmesh ${u.split('/dist/src/')[1]?.split('/')[0] ?? ''}`;
  return 'other';
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  // Sample times, and the window [from, to) to count.
  const at: number[] = [];
  let t = 0;
  for (const dt of p.timeDeltas) at.push((t += dt));
  let from = SKIP_US;
  let to = Infinity;
  if (WINDOW_US > 0) {
    const isBusy = (i: number): boolean => byId.get(p.samples[i] ?? -1)?.callFrame.functionName !== '(idle)';
    let best = -1;
    let sum = 0;
    let lo = 0;
    while ((at[lo] ?? Infinity) < SKIP_US) lo++;
    for (let hi = lo; hi < at.length; hi++) {
      if (isBusy(hi)) sum += p.timeDeltas[hi] ?? 0;
      while ((at[hi] ?? 0) - (at[lo] ?? 0) > WINDOW_US) {
        if (isBusy(lo)) sum -= p.timeDeltas[lo] ?? 0;
        lo++;
      }
      if (sum > best) {
        best = sum;
        from = at[lo] ?? 0;
        to = (at[hi] ?? 0) + 1;
      }
    }
  }
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i] ?? -1);
    const dt = p.timeDeltas[i] ?? 0;
    if (node === undefined || (at[i] ?? 0) < from || (at[i] ?? 0) >= to) continue;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const where = f.url === '' ? '' : ` ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
    const key = `${(f.functionName || '(anonymous)').slice(0, 80)}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const a = area(f);
    areas.set(a, (areas.get(a) ?? 0) + dt);
  }
  const pct = (x: number): string => `${((100 * x) / busy).toFixed(1)}%`;
  const span =
    WINDOW_US > 0
      ? `, the busiest ${values.window} s window (${(from / 1e6).toFixed(0)}-${(to / 1e6).toFixed(0)} s)`
      : SKIP_US > 0
        ? `, from ${values.skip} s on`
        : '';
  console.log(`\n## ${basename(file)}${span}: busy ${(busy / 1e6).toFixed(1)} s, idle ${(idle / 1e6).toFixed(1)} s`);
  console.log('\n| self time | frame |\n|---|---|');
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`| ${pct(v)} | ${k} |`);
  console.log('\n| busy time | where |\n|---|---|');
  for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`| ${pct(v)} | ${k} |`);
}
