// The one module main.ts imports statically, so it runs before any other module is resolved: resolving and compiling the CLI's
// ~300 modules is what makes Node's path helpers hot enough for TurboFan, and its first compile
// maps the compiler's code into the process for good (app/optimizer-gate.ts). `hostmesh run` hands
// the hold to the router, which turns the compiler on under load; every other command releases it
// before its action runs.

import { holdOptimizer } from '../app/optimizer-gate.js';

export const startupHold = holdOptimizer();
