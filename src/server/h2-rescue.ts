// The rescue point's HTTP/2 output: a router error on an h2 stream becomes, for a gRPC call, a
// trailers-only answer (200, application/grpc, grpc-status, grpc-message, l5d-err), else the same
// HTTP answer as HTTP/1 (catalog status, l5d-err, the explaining body).

import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { encodeGrpcMessage, GRPC, grpcStatusOf } from '../h2/grpc.js';
import type { Logger } from '../log.js';
import { RETRYABLE_HEADER } from '../router/stages/forward/classifier.js';
import type { RequestContext } from '../router/context.js';
import { stopRequest } from '../router/stages/forward/forward-h2.js';
import { REQUEUE_HEADER } from '../router/stages/forward/requeue.js';
import { errorAnswer } from './rescue.js';

/** What was answered: the HTTP status and, for gRPC, the status code. */
export interface H2Answer {
  readonly status: number;
  readonly grpcStatus: number | undefined;
}

/**
 * Writes the error answer on `stream`. On the inbound side an answer that reached no app carries
 * the requeue mark (as HTTP/1's markUndelivered), so the outbound router may try another node. A
 * stream whose response head already left is reset instead (the client sees the call fail). A
 * client still sending its request is then asked to stop (stopRequest: part of it may have been read).
 */
export function rescueH2(stream: ServerHttp2Stream, err: unknown, ctx: RequestContext, logger: Logger, grpc: boolean): H2Answer {
  const answer = errorAnswer(err, ctx);
  const e = answer.error;
  if (e.code === 'INTERNAL') logger.error({ err }, 'internal error on the h2 request path');
  else logger.debug({ code: e.code, msg: e.message }, 'h2 request failed');
  const grpcStatus = grpc ? grpcStatusOf(e.code) : undefined;
  if (stream.destroyed || stream.closed) return { status: 499, grpcStatus: GRPC.CANCELLED };
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return { status: 502, grpcStatus };
  }
  const marks: OutgoingHttpHeaders = {};
  if (e.retryable) marks[RETRYABLE_HEADER] = 'true';
  if (ctx.direction === 'inbound') {
    if (e.code === 'NO_ENDPOINTS') marks[REQUEUE_HEADER] = 'no-local-endpoint';
    else if (e.retryable) marks[REQUEUE_HEADER] = 'not-delivered';
  }
  const l5dErr = answer.headers.find(([k]) => k === 'l5d-err')?.[1] ?? '';
  if (grpcStatus !== undefined) {
    // gRPC's trailers-only answer (PROTOCOL-HTTP2.md): HTTP 200, the status in one HEADERS frame with END_STREAM.
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': String(grpcStatus),
        'grpc-message': encodeGrpcMessage(e.message),
        'l5d-err': l5dErr,
        ...marks,
      },
      { endStream: true },
    );
    stopRequest(stream);
    return { status: 200, grpcStatus };
  }
  const head: OutgoingHttpHeaders = { ':status': answer.status, ...marks };
  for (const [k, v] of answer.headers) head[k] = v;
  stream.respond(head);
  stream.end(answer.body);
  stopRequest(stream);
  return { status: answer.status, grpcStatus: undefined };
}
