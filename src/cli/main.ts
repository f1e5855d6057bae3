#!/usr/bin/env node
// Entry point of the `hostmesh` binary: parse argv and run the chosen subcommand.

import { buildProgram } from './program.js';

await buildProgram().parseAsync(process.argv);
