// What a scraper reads from a Metrics registry: one sample's value by name and labels (0 when the
// series does not exist yet), through the strict exposition parser.

import type { Metrics } from '../../src/metrics/metrics.js';
import { parsePrometheus } from '../helpers/prometheus.js';

export async function scrape(m: Metrics): Promise<(name: string, labels?: Record<string, string>) => number | undefined> {
  const samples = parsePrometheus(await m.prometheus());
  return (name, labels = {}) =>
    samples.find(
      (s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    )?.value;
}
