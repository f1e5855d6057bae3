// Parses, validates and compiles policy text on the calling thread: the CLI and tests. The router
// parses in a child process (policy-parse.ts), so policy.ts does not load the validator.

import { Policy } from './policy.js';
import { parsePolicyFile } from './policy-file.js';

export { parsePolicyFile } from './policy-file.js';

/** Parses, validates and compiles policy text (throws PolicyError). */
export function parsePolicy(text: string, file: string): Policy {
  return new Policy(parsePolicyFile(text, file));
}
