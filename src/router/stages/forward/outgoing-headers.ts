// The headers a hop sends on: the router's own (Host, Via, l5d-dst-*, l5d-reqid, the forwarded
// dtab, the caller's identity and deadline) first, then the client's end-to-end fields.

import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { CLAIM_HEADER } from '../../../identity/workload-identity.js';
import { DEADLINE_HEADER } from '../../deadline.js';
import { appendVia, endToEnd, isHopByHop } from '../../headers.js';

// The claim header is the router's own: a copy from a pod or an app is never passed on.
// The caller's l5d-ctx-deadline is replaced by the effective one (never later than the caller's).
const DROP = new Set([
  'host',
  'expect',
  'via',
  'l5d-dtab',
  'l5d-ctx-dtab',
  'l5d-client-id',
  'l5d-dst-service',
  'l5d-dst-client',
  'l5d-reqid',
  CLAIM_HEADER,
  DEADLINE_HEADER,
]);

export interface RouterHeaders {
  readonly host: string | undefined;
  readonly service: string;
  readonly client: string;
  /** The request's dtab override as l5d-ctx-dtab ('' when none). */
  readonly overrides: string;
  /** The verified peer identity, as l5d-client-id (inbound side). */
  readonly peerId: string | undefined;
  /** The caller's workload claim for the peer router (outbound side). */
  readonly claim: string | undefined;
}

/**
 * The router's own fields lead: a next hop that keeps only its first N fields (Node's
 * maxHeadersCount, or a router's maxHeaders) drops the client's padding, never the Via that counts
 * hops, nor the l5d-dst-* marks that tell an admin server a request came through a router.
 */
export function outgoingHeaders(h: IncomingHttpHeaders, own: RouterHeaders): OutgoingHttpHeaders {
  // `new Object()`, not `{}`: a literal's allocation site may be pretenured under load, and this
  // object lives for one request (docs/perf-notes.md, "Session 12").
  const out: OutgoingHttpHeaders = new Object() as OutgoingHttpHeaders;
  if (own.host !== undefined) out.host = own.host;
  out.via = appendVia(h.via);
  out['l5d-dst-service'] = own.service;
  out['l5d-dst-client'] = own.client;
  out['l5d-reqid'] = h['l5d-reqid'] ?? requestId();
  if (own.overrides !== '') out['l5d-ctx-dtab'] = own.overrides;
  if (own.peerId !== undefined) out['l5d-client-id'] = own.peerId;
  if (own.claim !== undefined) out[CLAIM_HEADER] = own.claim;
  return endToEnd(h, DROP, out);
}

/**
 * A chunked request body's trailer fields as a hop sends them on ([name, value, ...]): without the
 * router's own fields (a pod's `l5d-client-id` or workload claim in a trailer would reach the app
 * under the name it trusts, and an app that merges trailers into the head would believe it) and
 * without hop-by-hop ones. The lean client drops framing fields itself (h1-pool.ts).
 */
export function outgoingTrailers(raw: readonly string[]): readonly string[] {
  if (raw.length === 0) return raw;
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (DROP.has(name) || isHopByHop(name)) continue;
    out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/**
 * l5d-reqid for requests that come without one: 64 random bits as hex, cut from a pool of 512 ids
 * drawn and hex-encoded at once (a randomBytes call per request was 2% of a router's CPU; a hex
 * conversion per request still showed at 0.6%).
 */
const ID_POOL_BYTES = 4096;
const ID_CHARS = 16;
let idPool = '';
let idOffset = 0;
function requestId(): string {
  if (idOffset >= idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES).toString('hex');
    idOffset = 0;
  }
  const id = idPool.slice(idOffset, idOffset + ID_CHARS);
  idOffset += ID_CHARS;
  return id;
}
