// gRPC over HTTP/2 as a router sees it (grpc/doc/PROTOCOL-HTTP2.md, statuscodes.md): status codes,
// the grpc-timeout and grpc-message encodings, router errors as statuses, and Linkerd 1's
// io.l5d.h2.grpc.* response classifiers.

import type { ErrorCode } from '../errors.js';
import { classifier as httpClassifier, type ClassifierKind, type ResponseClass } from '../router/classifier.js';

/** The gRPC status codes (statuscodes.md). */
export const GRPC = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export const GRPC_STATUS_NAMES: readonly string[] = Object.keys(GRPC);

/** A request is gRPC when its content-type is application/grpc or application/grpc+<format>. */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  if (v === undefined) return false;
  const t = v.toLowerCase();
  return t === 'application/grpc' || t.startsWith('application/grpc+') || t.startsWith('application/grpc;');
}

/**
 * The status a router error becomes. No route, no endpoint, a refused connection and a draining
 * router are UNAVAILABLE (a client may try again, as for Linkerd 1's 502/503); deadlines are
 * DEADLINE_EXCEEDED; policy and identity refusals PERMISSION_DENIED; shedding RESOURCE_EXHAUSTED.
 */
export function grpcStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'NO_ROUTE':
    case 'NO_ENDPOINTS':
    case 'INGRESS_NOT_READY':
    case 'DELEGATION_LOOP':
    case 'BINDING_FAILED':
    case 'BINDING_OVER_BUDGET':
    case 'CONNECT_FAILED':
    case 'UPSTREAM_ERROR':
    case 'SHUTTING_DOWN':
      return GRPC.UNAVAILABLE;
    case 'TIMEOUT':
    case 'REQUEST_TIMEOUT':
      return GRPC.DEADLINE_EXCEEDED;
    case 'AUTHZ_DENIED':
    case 'IDENTITY_REFUSED':
    case 'DTAB_OVERRIDE_REFUSED':
    case 'CONNECT_REFUSED':
    case 'ADMIN_REFUSED':
      return GRPC.PERMISSION_DENIED;
    case 'SHED':
    case 'ENDPOINT_POOLS_FULL':
    case 'HEADERS_TOO_LARGE':
      return GRPC.RESOURCE_EXHAUSTED;
    case 'BAD_DTAB_HEADER':
    case 'OVERRIDE_OVER_BUDGET':
    case 'NO_HOST':
    case 'BAD_REQUEST':
      return GRPC.INVALID_ARGUMENT;
    case 'METHOD_NOT_ALLOWED':
      return GRPC.UNIMPLEMENTED;
    case 'NO_INGRESS_RULE':
      return GRPC.NOT_FOUND;
    case 'PROXY_LOOP':
      return GRPC.FAILED_PRECONDITION;
    case 'INTERNAL':
      return GRPC.INTERNAL;
  }
}

/**
 * grpc-message is percent-encoded: bytes outside 0x20-0x7E, and '%' itself, as %XX of the UTF-8
 * bytes (PROTOCOL-HTTP2.md "Status-Message").
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/** A grpc-timeout value (`TimeoutValue TimeoutUnit`, at most 8 digits) in ms; undefined when malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const m = TIMEOUT.exec(v.trim());
  if (m === null) return undefined;
  return Number(m[1]) * (TIMEOUT_UNITS[m[2] as string] as number);
}

/** The grpc-timeout for `ms` left: milliseconds while they fit in 8 digits, else seconds, then minutes. */
export function formatGrpcTimeout(ms: number): string {
  const v = Math.max(0, Math.ceil(ms));
  if (v < 100_000_000) return `${v}m`;
  const s = Math.ceil(v / 1000);
  if (s < 100_000_000) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 60))}M`;
}

/** Linkerd 1's h2 response classifiers: gRPC ones read grpc-status, the others the HTTP status. */
export const H2_CLASSIFIER_KINDS = [
  'io.l5d.h2.grpc.default',
  'io.l5d.h2.grpc.neverRetryable',
  'io.l5d.h2.grpc.alwaysRetryable',
  'io.l5d.h2.grpc.retryableStatusCodes',
  'io.l5d.h2.nonRetryable5XX',
  'io.l5d.h2.retryableRead5XX',
  'io.l5d.h2.retryableIdempotent5XX',
  'io.l5d.h2.allSuccessful',
] as const;

export type H2ClassifierKind = (typeof H2_CLASSIFIER_KINDS)[number];

/** What an h2 router's classifier sees of an answer: its HTTP status and, when known, its grpc-status. */
export type H2Classifier = (method: string, status: number, grpcStatus: number | undefined) => ResponseClass;

/**
 * The classifier of an h2 router. For gRPC kinds: OK is a success; default retries UNAVAILABLE
 * only (nothing was processed); neverRetryable retries nothing, alwaysRetryable every failure;
 * retryableStatusCodes the codes listed. An answer without grpc-status is judged by its HTTP
 * status (a 5XX failure). Non-gRPC kinds are the HTTP ones (router/classifier.ts).
 */
export function h2Classifier(kind: string | undefined, retryableStatusCodes?: readonly number[]): H2Classifier {
  const k = kind ?? 'io.l5d.h2.grpc.default';
  if (!k.startsWith('io.l5d.h2.grpc.')) {
    const http = httpClassifier(k.replace('io.l5d.h2.', 'io.l5d.') as ClassifierKind);
    return (method, status) => http({ method, chunked: false }, status, {});
  }
  const retryable: ReadonlySet<number> =
    k === 'io.l5d.h2.grpc.alwaysRetryable'
      ? new Set(Object.values(GRPC).filter((c) => c !== GRPC.OK))
      : k === 'io.l5d.h2.grpc.neverRetryable'
        ? new Set()
        : k === 'io.l5d.h2.grpc.retryableStatusCodes'
          ? new Set(retryableStatusCodes ?? [])
          : new Set([GRPC.UNAVAILABLE]);
  return (_method, status, grpcStatus) => {
    if (grpcStatus === undefined) return status >= 500 ? 'failure' : 'success';
    if (grpcStatus === GRPC.OK) return 'success';
    return retryable.has(grpcStatus) ? 'retryable' : 'failure';
  };
}

/** A grpc-status field as a number (undefined when absent or not a code). */
export function grpcStatusValue(v: string | string[] | number | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const n = typeof s === 'number' ? s : /^\d{1,2}$/.test(s.trim()) ? Number(s.trim()) : Number.NaN;
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : undefined;
}
