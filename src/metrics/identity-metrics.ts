// Identity and TLS as metrics: workload claims checked (identity/events.ts CallerEvents), sources
// rewritten by the CNI (SourceEvents), certificate reloads (tls/events.ts TlsEvents), and peers
// whose certificates carry no extended key usage (read at scrape time).

import { Counter, type Registry } from 'prom-client';
import type { CallerEvents, SourceEvents } from '../identity/events.js';
import type { ClaimRefusal } from '../identity/workload-identity.js';
import type { TlsEvents } from '../tls/events.js';
import { anyPurposePeers } from '../tls/peer-certificate.js';
import { children } from './labels.js';

export class IdentityMetrics implements SourceEvents, TlsEvents {
  readonly identityClaims: Counter;
  readonly tlsReloads: Counter;
  readonly #rewritten: Counter;
  readonly #reloads: (result: string) => Counter.Internal;

  constructor(registry: Registry) {
    const registers = [registry];
    this.tlsReloads = new Counter({
      name: 'hostmesh_tls_reloads_total',
      help: 'Rotated certificate file sets seen, applied (ok) or rejected (the previous certificates stay).',
      labelNames: ['result'],
      registers,
    });
    this.identityClaims = new Counter({
      name: 'hostmesh_identity_claims_total',
      help: 'Workload claims (l5d-hostmesh-client-pod) checked at the incoming router, by result: ok, or why refused (malformed, unknown_pod, wrong_node, wrong_service_account, too_many_waiting: identity.maxClaimWaits claims already waited for the pod watch; unattested_peer is ignored, not refused).',
      labelNames: ['router', 'result'],
      registers,
    });
    new Counter({
      name: 'hostmesh_peer_certificates_any_purpose_total',
      help: 'Verified peer connections whose certificate has no extended key usage, accepted for any purpose (RFC 5280), by the role the peer played (client: a peer router calling the incoming side; server: a peer router answering the outgoing side).',
      labelNames: ['side'],
      registers,
      collect() {
        this.reset();
        this.labels('client').inc(anyPurposePeers.client);
        this.labels('server').inc(anyPurposePeers.server);
      },
    });
    this.#rewritten = new Counter({
      name: 'hostmesh_rewritten_sources_total',
      help: "Connections to the outgoing port from the pod network's gateway (a CNI rewriting pod sources through hostPort)",
      registers,
    });
    const reloads = this.tlsReloads;
    this.#reloads = children((v) => reloads.labels(v));
  }

  reloaded(result: 'ok' | 'rejected'): void {
    this.#reloads(result).inc();
  }

  rewrittenSource(): void {
    this.#rewritten.inc();
  }

  /** One router's claim checks. */
  callers(router: string): CallerEvents {
    const claims = this.identityClaims;
    const child = children((v) => claims.labels(router, v));
    return {
      claim(result: 'ok' | ClaimRefusal): void {
        child(result).inc();
      },
    };
  }
}
