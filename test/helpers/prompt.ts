// "Normal traffic is still served promptly under attack" without a stopwatch that flakes on a busy
// machine: a bound measured against the same request just before the attack, and a timed race.

/** Runs `f`; its value and how long it took, in ms. */
export async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await f();
  return { value, ms: performance.now() - started };
}

/**
 * How long a normal request may take during an attack before a test calls it starved: ten times
 * the same request measured the same way just before the attack (a busy machine slows both), and
 * never less than `floorMs`. A caller picks `floorMs` well above machine noise and well below what
 * starvation would cost (a wait bound or deadline the request would sit out), and says so; where
 * only the time tells starvation apart, `ceilingMs` (below that cost) keeps the bound under it.
 */
export function promptBound(baselineMs: number, floorMs = 1000, ceilingMs = Number.POSITIVE_INFINITY): number {
  return Math.round(Math.min(ceilingMs, Math.max(floorMs, 10 * baselineMs)));
}

/** `p`'s value, or `late` if it has not settled after `ms`. */
export function within<T, L>(p: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<L>((resolve) => (timer = setTimeout(() => resolve(late), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
