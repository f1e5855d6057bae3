// The caller of an h2 stream, in one place: the same functions the HTTP/1 listener calls (the
// admitted source on the outgoing side, the verified peer and its checked claim on the incoming
// side). When the unified caller/claim/override/authorization step lands, this is what switches to it.

import type { IncomingHttpHeaders } from 'node:http';
import type { Callers } from '../identity/caller.js';
import type { Source } from '../identity/source-guard.js';
import { CLAIM_HEADER } from '../identity/workload-identity.js';
import type { Caller, Direction } from '../router/context.js';

/**
 * The stream's caller, or undefined without a caller source (a router built without identity).
 * Incoming: a claim that fails its check throws IDENTITY_REFUSED (PERMISSION_DENIED to gRPC).
 */
export async function h2Caller(
  callers: Callers | undefined,
  direction: Direction,
  source: Source | undefined,
  peer: string | undefined,
  headers: IncomingHttpHeaders,
): Promise<Caller | undefined> {
  if (callers === undefined) return undefined;
  if (direction === 'outbound') return callers.fromSource(source);
  return callers.fromPeer(peer, headers[CLAIM_HEADER]);
}
