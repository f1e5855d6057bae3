// What a Linkerd 1 key that hostmesh accepts without enforcing loses, said in its warning (keyed
// `<object kind>.<key>` as in schema.ts UNENFORCED). Keys without an entry warn "accepted, not
// enforced" alone.

export const LOST: Readonly<Record<string, string>> = {
  'admin.tls':
    'the admin port serves plain HTTP, not TLS: probes, scrapes and curl must use http:// (it exposes no secret; state changes need the hostmesh-admin header)',
  'router.tracePropagator': 'no trace propagation or sampling: l5d-ctx-trace and B3 headers pass through untouched, no spans are started',
  'router.maxErrResponseKB': 'error responses from upstream are relayed whole (streamed), not cut at this size',
};
