// One question, one answer, in a child process (src/core/one-answer.ts: the config loader and the
// policy parser): the answer comes back as V8-serialized plain data, the child is gone once it
// has answered, a child that exits or runs out of its heap bound without answering is a failure
// that says which, the environment given is the child's, and the flags it inherits are only the
// ones that load code.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { type ChildFailure, childExecArgv, oneAnswer } from '../../src/core/one-answer.js';
import { COMPILED, ROOT } from '../helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'hostmesh-one-answer-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const lib = pathToFileURL(join(ROOT, COMPILED ? 'dist/src/core/one-answer.js' : 'src/core/one-answer.ts')).href;

/** A child module whose answer is `body` (a function of the question). */
function child(name: string, body: string): URL {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, `import { answerOnce } from ${JSON.stringify(lib)};\n${body}\n`);
  return pathToFileURL(file);
}

const gone = async (pid: number): Promise<boolean> => {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
};

t.test('the answer comes back as plain data, and the child is gone', async (t) => {
  const echo = child('echo', 'answerOnce((q) => ({ pid: process.pid, got: q, map: new Map([["a", 1]]), big: "x".repeat(1 << 20) }));');
  const a = await oneAnswer<{ pid: number; got: unknown; map: Map<string, number>; big: string }>(echo, { file: 'p.yaml', n: [1, 2, { deep: true }] });
  t.same(a.got, { file: 'p.yaml', n: [1, 2, { deep: true }] });
  t.equal(a.map.get('a'), 1, 'V8 serialization: a Map survives, as a worker message');
  t.equal(a.big.length, 1 << 20, 'a MiB answer');
  t.not(a.pid, process.pid);
  t.ok(await gone(a.pid), 'the child has exited');
});

t.test('a child that exits without answering is an exit failure with its code', async (t) => {
  const quit = child('quit', 'answerOnce(() => process.exit(3));');
  const f = (await oneAnswer(quit, {}).then(
    () => t.fail('answered'),
    (e: ChildFailure) => e,
  )) as ChildFailure;
  t.match(f, { kind: 'exit', code: 3, outOfMemory: false });
});

t.test('a child past its heap bound is an exit failure that says so', async (t) => {
  const hog = child('hog', 'answerOnce(() => { const keep = []; for (;;) keep.push(new Array(1e5).fill({ x: keep.length })); });');
  const f = (await oneAnswer(hog, {}, { maxOldSpaceMb: 16 }).then(
    () => t.fail('answered'),
    (e: ChildFailure) => e,
  )) as ChildFailure;
  t.match(f, { kind: 'exit', outOfMemory: true });
});

t.test('a heap overrun is told from its message wherever it stands in stderr, however long what follows', async (t) => {
  // V8's own words, then a backtrace longer than any tail one would keep (a deep parser's), then
  // the abort, as V8 ends a process past its bound; and an abort that says nothing of memory.
  const longTrace = child(
    'long-trace',
    "answerOnce(() => { process.stderr.write('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\\n'); for (let i = 0; i < 2000; i++) process.stderr.write(' ' + i + ': 0x1512628 v8::internal::Runtime_NewArray(int, unsigned long*, v8::internal::Isolate*) [node]\\n'); process.abort(); });",
  );
  const other = child('other-abort', "answerOnce(() => { process.stderr.write('something else went wrong\\n'); process.abort(); });");
  const fail = async (u: URL): Promise<ChildFailure> =>
    (await oneAnswer(u, {}).then(
      () => t.fail('answered'),
      (e: ChildFailure) => e,
    )) as ChildFailure;
  t.match(await fail(longTrace), { kind: 'exit', signal: 'SIGABRT', outOfMemory: true }, 'out of memory, 140 KB of backtrace after the message');
  t.match(await fail(other), { kind: 'exit', signal: 'SIGABRT', outOfMemory: false }, 'another abort is not called a heap overrun');
});

t.test("the environment given is the child's whole environment", async (t) => {
  const env = child('env', 'answerOnce(() => ({ x: process.env.HM_X ?? null, home: process.env.HOME ?? null }));');
  t.same(await oneAnswer(env, {}, { env: { HM_X: 'given' } }), { x: 'given', home: null });
  t.same(await oneAnswer(env, {}), { x: null, home: process.env['HOME'] ?? null }, 'by default, this process environment');
});

t.test('a child inherits only the flags that load code', async (t) => {
  const js = new URL('file:///x/load-worker.js');
  const ts = new URL('file:///x/load-worker.ts');
  const argv = ['--inspect=0', '--cpu-prof', '--import', 'tsx/typescript-loader', '--enable-source-maps', '--max-semi-space-size=8', '--require=./hook.cjs'];
  t.same(childExecArgv(js, argv), ['--enable-source-maps', '--require=./hook.cjs'], 'built: no TypeScript loader, no inspector or profiler');
  t.same(childExecArgv(ts, argv), ['--import', 'tsx/typescript-loader', '--enable-source-maps', '--require=./hook.cjs'], 'source: the loader');
});
