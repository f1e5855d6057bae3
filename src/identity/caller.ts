// The caller of a request, as one stage: from the admitted source on the outgoing side (a local
// pod makes a workload claim), from the verified peer and its checked claim on the incoming side.

import type { Clock } from '../core/clock.js';
import { BoundedMap } from '../core/bounded-map.js';
import { HostmeshError } from '../errors.js';
import type { PodDirectory, PodInfo } from './pod-directory.js';
import type { Source } from './source-guard.js';
import type { CallerEvents } from './events.js';
import { CLAIM_HEADER, checkClaim, claimFor, workloadIdentity, type ClaimRefusal, type ClaimResult } from './workload-identity.js';

/**
 * Who sent a request, as the listener established it (identity/*): on the inbound side from the
 * verified peer certificate and its node-attested workload claim, on the outbound side from the
 * source address (a pod on this node, the node itself, or an allowed CIDR).
 */
export interface Caller {
  /** Verified: an mTLS peer (inbound) or a pod this node hosts (outbound). */
  readonly authenticated: boolean;
  /** The identity `l5d-client-id` carries to the app (inbound side). */
  readonly identity?: string;
  /** The calling workload, when known. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
  /** The workload claim the outbound router sends on to the peer router (identity/workload-identity). */
  readonly claim?: string;
}

export interface CallerOptions {
  readonly trustDomain: string;
  readonly pods: PodDirectory;
  /**
   * Whether this router can check claims: it has a view of the cluster's pods. Without one (no
   * pod watch), a claim cannot be checked and is ignored: the caller is the peer node.
   */
  readonly verifyClaims: boolean;
  readonly claimWaitMs?: number;
  /**
   * Claims waiting for the pod watch at once (config identity.maxClaimWaits); past it a claim
   * about a pod this router does not know is refused at once, as the outgoing port refuses
   * sources past its waiting bound. Default 1024.
   */
  readonly maxClaimWaits?: number;
  /** The clock of claim waits (tests drive it; default systemClock). */
  readonly clock?: Clock;
  /** Each claim checked, by result (a metric with a fixed label set). */
  /** Where claim checks are reported (default: nowhere). */
  readonly events?: CallerEvents;
}

const UNAUTHENTICATED: Caller = { authenticated: false };

/** identity.maxClaimWaits's default: the outgoing port's bound on sources waiting for the pod watch. */
export const DEFAULT_MAX_CLAIM_WAITS = 1024;

export class Callers {
  readonly #o: CallerOptions;
  #waiting = 0;
  /**
   * Each pod's caller, made once per version of the pod, on each side: a PodInfo is replaced, never
   * changed, when its pod changes, so a new version gets a new caller. Held weakly: a version the
   * pod directory dropped takes its callers with it. (Built per request, a caller cost two strings
   * and an object per request, and V8 had moved the object's allocation to the old generation.)
   */
  readonly #sourceCallers = new WeakMap<PodInfo, Caller>();
  readonly #claimCallers = new WeakMap<PodInfo, Caller>();
  /** A verified peer's own caller (no claim, or claims not checked), by its identity: one per node router. */
  readonly #peerCallers = new BoundedMap<string, Caller>({ name: 'peer_callers', max: 4096 });

  constructor(options: CallerOptions) {
    this.#o = options;
  }

  /** Outgoing side: a local pod speaks for itself; the node, loopback and CIDRs carry no claim. */
  fromSource(source: Source | undefined): Caller {
    if (source?.kind !== 'pod') return UNAUTHENTICATED;
    const pod = source.pod;
    let caller = this.#sourceCallers.get(pod);
    if (caller === undefined) {
      caller = Object.freeze({
        authenticated: true,
        identity: workloadIdentity(pod, this.#o.trustDomain),
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
        claim: claimFor(pod),
      });
      this.#sourceCallers.set(pod, caller);
    }
    return caller;
  }

  /**
   * Incoming side: the verified peer (a node's router) and the claim it makes for the pod that
   * called. A claim that fails the check refuses the request (403 IDENTITY_REFUSED); a peer whose
   * certificate names no node cannot speak for pods, so its claims are ignored.
   */
  fromPeer(peerId: string | undefined, claim: string | string[] | undefined): Caller | Promise<Caller> {
    const node: Caller = peerId === undefined ? UNAUTHENTICATED : this.#peerCaller(peerId);
    if (claim === undefined || peerId === undefined) return node;
    if (Array.isArray(claim)) return refuse('malformed', `more than one ${CLAIM_HEADER}`, this.#o);
    if (!this.#o.verifyClaims) return node;
    const full = this.#waiting >= (this.#o.maxClaimWaits ?? DEFAULT_MAX_CLAIM_WAITS);
    let result = checkClaim(claim, peerId, {
      pods: this.#o.pods,
      trustDomain: this.#o.trustDomain,
      ...(full ? { waitMs: 0 } : this.#o.claimWaitMs !== undefined ? { waitMs: this.#o.claimWaitMs } : {}),
      ...(this.#o.clock !== undefined ? { clock: this.#o.clock } : {}),
    });
    if (full && !(result instanceof Promise) && !result.ok && result.reason === 'unknown_pod') {
      result = { ok: false, reason: 'too_many_waiting', message: `${this.#waiting} claims already wait for the pod watch (identity.maxClaimWaits)` };
    }
    if (result instanceof Promise) {
      this.#waiting++;
      result = result.finally(() => this.#waiting--);
    }
    const settle = (r: ClaimResult): Caller => {
      if (r.ok) {
        this.#o.events?.claim('ok');
        let caller = this.#claimCallers.get(r.pod);
        if (caller === undefined) {
          caller = Object.freeze({ authenticated: true, identity: r.identity, namespace: r.pod.namespace, serviceAccount: r.pod.serviceAccount });
          this.#claimCallers.set(r.pod, caller);
        }
        return caller;
      }
      if (r.reason === 'unattested_peer') {
        this.#o.events?.claim(r.reason);
        return node;
      }
      return refuse(r.reason, r.message, this.#o);
    };
    return result instanceof Promise ? result.then(settle) : settle(result);
  }

  #peerCaller(peerId: string): Caller {
    let caller = this.#peerCallers.get(peerId);
    if (caller === undefined) {
      caller = Object.freeze({ authenticated: true, identity: peerId });
      this.#peerCallers.set(peerId, caller);
    }
    return caller;
  }

  /** Claims waiting for the pod watch now. */
  get waiting(): number {
    return this.#waiting;
  }
}

function refuse(reason: ClaimRefusal, message: string, o: CallerOptions): never {
  o.events?.claim(reason);
  throw new HostmeshError('IDENTITY_REFUSED', `workload identity refused: ${message}`);
}
