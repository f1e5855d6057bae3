// Worker thread body: loads one config file (YAML, zod validation, dtab files) and posts back
// the plain validated config, or its problems. See load-off-thread.ts for why.

import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, type Loaded, type LoadOptions, loadConfig } from './load.js';

export type LoadReply =
  | { readonly ok: true; readonly loaded: Loaded }
  | { readonly ok: false; readonly problems: readonly string[] }
  | { readonly ok: false; readonly failure: string };

const { file, options } = workerData as { file: string; options: LoadOptions };
let reply: LoadReply;
try {
  reply = { ok: true, loaded: await loadConfig(file, options) };
} catch (err) {
  reply = err instanceof ConfigError ? { ok: false, problems: err.problems } : { ok: false, failure: err instanceof Error ? err.message : String(err) };
}
parentPort?.postMessage(reply);
