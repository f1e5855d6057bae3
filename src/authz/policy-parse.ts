// Parses a policy text in a worker thread, so a reload never stalls the requests the router is
// serving; the validated file comes back as plain data and is compiled here (milliseconds).

import { Worker } from 'node:worker_threads';
import { Policy, PolicyError, type PolicyFile } from './policy.js';
import type { ParseReply } from './policy-parse-worker.js';

// Under the test loader this module is the .ts source and so is its sibling; built, both are .js.
const WORKER = new URL(`./policy-parse-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * Parses, validates and compiles `text` off the event loop. Rejects with PolicyError for a bad
 * policy, or for a worker that fails (out of its memory bound, or it could not start).
 */
export function parsePolicyOffThread(text: string, file: string): Promise<Policy> {
  return new Promise((resolve, reject) => {
    // One short-lived worker per reload: reloads are rare, and an idle worker would hold ~10 MB.
    const worker = new Worker(WORKER, { workerData: { text, file }, resourceLimits: { maxOldGenerationSizeMb: 256 } });
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      f();
    };
    worker.once('message', (reply: ParseReply) =>
      done(() => {
        if (!reply.ok) return reject(new PolicyError(reply.problems));
        try {
          resolve(new Policy(reply.file as PolicyFile));
        } catch (err) {
          reject(new PolicyError([`${file}:1:1: the policy could not be compiled (${err instanceof Error ? err.message : 'error'})`]));
        }
      }),
    );
    worker.once('error', (err) => done(() => reject(new PolicyError([`${file}:1:1: the policy parser failed (${err.message.split('\n')[0]})`]))));
    worker.once('exit', (code) => done(() => reject(new PolicyError([`${file}:1:1: the policy parser exited (${code}) without an answer`]))));
  });
}
