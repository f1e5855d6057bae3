// Response classifiers (Linkerd 1's `service.responseClassifier`): whether a response is a success,
// a failure, or a failure that may be retried, from the request method and the response status.

import type { IncomingHttpHeaders } from 'node:http';
import { headerValue } from './headers.js';

export type ResponseClass = 'success' | 'failure' | 'retryable';

/** Linkerd 1's HTTP classifier kinds (its docs give them with and without `http.`). */
export const CLASSIFIER_KINDS = [
  'io.l5d.http.nonRetryable5XX',
  'io.l5d.http.retryableRead5XX',
  'io.l5d.http.retryableIdempotent5XX',
  'io.l5d.http.allSuccessful',
  'io.l5d.nonRetryable5XX',
  'io.l5d.retryableRead5XX',
  'io.l5d.retryableIdempotent5XX',
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
 * DELETE) or when the answer carries `l5d-retryable: true` (the answering side says the request is
 * safe to resend), never for a chunked request body. allSuccessful counts everything a success.
 */
export function classifier(kind: ClassifierKind = DEFAULT_CLASSIFIER): Classifier {
  const short = kind.replace('io.l5d.http.', 'io.l5d.');
  if (short === 'io.l5d.allSuccessful') return () => 'success';
  const methods = short === 'io.l5d.retryableRead5XX' ? READ : short === 'io.l5d.retryableIdempotent5XX' ? IDEMPOTENT : undefined;
  return (req, status, headers) => {
    if (status < 500) return 'success';
    if (req.chunked) return 'failure';
    if (headerValue(headers[RETRYABLE_HEADER])?.trim().toLowerCase() === 'true') return 'retryable';
    return methods?.has(req.method.toUpperCase()) === true ? 'retryable' : 'failure';
  };
}

/** The `l5d-success-class` value of a class (fractional success, as Linkerd 1 printed it). */
export function successClass(c: ResponseClass): string {
  return c === 'success' ? '1.0' : '0.0';
}
