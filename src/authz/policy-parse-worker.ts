// Worker thread body: parses and validates one policy text off the router's event loop (a 1 MiB
// policy takes about half a second of CPU to parse) and posts back the plain validated file.

import { parentPort, workerData } from 'node:worker_threads';
import { parsePolicyFile, PolicyError } from './policy-file.js';

export type ParseReply = { readonly ok: true; readonly file: unknown } | { readonly ok: false; readonly problems: readonly string[] };

const { text, file } = workerData as { text: string; file: string };
let reply: ParseReply;
try {
  reply = { ok: true, file: parsePolicyFile(text, file) };
} catch (err) {
  reply = {
    ok: false,
    problems: err instanceof PolicyError ? err.problems : [`${file}:1:1: the policy could not be parsed (${err instanceof Error ? err.name : 'error'})`],
  };
}
parentPort?.postMessage(reply);
