// V8's optimizing compiler, held until the router has work for it. The first function TurboFan
// compiles maps ~3.4 MB of the node binary's compiler code into the process (resident file pages
// 44.0 -> 40.6 MB without it, docs/memory.md "Session 11"), and start-up alone makes a few
// functions hot enough (Node's path and URL helpers, resolving ~300 modules), so every router paid
// that before its first request. Now the process starts with TurboFan off (cli/optimizer-hold.ts;
// Ignition and the Sparkplug baseline compiler still run) and `hostmesh run` turns it on, for good,
// at the end of the first second in which the main thread was busy for BUSY_UTILIZATION of it
// (the second right after start-up is not looked at), or once steady lighter work has added up to
// WORK_MS of busy time: a router under load has its optimized code one to two seconds into the
// load, one at a few hundred requests a second within a minute; an idle one (kubelet probes,
// scrapes) stays ~3.4 MB smaller.
// The pages are the binary's, shared with every Node process of the node and reclaimable, but
// they count in a router's RSS.
//
// A process started with an explicit --turbofan/--opt, --no-turbofan/--no-opt, --jitless or
// --always-turbofan is left as its flags say.

import { setFlagsFromString } from 'node:v8';
import type { Cancel, Clock } from '../core/clock.js';

/** The share of a second the main thread must be busy for the compiler to be turned on at once. */
export const BUSY_UTILIZATION = 0.1;
/**
 * Steady work below that (a router at a few hundred requests a second): the main thread's busy time
 * in seconds busy for at least WORK_UTILIZATION of them adds up, and the compiler goes on once it
 * reaches WORK_MS. An idle router stays under it: over 185 s idle, 3 seconds per router were busy
 * for 1 % or more (at most 4.7 %, start-up's collection and first resyncs), ~135 ms in all.
 */
export const WORK_UTILIZATION = 0.02;
export const WORK_MS = 2000;
/** The window looked at, and the one not looked at first: the second after a router is up is busy by itself (its first lists and certificates, functions compiled on first use: 0.13-0.21 of it measured on idle routers), the next is not. */
export const WINDOW_MS = 1000;

const DECIDING_FLAGS = /^--(no-)?(opt|turbofan|jitless|always-opt|always-turbofan)(=|$)/;

/** Whether the process's own flags already decide about TurboFan (then it is left alone). */
export function flagsDecide(execArgv: readonly string[], nodeOptions = ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => DECIDING_FLAGS.test(a.replaceAll('_', '-')));
}

/** The main thread's busy time and wall time so far, in ms (the event loop's utilization). */
export interface LoopTime {
  readonly active: number;
  readonly idle: number;
}

const loopTime = (): LoopTime => {
  const u = performance.eventLoopUtilization();
  return { active: u.active, idle: u.idle };
};

/** What `holdOptimizer` holds: `watchLoad` turns the compiler on once the loop is busy. */
export interface OptimizerHold {
  /**
   * Looks at the event loop every WINDOW_MS, from WINDOW_MS after now, and turns TurboFan on at the
   * end of the first window busy for at least BUSY_UTILIZATION, or of the window that brings the
   * busy time of windows busy for at least WORK_UTILIZATION to WORK_MS; `on` is told then (once),
   * with that window's utilization. Called once the router is up: start-up's own work is not load,
   * hence the first second not looked at. Returns a function that stops looking (the compiler
   * stays as it is then).
   */
  watchLoad(clock: Clock, on: (utilization: number) => void): Cancel;
  /** Turns the compiler on now (a caller that will not watch). */
  release(): void;
}

/**
 * Turns TurboFan off for now (what the process compiles from here on runs in Ignition and
 * Sparkplug). Returns undefined, changing nothing, when the process's own flags decide.
 * `setFlags` and `sample` are V8's and the event loop's; tests pass their own.
 */
export function holdOptimizer(
  options: { execArgv?: readonly string[]; nodeOptions?: string; setFlags?: (flags: string) => void; sample?: () => LoopTime } = {},
): OptimizerHold | undefined {
  const setFlags = options.setFlags ?? setFlagsFromString;
  const sample = options.sample ?? loopTime;
  if (flagsDecide(options.execArgv ?? process.execArgv, options.nodeOptions ?? process.env['NODE_OPTIONS'] ?? '')) return undefined;
  setFlags('--no-turbofan');
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    setFlags('--turbofan');
  };
  return {
    release,
    watchLoad(clock, on) {
      let cancel: Cancel = () => undefined;
      let work = 0;
      const look = (from: LoopTime): void => {
        cancel = clock.schedule(WINDOW_MS, () => {
          if (!held) return;
          const to = sample();
          const active = to.active - from.active;
          const total = active + (to.idle - from.idle);
          const u = total > 0 ? active / total : 0;
          if (u >= WORK_UTILIZATION) work += active;
          if (u >= BUSY_UTILIZATION || work >= WORK_MS) {
            release();
            on(u);
            return;
          }
          look(to);
        });
      };
      cancel = clock.schedule(WINDOW_MS, () => look(sample()));
      return () => cancel();
    },
  };
}
