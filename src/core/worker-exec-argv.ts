import { Worker, type WorkerOptions } from 'node:worker_threads';

// Short-lived worker threads (the policy parser, the config loader): one answer each, and the
// node flags they inherit: only those that load code (a TypeScript
// loader under test) and source maps. A worker gets all of process.execArgv by default, and some
// (--input-type, --inspect) make it fail or open a debugger port.

/**
 * The flags of `argv` that `worker` needs. Built, the worker is JavaScript: a TypeScript loader in
 * the flags (tap's, when the compiled tests run) would only cost each worker seconds of start-up.
 */
export function workerExecArgv(worker: URL, argv: readonly string[]): string[] {
  const needless = (flag: string): boolean => worker.pathname.endsWith('.js') && flag.includes('typescript');
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

/** Why a one-answer worker gave none: it threw (or ran out of memory), or exited first. */
export type WorkerFailure = { readonly kind: 'error'; readonly err: NodeJS.ErrnoException } | { readonly kind: 'exit'; readonly code: number };

/**
 * Runs `url` in a short-lived worker thread (the flags above) and resolves with its first message;
 * the worker is terminated then. Rejects with a WorkerFailure when it throws or exits first.
 */
export function oneAnswer<R>(url: URL, options: WorkerOptions): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const worker = new Worker(url, { ...options, execArgv: workerExecArgv(url, process.execArgv) });
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      f();
    };
    worker.once('message', (reply: R) => done(() => resolve(reply)));
    worker.once('error', (err: NodeJS.ErrnoException) => done(() => reject({ kind: 'error', err } satisfies WorkerFailure)));
    worker.once('exit', (code) => done(() => reject({ kind: 'exit', code } satisfies WorkerFailure)));
  });
}
