// What a Linkerd 1 key that hostmesh accepts without enforcing loses, said in its warning (keyed
// `<object kind>.<key>` as in schema.ts UNENFORCED). Keys without an entry warn "accepted, not
// enforced" alone.

export const LOST: Readonly<Record<string, string>> = {
  'admin.tls':
    'the admin port serves plain HTTP, not TLS: probes, scrapes and curl must use http:// (it exposes no secret; state changes need the hostmesh-admin header)',
  'router.tracePropagator': 'no trace propagation or sampling: l5d-ctx-trace and B3 headers pass through untouched, no spans are started',
  'router.maxErrResponseKB': 'error responses from upstream are relayed whole (streamed), not cut at this size',
};

/** The warning for one telemetry entry whose kind hostmesh does not build, or undefined. */
export function telemeterLoss(entry: unknown): string | undefined {
  if (entry === null || typeof entry !== 'object') return undefined;
  const t = entry as Record<string, unknown>;
  if (t['kind'] === 'io.l5d.zipkin') {
    const where = typeof t['host'] === 'string' ? ` to ${t['host']}:${typeof t['port'] === 'number' ? t['port'] : 9410}` : '';
    return `io.l5d.zipkin: no spans are sent${where}: hostmesh does not trace (requests are routed as usual; l5d-ctx-trace passes through untouched)`;
  }
  if (t['kind'] === 'io.l5d.tracelog') return 'io.l5d.tracelog: no trace annotations are logged';
  return undefined;
}
