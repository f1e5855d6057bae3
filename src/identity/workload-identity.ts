// Per-workload identity across the per-node hop: the outgoing router names the calling pod in a
// claim header inside the mTLS connection; the incoming router accepts the claim only when the
// sending node hosts that pod (node-attested), and derives `l5d-client-id` from its own view.

import { type Clock, systemClock } from '../core/clock.js';
import { DNS_LABEL, DNS_SUBDOMAIN, DNS_SUBDOMAIN_NAME } from '../k8s/names.js';
import { parseNodeIdentity, workloadIdentity as identityOf } from './names.js';
import type { PodDirectory, PodInfo } from './pod-directory.js';

/** The claim header: `<namespace>/<pod>; sa=<serviceaccount>`. Never delivered to an app. */
export const CLAIM_HEADER = 'l5d-hostmesh-client-pod';

/** Linkerd 2's format, with hostmesh in place of linkerd: `<sa>.<ns>.serviceaccount.identity.hostmesh.<td>`. */
export function workloadIdentity(pod: Pick<PodInfo, 'serviceAccount' | 'namespace'>, trustDomain: string): string {
  return identityOf(pod.serviceAccount, pod.namespace, trustDomain);
}

export function claimFor(pod: PodInfo): string {
  return `${pod.namespace}/${pod.name}; sa=${pod.serviceAccount}`;
}

const CLAIM = new RegExp(`^(${DNS_LABEL})/(${DNS_SUBDOMAIN}); sa=(${DNS_SUBDOMAIN})$`);

/** The node a peer router's certificate names (`spiffe://<mesh>/node/<node>`), if it names one. */
export function attestedNode(peerId: string | undefined): string | undefined {
  const node = peerId === undefined ? undefined : parseNodeIdentity(peerId);
  // A node name is a DNS subdomain (RFC 1123), as Kubernetes requires of Node names.
  return node !== undefined && DNS_SUBDOMAIN_NAME.test(node) ? node : undefined;
}

export type ClaimRefusal = 'malformed' | 'unknown_pod' | 'wrong_node' | 'wrong_service_account' | 'unattested_peer' | 'too_many_waiting';

export type ClaimResult =
  | { readonly ok: true; readonly identity: string; readonly pod: PodInfo }
  | { readonly ok: false; readonly reason: ClaimRefusal; readonly message: string };

export interface ClaimCheckOptions {
  readonly pods: PodDirectory;
  readonly trustDomain: string;
  /**
   * How long to wait for this router's pod watch to learn a pod the sender already knows (a pod's
   * first call can race the watch event here). Default 2000 ms.
   */
  readonly waitMs?: number;
  /** The clock of that wait (tests drive it; default systemClock). */
  readonly clock?: Clock;
}

/**
 * Checks a claim from the peer `peerId`: the pod must exist in this router's own view, run on the
 * node the peer's certificate names, and use the claimed service account. So a compromised node
 * can speak only for the pods it hosts.
 */
export function checkClaim(claim: string, peerId: string | undefined, o: ClaimCheckOptions): ClaimResult | Promise<ClaimResult> {
  const m = CLAIM.exec(claim);
  if (m === null) return { ok: false, reason: 'malformed', message: `${CLAIM_HEADER} is not "<namespace>/<pod>; sa=<serviceaccount>"` };
  const namespace = m[1] as string;
  const name = m[2] as string;
  const sa = m[3] as string;
  const node = attestedNode(peerId);
  if (node === undefined) {
    return { ok: false, reason: 'unattested_peer', message: `peer ${peerId ?? '(unverified)'} has no node identity, so it cannot speak for pods` };
  }
  const decide = (pod: PodInfo | undefined): ClaimResult | undefined => {
    if (pod === undefined) return undefined;
    if (pod.nodeName !== node) return { ok: false, reason: 'wrong_node', message: `pod ${namespace}/${name} does not run on node ${node}` };
    if (pod.serviceAccount !== sa)
      return { ok: false, reason: 'wrong_service_account', message: `pod ${namespace}/${name} does not use service account ${sa}` };
    return { ok: true, identity: workloadIdentity(pod, o.trustDomain), pod };
  };
  const now = decide(o.pods.byName(namespace, name));
  if (now !== undefined) return now;
  const unknown: ClaimResult = { ok: false, reason: 'unknown_pod', message: `no pod ${namespace}/${name} is known` };
  const waitMs = o.waitMs ?? 2000;
  if (waitMs <= 0) return unknown;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ClaimResult): void => {
      if (done) return;
      done = true;
      unsubscribe();
      cancel();
      resolve(r);
    };
    const unsubscribe = o.pods.onChange(() => {
      const r = decide(o.pods.byName(namespace, name));
      if (r !== undefined) finish(r);
    });
    const cancel = (o.clock ?? systemClock).schedule(waitMs, () => finish(unknown));
  });
}
