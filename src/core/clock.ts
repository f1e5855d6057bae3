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

/** Node's longest timer (2^31 - 1 ms, 24.8 days); a longer delay would fire at once. */
const MAX_NODE_TIMER_MS = 2 ** 31 - 1;

/** The real clock: Date.now and unref'd setTimeout (a delay past Node's longest timer is re-armed, not fired early). */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    let timer: NodeJS.Timeout;
    const arm = (left: number): void => {
      const step = Math.min(Math.max(0, left), MAX_NODE_TIMER_MS);
      timer = setTimeout(() => (left > step ? arm(left - step) : fn()), step);
      timer.unref();
    };
    arm(Number.isNaN(ms) ? 0 : ms);
    return () => clearTimeout(timer);
  },
};

/** Resolves after ms on the given clock (retry backoff and the like; a manual clock fires it when advanced). */
export function sleepOn(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.schedule(ms, resolve);
  });
}

/**
 * Calls fn every ms on the given clock (idle sweepers and the like) until the returned function is
 * called. Each call is scheduled when the previous one ran, so a manual clock drives it like time.
 */
export function every(clock: Clock, ms: number, fn: () => void): Cancel {
  let stopped = false;
  let cancel: Cancel = () => undefined;
  const arm = (): void => {
    cancel = clock.schedule(ms, () => {
      if (stopped) return;
      arm();
      fn();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel();
  };
}

/** A clock that reads `now` from the given function and schedules on `base` (for callers that still hand in only a `now`). */
export function clockWithNow(now: (() => number) | undefined, base: Clock = systemClock): Clock {
  return now === undefined ? base : { now, schedule: (ms, fn) => base.schedule(ms, fn) };
}
