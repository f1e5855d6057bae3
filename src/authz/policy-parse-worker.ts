// The policy parser's child process: parses and validates one policy text away from the router's
// event loop (a 1 MiB policy takes about half a second of CPU to parse) and answers with the plain
// validated file.

import { answerOnce } from '../core/one-answer.js';
import { parsePolicyFile, PolicyError } from './policy-file.js';

export type ParseReply = { readonly ok: true; readonly file: unknown } | { readonly ok: false; readonly problems: readonly string[] };

answerOnce<{ text: string; file: string }, ParseReply>(({ text, file }) => {
  try {
    return { ok: true, file: parsePolicyFile(text, file) };
  } catch (err) {
    return {
      ok: false,
      problems: err instanceof PolicyError ? err.problems : [`${file}:1:1: the policy could not be parsed (${err instanceof Error ? err.name : 'error'})`],
    };
  }
});
