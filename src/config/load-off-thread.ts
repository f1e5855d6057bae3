// Loads the router's config in a short-lived child process, so that what validating it needs
// (zod and its ~400 schema objects, the YAML parser with positions) never lives in the router:
// an ES module is never unloaded, and in the router those would hold ~10 MB of heap for the life
// of the process (docs/memory.md). The config comes back as plain data. A child process, not a
// worker thread: core/one-answer.ts.

import { type ChildFailure, oneAnswer } from '../core/one-answer.js';
import { ConfigError } from './config-error.js';
import type { Loaded, LoadOptions } from './load.js';
import type { LoadReply } from './load-worker.js';

// Under the test loader this module is the .ts source and so is its sibling; built, both are .js.
const WORKER = new URL(`./load-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** As `loadConfig` (load.ts): rejects with ConfigError for a config that cannot be loaded. */
export async function loadConfigOffThread(file: string, options: LoadOptions = {}): Promise<Loaded> {
  const cannot = (why: string): ConfigError => new ConfigError([`${file}: cannot load config: ${why}`]);
  let reply: LoadReply;
  try {
    reply = await oneAnswer<LoadReply>(WORKER, { file, options }, options.env !== undefined ? { env: options.env } : {});
  } catch (e) {
    const f = e as ChildFailure;
    throw cannot(f.kind === 'error' ? (f.err.message.split('\n')[0] ?? f.err.name) : `the loader exited (${f.signal ?? f.code}) without an answer`);
  }
  if (reply.ok) return reply.loaded;
  throw 'problems' in reply ? new ConfigError(reply.problems) : cannot(reply.failure.split('\n')[0] ?? '');
}
