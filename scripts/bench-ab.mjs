// A before/after comparison of two builds of the router on a small, busy machine: runs
// `npm run bench`'s relay and hostmesh rows ROUNDS times for each build, alternating, so both see
// the same drift in load, and prints per round hostmesh's CPU per request (saturated and at
// 1,000 req/s) with its ratio to the plain relay measured seconds before, then the medians.
//
// Usage: node scripts/bench-ab.mjs OTHER_DIST [ROUNDS (4)]
//   OTHER_DIST: the other build's dist/ (e.g. from `git worktree add /tmp/old <commit>` and
//   `npx tsc -p tsconfig.json` there). Build this checkout first (npm run bench does, or tsc).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const [other, roundsArg = '4'] = process.argv.slice(2);
const otherMain = other === undefined ? '' : join(other, 'src', 'cli', 'main.js');
if (!existsSync(otherMain)) {
  console.error('usage: node scripts/bench-ab.mjs OTHER_DIST [ROUNDS]  (OTHER_DIST/src/cli/main.js must exist)');
  process.exit(2);
}
const root = join(import.meta.dirname, '..');
const rounds = Number(roundsArg);
const args = ['dist/test/bench/run.js', '--rows', 'relay,hostmesh', '--runs', '1', '--duration', '3', '--latency-seconds', '5', '--soak', '0', '--stream-mib', '1', '--idle-seconds', '1'];

/** One bench run of one build: hostmesh's and the relay's CPU per request, saturated and fixed. */
function once(main) {
  const env = { ...process.env };
  if (main === undefined) delete env.BENCH_MAIN;
  else env.BENCH_MAIN = main;
  const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8' });
  const row = (name) => {
    const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => l.startsWith(`| ${name} `));
    if (line === undefined) return undefined;
    const cells = line.split('|').map((c) => c.trim());
    return { saturated: Number(cells[4]), fixed: Number(cells[5]) };
  };
  const h = row('hostmesh');
  const relay = row('relay');
  if (h === undefined || relay === undefined) throw new Error(`bench failed:\n${r.stderr.slice(-2000)}`);
  return { h, relay };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const seen = { other: [], this: [] };
for (let i = 0; i < rounds; i++) {
  // Each round starts with the other build half of the time, so neither always goes first.
  const order = i % 2 === 0 ? ['other', 'this'] : ['this', 'other'];
  for (const build of order) {
    const m = once(build === 'other' ? otherMain : undefined);
    seen[build].push(m);
    console.log(
      `round ${i + 1} ${build}: hostmesh ${m.h.saturated} us/req saturated, ${m.h.fixed} at 1,000 req/s; / relay ${(m.h.saturated / m.relay.saturated).toFixed(2)}, ${(m.h.fixed / m.relay.fixed).toFixed(2)}`,
    );
  }
}
for (const build of ['other', 'this']) {
  const ms = seen[build];
  console.log(
    `${build === 'other' ? 'other build' : 'this build '}: medians hostmesh ${median(ms.map((m) => m.h.fixed))} us/req at 1,000 req/s (/ relay ${median(ms.map((m) => m.h.fixed / m.relay.fixed)).toFixed(2)}), saturated / relay ${median(ms.map((m) => m.h.saturated / m.relay.saturated)).toFixed(2)}`,
  );
}
