// Short-lived child processes (the config loader, the policy parser): one question, one answer
// each, over an IPC channel (V8's serializer, so the answer is plain data as a worker's message
// was). A child process, not a worker thread: a worker's isolate leaves ~3.8 MB in the router
// after it has exited (the file pages of its snapshot, fragments of glibc's arena), a child
// process ~1 MB in all (docs/memory.md, "Session 11"). A child costs ~50 ms more to start, once
// at start-up and once per policy reload.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The node flags of `argv` that a child running `module` needs: only those that load code (a
 * TypeScript loader under test) and source maps. A child given all of process.execArgv would
 * open an inspector port the router holds (--inspect), write its own profiles (--cpu-prof) or
 * fail (--input-type). Built, the child is JavaScript: a TypeScript loader in the flags (tap's,
 * when the compiled tests run) would only cost each child seconds of start-up.
 */
export function childExecArgv(module: URL, argv: readonly string[]): string[] {
  const needless = (flag: string): boolean => module.pathname.endsWith('.js') && flag.includes('typescript');
  const keep: string[] = [];
  const withValue = new Set(['--import', '--loader', '--experimental-loader', '--require', '-r']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (withValue.has(a) && i + 1 < argv.length) {
      const value = argv[++i] as string;
      if (!needless(value)) keep.push(a, value);
    } else if ((/^--(import|loader|experimental-loader|require)=/.test(a) && !needless(a)) || a === '--enable-source-maps') {
      keep.push(a);
    }
  }
  return keep;
}

/** Why a child gave no answer: it could not be started, or it exited first (out of its heap bound, or otherwise). */
export type ChildFailure =
  | { readonly kind: 'error'; readonly err: NodeJS.ErrnoException }
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly outOfMemory: boolean };

/** What V8 prints when a heap bound is reached ("JavaScript heap out of memory", "Fatal process out of memory: Zone", ...), before its last collections and a native backtrace, then SIGABRT. */
const OUT_OF_MEMORY = /out of memory|Reached heap limit/;

/**
 * Runs `module` (which calls `answerOnce`) in a child process, sends it `question` and resolves
 * with its answer; the child is gone then. Rejects with a ChildFailure. `env`: the child's whole
 * environment (default: this process's); `maxOldSpaceMb`: its V8 old generation bound.
 */
export function oneAnswer<R>(module: URL, question: unknown, options: { env?: NodeJS.ProcessEnv; maxOldSpaceMb?: number } = {}): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const execArgv = childExecArgv(module, process.execArgv);
    if (options.maxOldSpaceMb !== undefined) execArgv.push(`--max-old-space-size=${options.maxOldSpaceMb}`);
    const child = fork(fileURLToPath(module), [], {
      execArgv,
      ...(options.env !== undefined ? { env: options.env } : {}),
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    // stderr is scanned as it comes, never kept: only the end of a marker split across two reads is.
    let outOfMemory = false;
    let carry = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (outOfMemory) return;
      const text = carry + d.toString('latin1');
      outOfMemory = OUT_OF_MEMORY.test(text);
      carry = text.slice(-32);
    });
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      f();
    };
    child.once('message', (answer: R) => done(() => resolve(answer)));
    child.once('error', (err: NodeJS.ErrnoException) => done(() => reject({ kind: 'error', err } satisfies ChildFailure)));
    // 'close', not 'exit': it comes once stderr has been read to its end, and after every IPC
    // message, so neither a heap overrun's message nor an answer can lose the race.
    child.once('close', (code, signal) => done(() => reject({ kind: 'exit', code, signal, outOfMemory } satisfies ChildFailure)));
    child.send(question as object, (err) => {
      if (err) done(() => reject({ kind: 'error', err } satisfies ChildFailure));
    });
  });
}

/**
 * The child's side: waits for the one question, sends `compute`'s answer and exits. A parent
 * that goes away first (its channel closes) ends the child too.
 */
export function answerOnce<Q, R>(compute: (question: Q) => R | Promise<R>): void {
  process.once('disconnect', () => process.exit(0));
  process.once('message', (question: Q) => {
    void Promise.resolve(question)
      .then(compute)
      .then((answer) => process.send?.(answer, () => process.exit(0)));
  });
}
