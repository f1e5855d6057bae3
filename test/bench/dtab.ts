// `npm run bench:dtab`: dtab engine throughput (not a test). Parse a 200-dentry dtab; parse a
// 3-dentry l5d-dtab header; bind a path through a 10-step delegation chain (cached dtab, new paths);
// the worst-case override (doubling alternation/union chains) cost against its depth.

import { Dtab, parseDtab } from '../../src/dtab/dtab.js';
import { Path } from '../../src/dtab/path.js';
import { DEFAULT_BINDING_BUDGET, NameInterpreter, type EvalStats } from '../../src/namer/interpreter.js';

function bench(name: string, ms: number, f: (i: number) => void): number {
  for (let i = 0; i < 2000; i++) f(i); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  while (process.hrtime.bigint() < end) {
    for (let k = 0; k < 100; k++) f(n++);
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = n / secs;
  process.stdout.write(`${name.padEnd(52)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} ops/s\n`);
  return rate;
}

const big = Array.from({ length: 200 }, (_, i) => `/svc/service-${i} => /#/io.l5d.k8s/ns-${i % 7}/http/service-${i} | /$/inet/10.0.${i % 250}.1/8080`).join(
  ';\n',
);
const header = '/svc/world => /svc/world-v2; /svc/hello => 0.9 * /srv/hello & 0.1 * /srv/hello-canary; /srv => /#/io.l5d.fs';
const chain = Dtab.read(['/s0 => /$/inet/127.0.0.1/8080', ...Array.from({ length: 10 }, (_, i) => `/s${i + 1} => /s${i}`)].join(';'));
const bigDtab = Dtab.read(big);
const wide = Dtab.read(Array.from({ length: 1000 }, (_, i) => `/x${i}=>/b;/*=>/a`).join(';'));
const interp = new NameInterpreter({ namers: [] });

const results = {
  parse200: bench('parse a 200-dentry dtab', 1500, () => parseDtab(big)),
  parseHeader: bench('parse a 3-dentry l5d-dtab header', 1500, () => parseDtab(header)),
  bind: bench('bind through a 10-step chain (new path each time)', 1500, (i) => {
    const b = interp.bind(chain, new Path(['s10', `p${i}`]));
    b.close();
  }),
  lookup: bench('one Dtab.lookup step on the 200-dentry dtab', 1500, (i) => bigDtab.lookup(new Path(['svc', `service-${i % 200}`]))),
  // A 16 KB override mixing 1,000 wildcard and 1,000 labelled dentries: index built per new Dtab.
  wideIndex: bench('first-label index of a 16 KB wildcard-heavy dtab', 1500, () => new Dtab(wide.dentries).candidates(new Path(['x1']))),
};
const targets = { parseHeader: 300_000, bind: 200_000 };
process.stdout.write(
  `\ntargets: l5d-dtab header parse >= ${targets.parseHeader.toLocaleString('en-US')} ops/s: ${results.parseHeader >= targets.parseHeader ? 'met' : 'MISSED'}; ` +
    `bind >= ${targets.bind.toLocaleString('en-US')} ops/s: ${results.bind >= targets.bind ? 'met' : 'MISSED'}\n`,
);

// Worst-case overrides: `/h0=>/h1|/h1;/h1=>/h2|/h2;...` (or `&`), the shape that doubles a naive
// evaluation at every level (2^depth nodes). Each bind is a fresh evaluation (bind then close);
// the cost should grow linearly with the depth, and chains past the budget are refused.
function doubling(depth: number, op: string): Dtab {
  const lines = Array.from({ length: depth }, (_, i) => `/h${i}=>/h${i + 1}${op}/h${i + 1}`);
  lines.push(`/h${depth}=>/$/inet/127.0.0.1/8080`);
  return Dtab.read(lines.join(';'));
}

/** Microseconds per fresh bind: the best of 5 runs of `ms` (the machine is shared; noise only adds). */
function microsPerBind(dtab: Dtab, ms: number): number {
  const path = new Path(['h0']);
  for (let i = 0; i < 2000; i++) interp.bind(dtab, path).close(); // warm up
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    let n = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(ms) * 1_000_000n;
    while (process.hrtime.bigint() < end) {
      for (let k = 0; k < 20; k++, n++) interp.bind(dtab, path).close();
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e3 / n);
  }
  return best;
}

process.stdout.write(`\nworst-case override cost vs size (budget ${DEFAULT_BINDING_BUDGET.toLocaleString('en-US')} nodes; naive = 2^(depth+2) nodes)\n`);
process.stdout.write(
  `${'shape'.padEnd(12)} ${'depth'.padStart(5)} ${'bytes'.padStart(6)} ${'naive nodes'.padStart(12)} ${'steps'.padStart(6)} ${'us/bind'.padStart(9)}  result\n`,
);
for (const [shape, op] of [
  ['alternation', '|'],
  ['union', '&'],
] as const) {
  for (const depth of [5, 10, 11, 20, 40, 80]) {
    const dtab = doubling(depth, op);
    const stats: EvalStats = { work: 0, size: 0 };
    interp.explain(dtab, new Path(['h0']), { stats });
    const us = microsPerBind(dtab, 100);
    const b = interp.bind(dtab, new Path(['h0']));
    const state = b.state.get();
    b.close();
    const result = state.kind === 'failed' ? 'refused (over budget)' : state.kind;
    const naive = 2 ** (depth + 2) - 2;
    process.stdout.write(
      `${shape.padEnd(12)} ${String(depth).padStart(5)} ${String(dtab.show().length).padStart(6)} ${(depth < 25 ? naive.toLocaleString('en-US') : `2^${depth + 2}`).padStart(12)} ${String(stats.work).padStart(6)} ${us.toFixed(1).padStart(9)}  ${result}\n`,
    );
  }
}

// Other 16 KB overrides that try to spend the budget's steps rather than its nodes: dentries that
// grow the path by 100 labels a step, and 1,500 dentries sharing the first labels of the paths.
const labels100 = (c: string): string => Array.from({ length: 100 }, (_, j) => `${c}${j}`).join('/');
const growing = Dtab.read(Array.from({ length: 20 }, (_, i) => `/h${i}=>/h${i + 1}/${labels100('p')}|/h${i + 1}/${labels100('q')}`).join(';'));
const wideLines = Array.from({ length: 16 }, (_, i) => `/h${i}=>/h${i + 1}/x|/h${i + 1}/y`);
for (const k of [11, 12, 13]) for (let j = 0; j < 500; j++) wideLines.push(`/h${k}/junk${j}=>/nowhere`);
const wideOverride = Dtab.read(wideLines.join(';'));
process.stdout.write('\nother worst-case overrides (each refused at the 80,000-step limit)\n');
for (const [name, dtab] of [
  ['growing paths (20 steps x 100 labels)', growing],
  ['1,500 dentries sharing first labels', wideOverride],
] as const) {
  process.stdout.write(`${name.padEnd(40)} ${String(dtab.show().length).padStart(6)} bytes ${microsPerBind(dtab, 100).toFixed(0).padStart(7)} us/bind\n`);
}
