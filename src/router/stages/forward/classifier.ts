// Response classifiers (Linkerd 1's `service.responseClassifier`): whether a response is a success,
// a failure, or a failure that may be retried, from the request method and the response status;
// for h2 routers, Linkerd 1's io.l5d.h2.* kinds, the gRPC ones reading grpc-status.

import type { IncomingHttpHeaders } from 'node:http';
import { GRPC } from '../../../h2/grpc.js';
import { headerValue } from '../../headers.js';

import type { ResponseClass } from '../../events.js';

export type { ResponseClass };

/** Linkerd 1's HTTP classifier kinds (its docs give them with and without `http.`). */
export const CLASSIFIER_KINDS = [
  'io.l5d.http.nonRetryable5XX',
  'io.l5d.http.retryableRead5XX',
  'io.l5d.http.retryableIdempotent5XX',
  'io.l5d.http.retryableAll5XX',
  'io.l5d.http.allSuccessful',
  'io.l5d.nonRetryable5XX',
  'io.l5d.retryableRead5XX',
  'io.l5d.retryableIdempotent5XX',
  'io.l5d.retryableAll5XX',
  'io.l5d.allSuccessful',
] as const;

export type ClassifierKind = (typeof CLASSIFIER_KINDS)[number];

export const DEFAULT_CLASSIFIER: ClassifierKind = 'io.l5d.http.nonRetryable5XX';

/** Linkerd 1's `l5d-success-class` response header: 1.0 for a success, 0.0 for a failure. */
export const SUCCESS_CLASS_HEADER = 'l5d-success-class';
/** Linkerd 1's `l5d-retryable`: whoever answered knows the request is safe to send again. */
export const RETRYABLE_HEADER = 'l5d-retryable';

// RFC 9110 9.2.1 (safe) and 9.2.2 (idempotent): what Linkerd 1's read and idempotent kinds retry.
const READ = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const IDEMPOTENT = new Set([...READ, 'PUT', 'DELETE']);

export interface ClassifiedRequest {
  readonly method: string;
  /** The request body is chunked (no Content-Length): Linkerd 1 never retries those. */
  readonly chunked: boolean;
}

export type Classifier = (req: ClassifiedRequest, status: number, headers: IncomingHttpHeaders) => ResponseClass;

/**
 * The classifier of a kind. Below 500 is a success. A 5XX is a failure, retryable when the kind
 * allows the method (retryableRead5XX: GET HEAD OPTIONS TRACE; retryableIdempotent5XX: also PUT and
 * DELETE; retryableAll5XX: any method) or when the answer carries `l5d-retryable: true` (the answering side says the request is
 * safe to resend), never for a chunked request body. allSuccessful counts everything a success.
 */
export function classifier(kind: ClassifierKind = DEFAULT_CLASSIFIER): Classifier {
  const short = kind.replace('io.l5d.http.', 'io.l5d.');
  if (short === 'io.l5d.allSuccessful') return () => 'success';
  const all = short === 'io.l5d.retryableAll5XX';
  const methods = short === 'io.l5d.retryableRead5XX' ? READ : short === 'io.l5d.retryableIdempotent5XX' ? IDEMPOTENT : undefined;
  return (req, status, headers) => {
    if (status < 500) return 'success';
    if (req.chunked) return 'failure';
    if (all || headerValue(headers[RETRYABLE_HEADER])?.trim().toLowerCase() === 'true') return 'retryable';
    return methods?.has(req.method.toUpperCase()) === true ? 'retryable' : 'failure';
  };
}

/** The `l5d-success-class` value of a class (fractional success, as Linkerd 1 printed it). */
export function successClass(c: ResponseClass): string {
  return c === 'success' ? '1.0' : '0.0';
}

/** Linkerd 1's h2 response classifiers: gRPC ones read grpc-status, the others the HTTP status. */
export const H2_CLASSIFIER_KINDS = [
  'io.l5d.h2.grpc.default',
  'io.l5d.h2.grpc.compliant',
  'io.l5d.h2.grpc.neverRetryable',
  'io.l5d.h2.grpc.alwaysRetryable',
  'io.l5d.h2.grpc.retryableStatusCodes',
  'io.l5d.h2.nonRetryable5XX',
  'io.l5d.h2.retryableRead5XX',
  'io.l5d.h2.retryableIdempotent5XX',
  'io.l5d.h2.retryableAll5XX',
  'io.l5d.h2.allSuccessful',
] as const;

export type H2ClassifierKind = (typeof H2_CLASSIFIER_KINDS)[number];

/** What an h2 router's classifier sees of an answer: its HTTP status and, when known, its grpc-status. */
export type H2Classifier = (method: string, status: number, grpcStatus: number | undefined) => ResponseClass;

/** HTTP statuses gRPC maps to UNAVAILABLE (grpc/doc/http-grpc-status-mapping.md): compliant retries them. */
const GRPC_UNAVAILABLE_HTTP = new Set([429, 502, 503, 504]);

/**
 * The classifier of an h2 router. For gRPC kinds: OK (or each of `successStatusCodes` when given,
 * as Linkerd 1) is a success; default and compliant retry UNAVAILABLE only (nothing was processed);
 * neverRetryable retries nothing, alwaysRetryable every failure; retryableStatusCodes the codes
 * listed. An answer without grpc-status is judged by its HTTP status (a 5XX failure; compliant
 * also retries 429, 502, 503 and 504, which gRPC reads as UNAVAILABLE). Non-gRPC kinds are the
 * HTTP ones above.
 */
export function h2Classifier(kind: string | undefined, retryableStatusCodes?: readonly number[], successStatusCodes?: readonly number[]): H2Classifier {
  const k = kind ?? 'io.l5d.h2.grpc.default';
  if (!k.startsWith('io.l5d.h2.grpc.')) {
    const http = classifier(k.replace('io.l5d.h2.', 'io.l5d.') as ClassifierKind);
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
  const success: ReadonlySet<number> = new Set(successStatusCodes ?? [GRPC.OK]);
  const compliant = k === 'io.l5d.h2.grpc.compliant';
  return (_method, status, grpcStatus) => {
    if (grpcStatus === undefined) {
      if (compliant && GRPC_UNAVAILABLE_HTTP.has(status)) return 'retryable';
      return status >= 500 ? 'failure' : 'success';
    }
    if (success.has(grpcStatus)) return 'success';
    return retryable.has(grpcStatus) ? 'retryable' : 'failure';
  };
}
