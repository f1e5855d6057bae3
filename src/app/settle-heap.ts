// Start-up's garbage, collected once. Starting a router (compiling its modules, reading the config,
// the first lists of the API, the node certificate's key) allocates fast enough that V8 grows its
// young generation to 8-16 MB semi-spaces, and keeps them until its memory reducer runs. That runs
// only once V8 has seen a low allocation rate over a few timer periods: measured on idle routers,
// anywhere from 20 s to more than a minute after start (docs/memory.md, session 7), so a router's
// idle RSS was 66 or 75-80 MB depending on when it was read. One memory-reducing collection a few
// seconds after the router is up returns those pages at once: the same settled figure, reached
// in seconds. It runs once per process (about 20-60 ms of the main thread), never per request, and
// only in a quiet second: a router restarted under traffic (a rolling restart) would otherwise hold
// its requests for that pause, and under traffic its young generation is in use anyway. A busy
// router looks again every SETTLE_AFTER_MS.
//
// The collection is V8's low-memory one (what the inspector's HeapProfiler.collectGarbage runs):
// unlike gc() with --expose-gc, it shrinks the young generation and releases freed pages. It goes
// through an in-process inspector session (node:inspector), which opens no port.

import type { Cancel, Clock } from '../core/clock.js';

/** How long after start-up the collection runs: past the node certificate and the first lists. */
export const SETTLE_AFTER_MS = 10_000;

/** One memory-reducing full collection; false where this Node has no inspector (built without it). */
export async function collectAndShrink(): Promise<boolean> {
  let inspector: typeof import('node:inspector');
  try {
    inspector = await import('node:inspector');
  } catch {
    return false;
  }
  const session = new inspector.Session();
  try {
    session.connect();
    await new Promise<void>((resolve, reject) => session.post('HeapProfiler.collectGarbage', (err) => (err ? reject(err) : resolve())));
    return true;
  } catch {
    return false;
  } finally {
    session.disconnect();
  }
}

/** The quiet second: the process's CPU over it must stay under this many ms (an idle router uses ~8). */
export const QUIET_CPU_MS = 20;
const QUIET_WINDOW_MS = 1000;

/** The process's CPU time so far, in ms (user + system). */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Runs `collect` once, in the first quiet second from `ms` after now (the router's start): a second
 * in which the process used under QUIET_CPU_MS of CPU; after a busy one it looks again `ms` later.
 * Reports what it did through `done` (heap bytes before and after, how long it took). The returned
 * function cancels it.
 */
export function settleAfterStart(
  clock: Clock,
  done: (r: { ok: boolean; heapBefore: number; heapAfter: number; ms: number }) => void,
  ms = SETTLE_AFTER_MS,
  collect: () => Promise<boolean> = collectAndShrink,
  cpuMs: () => number = processCpuMs,
): Cancel {
  let cancel: Cancel;
  const look = (): void => {
    const before = cpuMs();
    cancel = clock.schedule(QUIET_WINDOW_MS, () => {
      if (cpuMs() - before >= QUIET_CPU_MS) {
        cancel = clock.schedule(ms, look); // busy: serving, most likely
        return;
      }
      const heapBefore = process.memoryUsage().heapTotal;
      const t0 = performance.now();
      void collect().then((ok) => done({ ok, heapBefore, heapAfter: process.memoryUsage().heapTotal, ms: performance.now() - t0 }));
    });
  };
  cancel = clock.schedule(ms, look);
  return () => cancel();
}
