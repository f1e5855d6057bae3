// The node flags the shipped image starts the router with (the Dockerfile's ENTRYPOINT, which the
// DaemonSet runs: it sets only args), so that every bench measures the router as deployed.
// BENCH_NODE_FLAGS='<flags>' runs others instead (BENCH_NODE_FLAGS= : Node's defaults).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths.js';

/** The flags between `node` and the script in the Dockerfile's ENTRYPOINT. */
export function imageNodeFlags(): string[] {
  const entry = /^ENTRYPOINT (.*)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
  const argv = entry === undefined ? [] : (JSON.parse(entry) as string[]);
  return argv.slice(1).filter((a) => a.startsWith('--'));
}

/** The node flags a bench starts a router with: the image's, or BENCH_NODE_FLAGS when set. */
export function routerNodeFlags(): string[] {
  const given = process.env['BENCH_NODE_FLAGS'];
  return given === undefined ? imageNodeFlags() : given.split(' ').filter(Boolean);
}
