// The two Kubernetes API calls the identity issuer makes, and nothing else: TokenReview
// (POST /apis/authentication.k8s.io/v1/tokenreviews, with spec.audiences) and one pod
// (GET /api/v1/namespaces/<ns>/pods/<name>). Wire format: the Kubernetes API reference,
// "TokenReview v1" and "Pod v1"; the pod-bound token's claims reach status.user.extra as
// authentication.kubernetes.io/pod-name and pod-uid (service account token docs).

import { Agent } from '../core/undici.js';
import type { K8sConnection } from '../k8s/connection.js';

/** What TokenReview says of a token (status), reduced to what the issuer checks. */
export interface TokenReviewStatus {
  readonly authenticated: boolean;
  readonly username?: string;
  readonly extra: Readonly<Record<string, readonly string[]>>;
  /** The audiences the token is valid for among those asked (empty when none). */
  readonly audiences: readonly string[];
  readonly error?: string;
}

/** The fields of a pod the issuer reads. */
export interface PodFacts {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  readonly nodeName: string;
  readonly phase: string;
  readonly deleting: boolean;
}

export interface IdentityApi {
  tokenReview(token: string, audiences: readonly string[]): Promise<TokenReviewStatus>;
  /** The pod, or undefined when the API says 404. */
  pod(namespace: string, name: string): Promise<PodFacts | undefined>;
}

/** The API did not answer usefully (unreachable, 5xx, 401/403 for the issuer itself): the issuer answers 503. */
export class ApiUnavailable extends Error {
  override readonly name = 'ApiUnavailable';
}

const MAX_BODY = 1 << 20;

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Reads a TokenReview answer's status as the API reference defines it. */
export function tokenReviewStatus(body: unknown): TokenReviewStatus {
  const status = (body as { status?: Record<string, unknown> } | null)?.status ?? {};
  const user = (status['user'] ?? {}) as Record<string, unknown>;
  const extraRaw = (user['extra'] ?? {}) as Record<string, unknown>;
  const extra: Record<string, string[]> = {};
  if (extraRaw !== null && typeof extraRaw === 'object') for (const [k, v] of Object.entries(extraRaw)) extra[k] = strings(v);
  return {
    authenticated: status['authenticated'] === true,
    ...(typeof user['username'] === 'string' ? { username: user['username'] } : {}),
    extra,
    audiences: strings(status['audiences']),
    ...(typeof status['error'] === 'string' && status['error'] !== '' ? { error: status['error'] } : {}),
  };
}

/** Reads the pod fields the issuer needs; a malformed object reads as empty strings (and is refused). */
export function podFacts(body: unknown): PodFacts {
  const o = (body ?? {}) as { metadata?: Record<string, unknown>; spec?: Record<string, unknown>; status?: Record<string, unknown> };
  const s = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    namespace: s(o.metadata?.['namespace']),
    name: s(o.metadata?.['name']),
    uid: s(o.metadata?.['uid']),
    serviceAccount: s(o.spec?.['serviceAccountName']),
    nodeName: s(o.spec?.['nodeName']),
    phase: s(o.status?.['phase']),
    deleting: typeof o.metadata?.['deletionTimestamp'] === 'string',
  };
}

export class KubeIdentityApi implements IdentityApi {
  readonly #connection: K8sConnection;
  readonly #agent: Agent;
  readonly #origin: string;
  readonly #prefix: string;

  constructor(connection: K8sConnection, options: { timeoutMs?: number; connections?: number } = {}) {
    this.#connection = connection;
    const url = new URL(connection.baseUrl);
    this.#origin = url.origin;
    this.#prefix = url.pathname.replace(/\/+$/, '');
    const timeout = options.timeoutMs ?? 10_000;
    this.#agent = new Agent({
      keepAliveTimeout: 30_000,
      connections: options.connections ?? 8,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(connection.tls ? { connect: { ...connection.tls } } : {}),
    });
  }

  async #call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res;
    try {
      const auth = await this.#connection.authorization?.();
      res = await this.#agent.request({
        origin: this.#origin,
        path: `${this.#prefix}${path}`,
        method,
        headers: {
          accept: 'application/json',
          ...(auth ? { authorization: auth } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new ApiUnavailable(`${method} ${path}: ${(err as Error).message}`);
    }
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of res.body) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) {
        res.body.destroy();
        throw new ApiUnavailable(`${method} ${path}: answer over ${MAX_BODY} bytes`);
      }
      chunks.push(c as Buffer);
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json };
  }

  async tokenReview(token: string, audiences: readonly string[]): Promise<TokenReviewStatus> {
    const { status, json } = await this.#call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences },
    });
    if (status !== 201 && status !== 200) throw new ApiUnavailable(`TokenReview: ${status} ${messageOf(json)}`);
    return tokenReviewStatus(json);
  }

  async pod(namespace: string, name: string): Promise<PodFacts | undefined> {
    const { status, json } = await this.#call('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`);
    if (status === 404) return undefined;
    if (status !== 200) throw new ApiUnavailable(`GET pod ${namespace}/${name}: ${status} ${messageOf(json)}`);
    return podFacts(json);
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }
}

function messageOf(json: unknown): string {
  const m = (json as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m.slice(0, 300) : '';
}
