// Builds the `hostmesh` commander program. Each subcommand lives in its own module and is
// registered here; nothing in this file does work itself.

import { Command } from 'commander';
import { registerDelegate } from './delegate.js';
import { registerDemo } from './demo.js';
import { registerRun } from './run.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('hostmesh')
    .description('A per-host HTTP router for Kubernetes (Linkerd 1 DaemonSet style)')
    .version('0.1.0')
    .showHelpAfterError();
  // Subcommands register themselves below, one line each.
  registerRun(program);
  registerDemo(program);
  registerDelegate(program);
  return program;
}
