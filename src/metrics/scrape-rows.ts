// Per-request numbers, published at scrape time (issue 28). prom-client's Histogram.observe and
// Counter.inc hash the label set on every call, even through a child from labels(); the request
// path instead updates plain numbers on the row it already resolved (a service's row, a client's
// row), and each family's collect() writes the rows into prom-client when /metrics (or
// getMetricsAsJSON) is read. The exposition stays prom-client's: names, HELP, TYPE, label order,
// cumulative buckets, +Inf, _sum and _count are formatted by the same code as before.

import { format } from 'node:util';
import type { Counter, Histogram } from 'prom-client';

/** A series' labels, in the family's labelNames order (the order prom-client prints them in). */
export type Labels = Record<string, string>;

/**
 * The bucket a value falls in: the index of the first upper bound it does not exceed, or
 * `bounds.length` when it exceeds them all (counted in +Inf only), as prom-client files it.
 */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && !(value <= (bounds[i] as number))) i++;
  return i;
}

/** One series of a histogram: counts per bucket (not cumulative; the last is above every bound), sum and count. */
export class HistogramRow {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Refuses what prom-client refused (not a finite number), with its message, before counting anything. */
  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${format(value)}`);
    const i = bucketIndex(this.bounds, value);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** What prom-client keeps per series (lib/counter.js, lib/histogram.js in 15.x); written only here. */
interface CounterValue {
  value: number;
  labels: Labels;
}
interface HistogramValue {
  labels: Labels;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Replaces `counter`'s series with the ones `each` adds (call it from the counter's collect()).
 * A series is written only when `each` adds it: add the rows whose count is above zero, as a
 * counter child exists only after its first inc().
 */
export function publishCounter(counter: Counter<string>, each: (add: (labels: Labels, value: number) => void) => void): void {
  counter.reset();
  const series = (counter as unknown as { hashMap: Record<string, CounterValue> }).hashMap;
  let n = 0;
  each((labels, value) => {
    series[`#${n++}`] = { value, labels };
  });
}

/** Replaces `histogram`'s series with the rows `each` adds that hold a sample (call it from collect()). */
export function publishHistogram(histogram: Histogram<string>, each: (add: (labels: Labels, row: HistogramRow) => void) => void): void {
  histogram.reset();
  const series = (histogram as unknown as { hashMap: Record<string, HistogramValue> }).hashMap;
  let n = 0;
  each((labels, row) => {
    if (row.count === 0) return;
    const bucketValues: Record<number, number> = {};
    for (let i = 0; i < row.bounds.length; i++) bucketValues[row.bounds[i] as number] = row.counts[i] as number;
    series[`#${n++}`] = { labels, bucketValues, sum: row.sum, count: row.count };
  });
}
