// Loads the router's config in a short-lived worker thread, so that what validating it needs
// (zod and its ~400 schema objects, the YAML parser with positions) never lives in the router:
// an ES module is never unloaded, and on the router's thread those would hold ~10 MB of heap
// for the life of the process (docs/memory.md). The config comes back as plain data.

import { Worker } from 'node:worker_threads';
import { workerExecArgv } from '../core/worker-exec-argv.js';
import { ConfigError } from './config-error.js';
import type { Loaded, LoadOptions } from './load.js';
import type { LoadReply } from './load-worker.js';

// Under the test loader this module is the .ts source and so is its sibling; built, both are .js.
const WORKER = new URL(`./load-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** As `loadConfig` (load.ts): rejects with ConfigError for a config that cannot be loaded. */
export function loadConfigOffThread(file: string, options: LoadOptions = {}): Promise<Loaded> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, {
      workerData: { file, options },
      execArgv: workerExecArgv(WORKER, process.execArgv),
      ...(options.env !== undefined ? { env: options.env } : {}),
    });
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      f();
    };
    worker.once('message', (reply: LoadReply) =>
      done(() => {
        if (reply.ok) resolve(reply.loaded);
        else reject(new ConfigError('problems' in reply ? reply.problems : [`${file}: cannot load config: ${reply.failure.split('\n')[0] ?? ''}`]));
      }),
    );
    worker.once('error', (err: Error) => done(() => reject(new ConfigError([`${file}: cannot load config: ${err.message.split('\n')[0] ?? err.name}`]))));
    worker.once('exit', (code) => done(() => reject(new ConfigError([`${file}: cannot load config: the loader exited (${code}) without an answer`]))));
  });
}
