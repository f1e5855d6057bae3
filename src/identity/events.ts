// What the identity parts report (issue 25): workload claims checked at the incoming router and
// sources rewritten by the CNI; the metrics module implements these (metrics/identity-metrics.ts).

import type { ClaimRefusal } from './workload-identity.js';

/** One router's caller checks (caller.ts). */
export interface CallerEvents {
  /** A workload claim checked at the incoming router: ok, or why it was refused. */
  claim(result: 'ok' | ClaimRefusal): void;
}

/** The pod network's source checks (snat-detector.ts). */
export interface SourceEvents {
  /** A connection to the outgoing port came from the pod network's gateway (a CNI rewriting sources). */
  rewrittenSource(): void;
}
