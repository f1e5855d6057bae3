// The one clock of the process. Every timestamp and every timer in src/ comes from a Clock, so a
// test drives time (test/helpers/manual-clock.ts) and never sleeps for it. `schedule` returns a
// cancel function; a scheduled call never keeps the process alive (timers are unref'd), because a
// router's timers guard work that something else (a socket, a server) already keeps alive.

export interface Clock {
  /** Milliseconds since the epoch (Date.now() on the system clock). */
  now(): number;
  /** Calls fn once, ms from now; the returned function cancels it (idempotent). */
  schedule(ms: number, fn: () => void): Cancel;
}

export type Cancel = () => void;

/** The real clock: Date.now and unref'd setTimeout. */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** Resolves after ms on the given clock (retry backoff and the like; a manual clock fires it when advanced). */
export function sleepOn(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.schedule(ms, resolve);
  });
}
