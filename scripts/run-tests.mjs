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

/** One file in its own process; resolves with its result. */
function runFile(file, childId) {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [file], {
      cwd: root,
      env: { ...process.env, TAP: '1', TAP_CHILD_ID: String(childId), TAP_TIMEOUT: String(timeoutS) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => out.push(c));
    // tap's library ends the file at TAP_TIMEOUT; this is the backstop for a process that hangs anyway.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, (timeoutS + 15) * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const output = Buffer.concat(out).toString('utf8');
      const asserts = countAsserts(output);
      done({
        file,
        ok: code === 0 && !timedOut && asserts > 0,
        why: timedOut ? `timed out after ${timeoutS + 15} s` : code !== 0 ? `exit ${code ?? signal}` : asserts === 0 ? 'no test points' : '',
        ms: performance.now() - started,
        asserts,
        output,
      });
    });
  });
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
console.log(`# slowest: ${slowest.map((r) => `${relative(join(root, 'dist', 'test'), r.file)} ${(r.ms / 1000).toFixed(1)} s`).join(', ')}`);
console.log(`# time=${Math.round(performance.now() - started)}ms`);
process.exitCode = failed > 0 ? 1 : 0;
