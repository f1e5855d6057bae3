// TurboFan held until load (src/app/optimizer-gate.ts): the hold turns the compiler off, a router
// turns it on at the end of its first busy second (the second after start-up, busy by itself, is
// not looked at) or once steady lighter work has added up, once; a process whose own flags decide is left alone; and on this Node the runtime
// toggle really stops and restarts optimization (a V8 that froze its flags would fail here, not in
// a cluster).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import t from 'tap';
import { BUSY_UTILIZATION, flagsDecide, holdOptimizer, type LoopTime, WINDOW_MS, WORK_MS, WORK_UTILIZATION } from '../../src/app/optimizer-gate.js';
import { COMPILED, ROOT } from '../helpers/paths.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A loop whose busy share per second the test sets (in whole ms of the second, so sums are exact). */
function fakeLoop(): { sample: () => LoopTime; second: (utilization: number) => void } {
  let active = 0;
  let idle = 0;
  return {
    sample: () => ({ active, idle }),
    second: (u) => {
      const busy = Math.round(WINDOW_MS * u);
      active += busy;
      idle += WINDOW_MS - busy;
    },
  };
}

function held(options: { execArgv?: string[]; nodeOptions?: string } = {}) {
  const flags: string[] = [];
  const loop = fakeLoop();
  const hold = holdOptimizer({ execArgv: [], nodeOptions: '', ...options, setFlags: (f) => flags.push(f), sample: loop.sample });
  return { flags, loop, hold };
}

t.test('the hold turns TurboFan off at once; the first busy second after the first turns it on, once', async (t) => {
  const { flags, loop, hold } = held();
  t.same(flags, ['--no-turbofan'], 'held from the start');
  const clock = new ManualClock();
  const on: number[] = [];
  hold?.watchLoad(clock, (u) => on.push(u));
  // The second right after start-up (busy by itself), then quiet seconds (an idle router: probes
  // and scrapes): the compiler stays off.
  for (const u of [0.9, 0.01, 0.005, 0.02, BUSY_UTILIZATION * 0.9]) {
    loop.second(u);
    await clock.advance(WINDOW_MS);
  }
  t.same(flags, ['--no-turbofan'], 'not on after start-up and quiet seconds');
  t.same(on, []);
  loop.second(0.4);
  await clock.advance(WINDOW_MS);
  t.same(flags, ['--no-turbofan', '--turbofan'], 'on after a busy second');
  t.equal(on.length, 1);
  t.equal(Math.round((on[0] as number) * 100), 40, 'told the last window utilization');
  t.equal(clock.pending, 0, 'and stops looking');
  hold?.release();
  t.same(flags, ['--no-turbofan', '--turbofan'], 'a release after that changes nothing');
});

t.test('steady lighter work turns it on once its busy time adds up; an idle router never gets there', async (t) => {
  const { flags, loop, hold } = held();
  const clock = new ManualClock();
  const on: number[] = [];
  hold?.watchLoad(clock, (u) => on.push(u));
  loop.second(0.5); // start-up's second, not looked at
  await clock.advance(WINDOW_MS);
  // An idle hour: probes and scrapes, 0.1-1.9 % of each second; the busiest seconds seen idle.
  for (let i = 0; i < 3600; i++) {
    loop.second(i % 600 === 0 ? 0.047 : (i % 19) / 1000);
    await clock.advance(WINDOW_MS);
  }
  t.same(flags, ['--no-turbofan'], 'an idle hour: still held');
  // A few hundred requests a second: 5 % of each second.
  const seconds = Math.ceil((WORK_MS - 6 * 47) / 50);
  for (let i = 0; i < seconds - 1; i++) {
    loop.second(0.05);
    await clock.advance(WINDOW_MS);
  }
  t.same(flags, ['--no-turbofan'], 'not yet');
  loop.second(0.05);
  await clock.advance(WINDOW_MS);
  t.same(flags, ['--no-turbofan', '--turbofan'], `on after ${seconds} seconds at 5 % (${WORK_MS} ms of work with the idle hour's busiest seconds)`);
  t.same(on, [0.05]);
});

