// The identity issuer's decision (docs/identity.md): a router proves which pod it is with its
// projected, pod-bound ServiceAccount token; TokenReview (with our audience) names the pod, the
// pod names the node, and the issuer signs only `spiffe://<trust domain>/node/<that node>` for
// the key the CSR proves the router holds. Everything else is refused with a reason, and nothing
// is signed on any path but the last.

import { createHash } from 'node:crypto';
import { nodeIdentity } from '../tls/generate.js';
import { readCsr } from './csr.js';
import { ApiUnavailable, type IdentityApi, type PodFacts } from './kube-api.js';
import { signLeaf, type IssuerMaterial } from './signer.js';

/** Why a request was refused: the label of hostmesh_identity_refused_total. */
export const REFUSALS = [
  'bad_request',
  'token_invalid',
  'wrong_audience',
  'not_pod_bound',
  'wrong_namespace',
  'wrong_service_account',
  'pod_not_found',
  'pod_uid_mismatch',
  'pod_not_running',
  'node_mismatch',
  'csr_invalid',
  'csr_signature',
  'csr_wrong_name',
  'replayed',
  'api_unavailable',
] as const;
export type Refusal = (typeof REFUSALS)[number];

const STATUS: Record<Refusal, number> = {
  bad_request: 400,
  token_invalid: 401,
  wrong_audience: 401,
  not_pod_bound: 403,
  wrong_namespace: 403,
  wrong_service_account: 403,
  pod_not_found: 403,
  pod_uid_mismatch: 403,
  pod_not_running: 403,
  node_mismatch: 403,
  csr_invalid: 400,
  csr_signature: 400,
  csr_wrong_name: 403,
  replayed: 409,
  api_unavailable: 503,
};

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** Set by newer API servers (1.32+ ServiceAccountTokenPodNodeInfo); checked when present. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface IssuerPolicy {
  /** Node identities are spiffe://<trustDomain>/node/<node>. */
  readonly trustDomain: string;
  /** The audience routers' projected tokens carry (never the API server's default). */
  readonly audience: string;
  /** The routers' namespace and service account: only their pods get node certificates. */
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Node certificate lifetime. */
  readonly lifetimeMs: number;
  /** Most (token, CSR) pairs remembered for replay refusal; the oldest go first. Default 100,000. */
  readonly maxReplayEntries?: number;
}

export type IssueResult =
  | {
      readonly ok: true;
      readonly node: string;
      readonly identity: string;
      readonly certificate: string;
      readonly chain: readonly string[];
      readonly notAfter: Date;
    }
  | { readonly ok: false; readonly status: number; readonly reason: Refusal; readonly message: string; readonly pod?: string };

function refuse(reason: Refusal, message: string, pod?: string): IssueResult {
  return { ok: false, status: STATUS[reason], reason, message, ...(pod !== undefined ? { pod } : {}) };
}

/** A token's `exp` (seconds) read without verifying: only after TokenReview accepted the token. */
function tokenExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The (token, CSR) pairs that already got a certificate, until the token expires; bounded. */
class ReplayLog {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  evicted = 0;

  constructor(max: number) {
    this.#max = max;
  }

  has(digest: string, now: number): boolean {
    const until = this.#seen.get(digest);
    if (until === undefined) return false;
    if (until <= now) {
      this.#seen.delete(digest);
      return false;
    }
    return true;
  }

  add(digest: string, until: number, now: number): void {
    // Sweep expired entries from the oldest end; then cap.
    for (const [k, v] of this.#seen) {
      if (v > now) break;
      this.#seen.delete(k);
    }
    this.#seen.set(digest, until);
    while (this.#seen.size > this.#max) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
      this.evicted++;
    }
  }

  get size(): number {
    return this.#seen.size;
  }
}

export class Issuer {
  readonly #api: IdentityApi;
  readonly #policy: IssuerPolicy;
  readonly #material: () => IssuerMaterial;
  readonly #now: () => number;
  readonly #replays: ReplayLog;

  constructor(options: { api: IdentityApi; policy: IssuerPolicy; material: () => IssuerMaterial; now?: () => number }) {
    this.#api = options.api;
    this.#policy = options.policy;
    this.#material = options.material;
    this.#now = options.now ?? Date.now;
    this.#replays = new ReplayLog(options.policy.maxReplayEntries ?? 100_000);
  }

  get replayEntries(): number {
    return this.#replays.size;
  }

