// The config loader's child process (load-off-thread.ts says why it is one): loads one config
// file (YAML, zod validation, dtab files) and answers with the plain validated config, or its
// problems.

import { answerOnce } from '../core/one-answer.js';
import { ConfigError, type Loaded, type LoadOptions, loadConfig } from './load.js';

export type LoadReply =
  | { readonly ok: true; readonly loaded: Loaded }
  | { readonly ok: false; readonly problems: readonly string[] }
  | { readonly ok: false; readonly failure: string };

answerOnce<{ file: string; options: LoadOptions }, LoadReply>(async ({ file, options }) => {
  try {
    return { ok: true, loaded: await loadConfig(file, options) };
  } catch (err) {
    return err instanceof ConfigError ? { ok: false, problems: err.problems } : { ok: false, failure: err instanceof Error ? err.message : String(err) };
  }
});
