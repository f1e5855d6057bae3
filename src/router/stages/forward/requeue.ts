// When a request may be sent again to another endpoint because no app received it: the mark an
// inbound router puts on its own error answers, and the upstream errors that mean "not delivered".

import type { ServerResponse } from 'node:http';
import { HostmeshError } from '../../../errors.js';
import { RETRYABLE_HEADER } from './classifier.js';
import type { RequestContext } from '../../context.js';

/**
 * The mark an inbound router puts on its own error answer to a peer router when nothing reached
 * an app (no local endpoint, the local pod unreachable, busy, draining): the outbound router may
 * send the request to another node. Apps cannot set it: a router drops it from every answer it relays.
 */
export const REQUEUE_HEADER = 'l5d-hostmesh-requeue';

/** Why a request was requeued (a metric label: this set is closed). */
import type { RequeueReason } from '../../events.js';

export type { RequeueReason };

// Errors before anything was written: the request reached no one (connect refused, no route, TLS).
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
// The connection closed under the request: it may have been delivered, so only an idempotent
// request is sent again (RFC 9110 9.2.2).
export const CLOSED_ERRORS: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** The requeue an upstream error code allows for this method, if any. */
export function requeueReason(code: string, method: string): RequeueReason | undefined {
  if (CONNECT_ERRORS.has(code)) return 'connect_failed';
  if (CLOSED_ERRORS.has(code) && IDEMPOTENT.has(method)) return 'connection_closed';
  return undefined;
}

/** The requeue a peer router's mark asks for. */
export function markReason(mark: string): RequeueReason {
  return mark === 'no-local-endpoint' ? 'no_local_endpoint' : 'not_delivered';
}

/**
 * On the inbound side (a peer router's request), marks this router's own error answer when no app
 * received the request: no endpoint on this node, the local pod unreachable, busy or draining. The
 * outbound router may then requeue it on another node. The rescue point writes the answer; fields
 * set here are merged into it.
 */
export function markUndelivered(res: ServerResponse, ctx: RequestContext, err: unknown): void {
  if (res.headersSent || !(err instanceof HostmeshError)) return;
  // Linkerd 1's informational l5d-retryable: the request reached no app, so it is safe to resend.
  if (err.retryable) res.setHeader(RETRYABLE_HEADER, 'true');
  if (ctx.direction !== 'inbound') return;
  if (err.code === 'NO_ENDPOINTS') res.setHeader(REQUEUE_HEADER, 'no-local-endpoint');
  else if (err.retryable) res.setHeader(REQUEUE_HEADER, 'not-delivered');
}
