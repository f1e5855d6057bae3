// Builds the `hostmesh` commander program. Each subcommand lives in its own module and is
// registered here; nothing in this file does work itself.

import { Command } from 'commander';
import type { OptimizerHold } from '../app/optimizer-gate.js';
import { registerAuthz } from './authz.js';
import { registerCerts } from './certs.js';
import { registerDelegate } from './delegate.js';
import { registerDemo } from './demo.js';
import { registerDtabCheck } from './dtab-check.js';
import { registerIdentity } from './identity.js';
import { registerRun } from './run.js';

/** `hold`: TurboFan held since the process started (cli/optimizer-hold.ts); only `run` (not `run --check`) keeps it. */
export function buildProgram(hold?: OptimizerHold): Command {
  const program = new Command();
  program.name('hostmesh').description('A per-host HTTP router for Kubernetes (Linkerd 1 DaemonSet style)').version('0.1.0').showHelpAfterError();
  // Usage errors exit 2 (design.md), not commander's default 1.
  program.exitOverride((err) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(2);
  });
  // Subcommands register themselves below (they inherit the exit override), one line each.
  program.hook('preAction', (_program, action) => {
    if (action.name() !== 'run' || action.opts()['check'] === true) hold?.release();
  });
  registerRun(program, hold);
  registerDemo(program);
  registerDelegate(program);
  registerDtabCheck(program);
  registerCerts(program);
  registerAuthz(program);
  registerIdentity(program);
  return program;
}
