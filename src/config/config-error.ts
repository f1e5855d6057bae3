// The error of a config that cannot be loaded: every problem as one printable line
// (file:line:col, key path, what is wrong). Apart from load.ts so that loading the config in a
// worker (load-off-thread.ts) can rebuild it without loading the schemas on the router's thread.

import { printable } from './printable.js';

export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    // Problems quote keys, values and file names: escaped here, so no caller can print an ESC.
    const lines = problems.map(printable);
    super(lines.join('\n'));
    this.problems = lines;
    this.name = 'ConfigError';
  }
}
