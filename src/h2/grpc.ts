// gRPC over HTTP/2 as a router sees it (grpc/doc/PROTOCOL-HTTP2.md, statuscodes.md): status codes,
// the grpc-timeout and grpc-message encodings, and router errors as statuses. Linkerd 1's
// io.l5d.h2.* response classifiers, which read these codes, are the router's (router/stages/forward/classifier.ts).

import type { ErrorCode } from '../errors.js';

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
    case 'HTTP_VERSION_NOT_SUPPORTED':
    case 'NOT_IMPLEMENTED':
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

/** A grpc-status field as a number (undefined when absent or not a code). */
export function grpcStatusValue(v: string | string[] | number | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const n = typeof s === 'number' ? s : /^\d{1,2}$/.test(s.trim()) ? Number(s.trim()) : Number.NaN;
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : undefined;
}
