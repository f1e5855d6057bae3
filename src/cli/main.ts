#!/usr/bin/env node
// Entry point of the `hostmesh` binary: parse argv and run the chosen subcommand.
//
// Only the optimizer hold is imported statically: ESM resolves a module's whole static import
// graph before any of it runs, and resolving the CLI's modules is what would have TurboFan
// compile first (cli/optimizer-hold.ts). The program is imported once the hold is in place.

import { startupHold } from './optimizer-hold.js';

const { buildProgram } = await import('./program.js');
await buildProgram(startupHold).parseAsync(process.argv);