t.test('a stopped watch stops looking and leaves the compiler as it is; release turns it on once', async (t) => {
  const { flags, loop, hold } = held();
  const clock = new ManualClock();
  const stop = hold?.watchLoad(clock, () => t.fail('no load was seen'));
  loop.second(0.9);
  await clock.advance(WINDOW_MS);
  loop.second(0.05);
  await clock.advance(WINDOW_MS);
  stop?.();
  loop.second(0.9);
  await clock.advance(5000);
  t.same(flags, ['--no-turbofan']);
  t.equal(clock.pending, 0);
  hold?.release();
  hold?.release();
  t.same(flags, ['--no-turbofan', '--turbofan']);
});

t.test('a process whose own flags decide about TurboFan is left as they say', async (t) => {
  for (const execArgv of [['--no-opt'], ['--turbofan'], ['--opt'], ['--jitless'], ['--no_turbofan'], ['--always-turbofan']]) {
    const { flags, hold } = held({ execArgv });
    t.equal(hold, undefined, execArgv.join(' '));
    t.same(flags, []);
  }
  const { hold } = held({ nodeOptions: '--max-old-space-size=100 --jitless' });
  t.equal(hold, undefined, '--jitless in NODE_OPTIONS');
  for (const execArgv of [['--max-semi-space-size=8', '--heap-growing-percent=25'], ['--optimize-for-size'], ['--no-turbo-inlining'], ['--perf-basic-prof']]) {
    t.equal(flagsDecide(execArgv), false, `${execArgv.join(' ')} does not decide`);
  }
});

t.test('property: the compiler goes on at the end of the first busy second after the first, or when work adds up, never before', async () => {
  const second = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 150 })).map((ms) => ms / WINDOW_MS);
  await fc.assert(
    fc.asyncProperty(fc.array(second, { maxLength: 80 }), async (seconds) => {
      const { flags, loop, hold } = held();
      const clock = new ManualClock();
      let onAt = -1;
      hold?.watchLoad(clock, () => (onAt = clock.now()));
      const start = clock.now();
      let expected = -1;
      let work = 0;
      for (const [i, u] of seconds.entries()) {
        loop.second(u);
        await clock.advance(WINDOW_MS);
        if (i === 0 || expected >= 0) continue;
        const busy = Math.round(WINDOW_MS * u);
        if (busy / WINDOW_MS >= WORK_UTILIZATION) work += busy;
        if (busy / WINDOW_MS >= BUSY_UTILIZATION || work >= WORK_MS) expected = start + (i + 1) * WINDOW_MS;
      }
      if (onAt !== expected) throw new Error(`on at ${onAt - start}, expected ${expected - start}`);
      if (flags.length !== (expected < 0 ? 1 : 2)) throw new Error(`flags ${flags.join(' ')}`);
    }),
  );
});

t.test('on this Node the toggle is real: a hot function stays unoptimized while held, and is optimized once released', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hostmesh-optimizer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const gate = join(ROOT, COMPILED ? 'dist/src/app/optimizer-gate.js' : 'src/app/optimizer-gate.ts');
  const probe = join(dir, 'probe.mjs');
  // V8's optimization status bits: 16 = optimized, 64 = TurboFan code.
  writeFileSync(
    probe,
    [
      `const { holdOptimizer } = await import(${JSON.stringify(pathToFileURL(gate).href)});`,
      'const hold = holdOptimizer({ execArgv: [], nodeOptions: "" });',
      'function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * 7) % 13; return s; }',
      'const run = () => { for (let i = 0; i < 20000; i++) hot(200); return (%GetOptimizationStatus(hot) & 80) !== 0; };',
      'const before = run();',
      'hold.release();',
      'const after = run();',
      'process.stdout.write(JSON.stringify({ before, after }));',
    ].join('\n'),
  );
  const loader = process.execArgv.filter((a) => a.startsWith('--import') && a.includes('typescript'));
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', ...loader, probe], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { before: false, after: true }, 'held: not optimized; released: optimized');
});
