// `hostmesh demo` (what `npm start` runs): the whole mesh on loopback; prints the ready line and
// curl lines to try, and stops cleanly on Ctrl-C.

import { InvalidArgumentError, type Command } from 'commander';
import { createLogger } from '../log.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a two-node mesh on loopback (127.0.0.2 and 127.0.0.3) with sample apps')
    .option(
      '--port-offset <n>',
      'add n to the ports 4140/4141/9990 (to run beside another demo)',
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 60000) throw new InvalidArgumentError('expected an integer 0..60000');
        return n;
      },
      0,
    )
    .action(async (opts: { portOffset: number }) => {
      const logger = createLogger({ level: process.env['HOSTMESH_LOG_LEVEL'] ?? 'warn' });
      const off = opts.portOffset;
      // Loaded on use: the demo pulls in certificate generation (node-forge), which a router
      // process (`hostmesh run`) should not carry in memory.
      const { DEFAULT_PORTS, startDemo } = await import('../demo/demo.js');
      const demo = await startDemo(logger, {
        outgoing: DEFAULT_PORTS.outgoing + off,
        incoming: DEFAULT_PORTS.incoming + off,
        admin: DEFAULT_PORTS.admin + off,
        h2Outgoing: DEFAULT_PORTS.h2Outgoing + off,
        h2Incoming: DEFAULT_PORTS.h2Incoming + off,
      });
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
