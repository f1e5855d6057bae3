// `hostmesh demo` (what `npm start` runs): the whole mesh on loopback; prints the ready line and
// curl lines to try, and stops cleanly on Ctrl-C.

import type { Command } from 'commander';
import { createLogger } from '../log.js';
import { startDemo } from '../demo/demo.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a two-node mesh on loopback (127.0.0.2 and 127.0.0.3) with sample apps')
    .action(async () => {
      const logger = createLogger({ level: process.env['HOSTMESH_LOG_LEVEL'] ?? 'warn' });
      const demo = await startDemo(logger);
      process.stdout.write('hostmesh demo ready\n\nTry:\n');
      for (const line of demo.curlLines) process.stdout.write(`  ${line}\n`);
      process.stdout.write('\nCtrl-C stops the demo.\n');
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        void demo.close().then(() => {
          process.stdout.write('hostmesh demo stopped\n');
          process.exit(0);
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