  /** Decides one request: `token` from the Authorization header, `csrPem` from the body. */
  async issue(token: string, csrPem: string): Promise<IssueResult> {
    const p = this.#policy;
    if (token === '' || csrPem === '') return refuse('bad_request', 'a bearer token and a CSR are both needed');
    // Cheap checks first: a CSR that does not prove possession costs no API call.
    const csr = readCsr(csrPem);
    if (!csr.ok) return refuse(csr.reason, csr.message);
    const digest = createHash('sha256').update(token).update('\0').update(csrPem).digest('hex');
    if (this.#replays.has(digest, this.#now())) return refuse('replayed', 'this token and CSR already obtained a certificate');

    let review;
    try {
      review = await this.#api.tokenReview(token, [p.audience]);
    } catch (err) {
      return refuse('api_unavailable', err instanceof ApiUnavailable ? err.message : String(err));
    }
    if (!review.authenticated) {
      const why = review.error ?? 'not authenticated';
      return refuse(/audience/i.test(why) ? 'wrong_audience' : 'token_invalid', `token refused by TokenReview: ${why}`);
    }
    // An audience-unaware authenticator answers with no audiences: the token is then only good for
    // the API server itself, never for us (TokenReview v1, status.audiences).
    if (!review.audiences.includes(p.audience)) return refuse('wrong_audience', `the token is not for audience ${p.audience}`);
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(review.username ?? '');
    if (m === null) return refuse('wrong_service_account', `${review.username ?? '(no user)'} is not a service account`);
    const [, namespace, account] = m as unknown as [string, string, string];
    if (namespace !== p.namespace) return refuse('wrong_namespace', `service account ${namespace}/${account} is not in namespace ${p.namespace}`);
    if (account !== p.serviceAccount)
      return refuse('wrong_service_account', `service account ${namespace}/${account} is not ${p.namespace}/${p.serviceAccount}`);
    const podName = review.extra[POD_NAME_EXTRA]?.[0];
    const podUid = review.extra[POD_UID_EXTRA]?.[0];
    if (podName === undefined || podUid === undefined || podName === '' || podUid === '')
      return refuse('not_pod_bound', 'the token is not bound to a pod (use a projected serviceAccountToken volume)');
    const podRef = `${namespace}/${podName}`;

    let pod: PodFacts | undefined;
    try {
      pod = await this.#api.pod(namespace, podName);
    } catch (err) {
      return refuse('api_unavailable', err instanceof ApiUnavailable ? err.message : String(err), podRef);
    }
    if (pod === undefined) return refuse('pod_not_found', `pod ${podRef} does not exist`, podRef);
    if (pod.uid !== podUid) return refuse('pod_uid_mismatch', `pod ${podRef} is not the pod the token was bound to (uid ${podUid})`, podRef);
    if (pod.serviceAccount !== p.serviceAccount) return refuse('wrong_service_account', `pod ${podRef} runs as ${pod.serviceAccount}`, podRef);
    if (pod.phase !== 'Running' || pod.deleting || pod.nodeName === '')
      return refuse('pod_not_running', `pod ${podRef} is ${pod.deleting ? 'being deleted' : pod.phase || 'not scheduled'}`, podRef);
    const tokenNode = review.extra[NODE_NAME_EXTRA]?.[0];
    if (tokenNode !== undefined && tokenNode !== pod.nodeName)
      return refuse('node_mismatch', `the token names node ${tokenNode}, the pod runs on ${pod.nodeName}`, podRef);

    const identity = nodeIdentity(p.trustDomain, pod.nodeName);
    if (csr.uris.length !== 1 || csr.uris[0] !== identity || csr.otherNames.length > 0) {
      const asked = [...csr.uris, ...csr.otherNames].join(', ') || 'no name';
      return refuse('csr_wrong_name', `pod ${podRef} runs on node ${pod.nodeName}: only ${identity} may be asked for, not ${asked}`, podRef);
    }
    const material = this.#material();
    const now = this.#now();
    const certificate = signLeaf(material, {
      publicKey: csr.publicKey,
      uris: [identity],
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + p.lifetimeMs),
      usage: 'both',
    });
    const exp = tokenExpiry(token);
    const until = Math.min(exp ?? now + 86_400_000, now + 2 * 86_400_000);
    this.#replays.add(digest, Math.max(until, now + 60_000), now);
    const notAfter = new Date(Math.min(now + p.lifetimeMs, material.notAfter.getTime()));
    return { ok: true, node: pod.nodeName, identity, certificate, chain: [material.certPem], notAfter };
  }
}
