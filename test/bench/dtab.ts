// `npm run bench:dtab`: dtab engine throughput (not a test). Parse a 200-dentry dtab; parse a
// 3-dentry l5d-dtab header; bind a path through a 10-step delegation chain (cached dtab, new paths).

import { Dtab } from '../../src/dtab/dtab.js';
import { Path } from '../../src/dtab/path.js';
import { parseDtab } from '../../src/dtab/parse.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';

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

const big = Array.from({ length: 200 }, (_, i) => `/svc/service-${i} => /#/io.l5d.k8s/ns-${i % 7}/http/service-${i} | /$/inet/10.0.${i % 250}.1/8080`).join(';\n');
const header = '/svc/world => /svc/world-v2; /svc/hello => 0.9 * /srv/hello & 0.1 * /srv/hello-canary; /srv => /#/io.l5d.fs';
const chain = Dtab.read(
  ['/s0 => /$/inet/127.0.0.1/8080', ...Array.from({ length: 10 }, (_, i) => `/s${i + 1} => /s${i}`)].join(';'),
);
const bigDtab = Dtab.read(big);
const interp = new NameInterpreter({ namers: [] });

const results = {
  parse200: bench('parse a 200-dentry dtab', 1500, () => parseDtab(big)),
  parseHeader: bench('parse a 3-dentry l5d-dtab header', 1500, () => parseDtab(header)),
  bind: bench('bind through a 10-step chain (new path each time)', 1500, (i) => {
    const b = interp.bind(chain, new Path(['s10', `p${i}`]));
    b.close();
  }),
  lookup: bench('one Dtab.lookup step on the 200-dentry dtab', 1500, (i) => bigDtab.lookup(new Path(['svc', `service-${i % 200}`]))),
};
const targets = { parseHeader: 300_000, bind: 200_000 };
process.stdout.write(
  `\ntargets: l5d-dtab header parse >= ${targets.parseHeader.toLocaleString('en-US')} ops/s: ${results.parseHeader >= targets.parseHeader ? 'met' : 'MISSED'}; ` +
    `bind >= ${targets.bind.toLocaleString('en-US')} ops/s: ${results.bind >= targets.bind ? 'met' : 'MISSED'}\n`,
);
