// Label bounds shared by the metrics modules: label values that come from requests (service and
// client names) are capped, and the children of closed label sets are resolved once, not per call.

/** Distinct services per router before further ones are counted under OVERFLOW. */
export const MAX_SERVICES = 500;
export const OVERFLOW = 'overflow';
/**
 * Longest service or client name kept as its own label: names come from requests (Host, override
 * dtabs), and a row keeps its labels for the process's life, so a 6 KB name would cost its length
 * in every series of the row. Longer ones share the overflow row.
 */
export const MAX_LABEL_CHARS = 256;
/**
 * Most children one `children` keeps. Its label values are closed sets written in the code (a
 * reason, a kind), far below this; past it a value is still counted, only looked up each time.
 */
export const MAX_CHILDREN = 64;

/**
 * The children of `metric` for one router, by one more label value from a closed set: prom-client
 * hashes the label set on every `labels()` call (issue 28), so each child is resolved once.
 */
export function children<T>(make: (value: string) => T): (value: string) => T {
  const kept = new Map<string, T>();
  return (value) => {
    let c = kept.get(value);
    if (c === undefined) {
      c = make(value);
      if (kept.size < MAX_CHILDREN) kept.set(value, c);
    }
    return c;
  };
}
