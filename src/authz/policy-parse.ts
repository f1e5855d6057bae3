// Parses a policy text in a child process (core/one-answer.ts), so a reload never stalls the
// requests the router is serving; the validated file comes back as plain data and is compiled
// here (milliseconds).

import { type ChildFailure, oneAnswer } from '../core/one-answer.js';
import { Policy, PolicyError, type PolicyFile } from './policy.js';
import type { ParseReply } from './policy-parse-worker.js';

// Under the test loader this module is the .ts source and so is its sibling; built, both are .js.
const WORKER = new URL(`./policy-parse-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * Parses, validates and compiles `text` off the event loop. Rejects with PolicyError for a bad
 * policy, or for a parser process that fails (out of its memory bound, or it could not start).
 */
/** Default heap bound of the parser's child process: a 1 MiB policy needs about 110 MB (measured). */
export const DEFAULT_PARSER_MEMORY_MB = 192;

export async function parsePolicyOffThread(text: string, file: string, maxMemoryMb = DEFAULT_PARSER_MEMORY_MB): Promise<Policy> {
  let reply: ParseReply;
  try {
    // One short-lived child per reload: reloads are rare, and an idle parser would hold ~10 MB.
    reply = await oneAnswer<ParseReply>(WORKER, { text, file }, { maxOldSpaceMb: maxMemoryMb });
  } catch (e) {
    const f = e as ChildFailure;
    if (f.kind === 'exit' && f.outOfMemory)
      throw new PolicyError([`${file}:1:1: the policy parser failed: it needs more than its ${maxMemoryMb} MB (parserMemoryMb)`]);
    if (f.kind === 'exit') throw new PolicyError([`${file}:1:1: the policy parser exited (${f.signal ?? f.code}) without an answer`]);
    throw new PolicyError([`${file}:1:1: the policy parser failed: ${f.err.message.split('\n')[0] ?? f.err.name}`]);
  }
  if (!reply.ok) throw new PolicyError(reply.problems);
  try {
    return new Policy(reply.file as PolicyFile);
  } catch (err) {
    throw new PolicyError([`${file}:1:1: the policy could not be compiled (${err instanceof Error ? err.message : 'error'})`]);
  }
}
