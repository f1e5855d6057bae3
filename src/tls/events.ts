// What certificate reloads report (issue 25), implemented by the metrics module
// (metrics/identity-metrics.ts): a rotated file set applied, or rejected while the old one stays.

export interface TlsEvents {
  reloaded(result: 'ok' | 'rejected'): void;
}
