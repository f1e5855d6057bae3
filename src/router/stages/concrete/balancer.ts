// Power-of-two-choices least-loaded balancing (Finagle's default): pick two endpoints at random
// and send to the one with fewer requests in flight. Pure: load and randomness are injected.

export function pickP2C<T>(items: readonly T[], load: (item: T) => number, random: () => number = Math.random): T | undefined {
  const n = items.length;
  if (n === 0) return undefined;
  if (n === 1) return items[0];
  const a = Math.floor(random() * n);
  let b = Math.floor(random() * (n - 1));
  if (b >= a) b++;
  const x = items[a] as T;
  const y = items[b] as T;
  return load(y) < load(x) ? y : x;
}

/** Picks a member index by weight (union members choose a subtree per request). */
export function pickWeighted(weights: readonly number[], random: () => number = Math.random): number {
  let total = 0;
  for (const w of weights) total += w;
  if (total <= 0) return 0;
  let r = random() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i] as number;
    if (r < 0) return i;
  }
  return weights.length - 1;
}

/**
 * The endpoints the balancer may choose: those `usable` says (failure accrual skips dead ones).
 * When none is usable, all of them, as Finagle's balancer (Linkerd 1) does: it picks a dead node
 * anyway rather than fail, so one endpoint that recovered early still gets traffic.
 */
export function skipDead<T>(items: readonly T[], usable: (item: T) => boolean): readonly T[] {
  let out: T[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as T;
    if (usable(item)) {
      out?.push(item);
    } else if (out === undefined) {
      out = items.slice(0, i);
    }
  }
  if (out === undefined) return items; // all usable: no copy on the common path
  return out.length > 0 ? out : items;
}
