// Parses a policy text in a worker thread, so a reload never stalls the requests the router is
// serving; the validated file comes back as plain data and is compiled here (milliseconds).

import { oneAnswer, type WorkerFailure } from '../core/worker-exec-argv.js';
import { Policy, PolicyError, type PolicyFile } from './policy.js';
import type { ParseReply } from './policy-parse-worker.js';

// Under the test loader this module is the .ts source and so is its sibling; built, both are .js.
const WORKER = new URL(`./policy-parse-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * Parses, validates and compiles `text` off the event loop. Rejects with PolicyError for a bad
 * policy, or for a worker that fails (out of its memory bound, or it could not start).
 */
/** Default heap bound of the parser worker: a 1 MiB policy needs about 110 MB (measured). */
export const DEFAULT_PARSER_MEMORY_MB = 192;

export async function parsePolicyOffThread(text: string, file: string, maxMemoryMb = DEFAULT_PARSER_MEMORY_MB): Promise<Policy> {
  let reply: ParseReply;
  try {
    // One short-lived worker per reload: reloads are rare, and an idle worker would hold ~10 MB.
    reply = await oneAnswer<ParseReply>(WORKER, { workerData: { text, file }, resourceLimits: { maxOldGenerationSizeMb: maxMemoryMb } });
  } catch (e) {
    const f = e as WorkerFailure;
    if (f.kind === 'exit') throw new PolicyError([`${file}:1:1: the policy parser exited (${f.code}) without an answer`]);
    const why =
      f.err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `it needs more than its ${maxMemoryMb} MB (parserMemoryMb)` : (f.err.message.split('\n')[0] ?? f.err.name);
    throw new PolicyError([`${file}:1:1: the policy parser failed: ${why}`]);
  }
  if (!reply.ok) throw new PolicyError(reply.problems);
  try {
    return new Policy(reply.file as PolicyFile);
  } catch (err) {
    throw new PolicyError([`${file}:1:1: the policy could not be compiled (${err instanceof Error ? err.message : 'error'})`]);
  }
}
