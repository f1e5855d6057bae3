#!/usr/bin/env node
// `npm test`'s runner: every compiled test file (dist/test/**/*.test.js) in its own `node`
// process, a few at a time, with tap's library doing the testing inside each file.
//
// Why not tap's own runner: it starts every test process with its process-tracking hook (a
// module loader for coverage that tap adds even with --disable-coverage), which costs each of
// the suite's ~170 files about a second of CPU to start and every child `node` a test starts
// as much again; on a 2-core CI machine that was a minute and a half of the suite's wall time.
// `npx tap <file>` (and `npm run test:coverage`) still work for one file or for coverage.
//
// Usage: node scripts/run-tests.mjs [--jobs N] [--timeout S] [file or folder ...]
//   default: every dist/test/**/*.test.js; jobs from package.json's tap.jobs (else cores + 1);
//   timeout from tap.timeout (else 120 s) per file.
// A file passes when its process exits 0 (tap's library sets the exit code from its results);
// a failing, crashing or timed-out file's whole output is printed, and the exit code is 1.
//
// Each file runs as the leader of a process group of its own, so nothing it starts can outlive
// it: a process still in the group 5 s after the file's own process exited (a router, curl or
// browser it never ended) is listed, killed, and fails the file; a file past the backstop is
// killed with its whole group, and so is every group when the runner itself is interrupted.
// A file that took over a third of its timeout is named at the end (CONTRIBUTING's rule).

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const tapConfig = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).tap ?? {};
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    jobs: { type: 'string', default: String(tapConfig.jobs ?? availableParallelism() + 1) },
    timeout: { type: 'string', default: String(tapConfig.timeout ?? 120) },
  },
});
const jobs = Math.max(1, Number(values.jobs));
const timeoutS = Number(values.timeout);

function testFiles(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true })
    .filter((f) => f.endsWith('.test.js') && !f.split(/[\\/]/).includes('node_modules'))
    .map((f) => join(path, f));
}
const files = (positionals.length > 0 ? positionals : ['dist/test'])
  .flatMap((p) => testFiles(resolve(p)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files (run `tsc -p tsconfig.json` first?)');
  process.exit(1);
}

/** Process groups of the files running now (a file's group id is its process id). */
const groups = new Set();

/** SIGKILL to every process in the group; it may be gone already. */
function killGroup(pgid) {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // no process left in it
  }
}

/** The processes in group `pgid` now, as "pid command" lines (empty when none are left). */
function groupMembers(pgid) {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if (err.code === 'ESRCH') return [];
  }
  const members = [];
  try {
    // Linux: /proc/<pid>/stat is "pid (comm) state ppid pgrp ..." (comm may hold spaces and parentheses).
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
        members.push(`${pid} ${args.slice(0, 160)}`);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return ['(processes left; /proc unavailable to list them)'];
  }
  return members;
}

/** Waits up to `ms` for group `pgid` to empty; returns who is still in it. */
async function groupLeftovers(pgid, ms) {
  const until = performance.now() + ms;
  for (;;) {
    const members = groupMembers(pgid);
    if (members.length === 0 || performance.now() >= until) return members;
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const pgid of groups) killGroup(pgid);
    console.log(`# interrupted (${signal}): killed ${groups.size} running test file(s) and their processes`);
    process.exit(1);
  });
}

/** One file in its own process (and process group); resolves with its result. */
async function runFile(file, childId) {
  const started = performance.now();
  const child = spawn(process.execPath, [file], {
    cwd: root,
    detached: true, // its own process group: see the header
    env: { ...process.env, TAP: '1', TAP_CHILD_ID: String(childId), TAP_TIMEOUT: String(timeoutS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgid = child.pid;
  if (pgid !== undefined) groups.add(pgid);
  const out = [];
  child.stdout.on('data', (c) => out.push(c));
  child.stderr.on('data', (c) => out.push(c));
  const closed = new Promise((resolve) => child.once('close', resolve));
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => resolve({ code: null, signal: err.message }));
  });
  // tap's library ends the file at TAP_TIMEOUT; this is the backstop for a process that hangs anyway.
  let hung;
  const timer = setTimeout(
    () => {
      hung = pgid === undefined ? [] : groupMembers(pgid);
      if (pgid !== undefined) killGroup(pgid);
    },
    (timeoutS + 15) * 1000,
  );
  const { code, signal } = await exited;
  // Whatever the file started and left running is still in its group (and may hold its output open).
  const left = hung === undefined && pgid !== undefined ? await groupLeftovers(pgid, 5000) : [];
  if (pgid !== undefined) killGroup(pgid);
  await closed;
  clearTimeout(timer);
  if (pgid !== undefined) groups.delete(pgid);
  const ms = performance.now() - started;
  let output = Buffer.concat(out).toString('utf8');
  const asserts = countAsserts(output);
  let why = '';
  if (hung !== undefined) {
    why = `hung: killed with its processes after ${timeoutS + 15} s`;
    output += `\n# killed (pid command):\n${hung.map((p) => `#   ${p}`).join('\n')}\n`;
  } else if (code !== 0) why = `exit ${code ?? signal}`;
  else if (left.length > 0) {
    why = `left ${left.length} process(es) running after it exited: killed`;
    output += `\n# still running 5 s after the file exited, killed (pid command):\n${left.map((p) => `#   ${p}`).join('\n')}\n`;
  } else if (asserts === 0) why = 'no test points';
  return { file, ok: why === '', why, ms, asserts, output };
}

/** The test points a file reported, its subtests' included. */
function countAsserts(output) {
  return output.match(/^\s*(?:not )?ok \d+ /gm)?.length ?? 0;
}

const started = performance.now();
const results = [];
let next = 0;
let failed = 0;
async function worker() {
  while (next < files.length) {
    const i = next++;
    const r = await runFile(files[i], i + 1);
    results.push(r);
    const name = relative(root, r.file);
    const time = `# time=${Math.round(r.ms)}ms`;
    if (r.ok) {
      console.log(`ok ${results.length} - ${name} ${time}`);
    } else {
      failed++;
      console.log(`not ok ${results.length} - ${name} (${r.why}) ${time}`);
      console.log(r.output.replace(/^/gm, '    '));
    }
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

const asserts = results.reduce((s, r) => s + r.asserts, 0);
const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5);
console.log(`1..${results.length}`);
console.log(`# files: ${results.length}, failed: ${failed}; test points: ${asserts}; jobs: ${jobs}`);
const slow = results.filter((r) => r.ms > (timeoutS * 1000) / 3);
if (slow.length > 0) {
  const names = slow.map((r) => `${relative(join(root, 'dist', 'test'), r.file)} ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`# over a third of the ${timeoutS} s timeout: ${names.join(', ')}`);
}
console.log(`# slowest: ${slowest.map((r) => `${relative(join(root, 'dist', 'test'), r.file)} ${(r.ms / 1000).toFixed(1)} s`).join(', ')}`);
console.log(`# time=${Math.round(performance.now() - started)}ms`);
process.exitCode = failed > 0 ? 1 : 0;
