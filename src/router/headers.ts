// Header rules for a hop (design.md "Headers"): hop-by-hop headers stripped (RFC 9110 7.6.1),
// l5d-client-id never trusted from outside, l5d-dtab carried on as l5d-ctx-dtab, Via appended.

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { HostmeshError } from '../errors.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings', // connection-specific (RFC 7540 3.2.1): it means nothing past this hop
]);

const NO_TOKENS: ReadonlySet<string> = new Set();
const KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive']);
const CLOSE: ReadonlySet<string> = new Set(['close']);

/** Names listed in Connection (also hop-by-hop). The usual one-token values cost no new set. */
export function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NO_TOKENS;
  if (typeof value === 'string' && value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive') return KEEP_ALIVE;
    if (v === 'close') return CLOSE;
  }
  const out = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const t = part.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-');
}

/**
 * Copies end-to-end headers into `out` (after what it holds already), dropping hop-by-hop ones
 * and any header in `drop`.
 */
export function endToEnd(headers: IncomingHttpHeaders, drop: ReadonlySet<string>, out: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
  const named = connectionTokens(headers['connection']);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name) || named.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Number of hops recorded in Via (comma-separated entries across header lines). */
export function viaHops(via: string | string[] | undefined): number {
  if (via === undefined) return 0;
  if (typeof via === 'string') return entriesIn(via);
  let n = 0;
  for (const line of via) n += entriesIn(line);
  return n;
}

/** Non-blank comma-separated entries of one line: a scan, no split (every request's Via is counted). */
function entriesIn(line: string): number {
  let n = 0;
  let filled = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 44) {
      if (filled) n++;
      filled = false;
    } else if (c > 127 || c < 33) {
      // Spaces and tabs are blank; any other control or non-ASCII character: the exact rule (trim's).
      if (c !== 32 && c !== 9) return line.split(',').filter((part) => part.trim() !== '').length;
    } else filled = true;
  }
  return filled ? n + 1 : n;
}

export function appendVia(via: string | string[] | undefined): string {
  const entry = '1.1 hostmesh';
  if (via === undefined || via === '') return entry;
  return `${Array.isArray(via) ? via.join(', ') : via}, ${entry}`;
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** Default bound on a request's header fields (Node keeps 2,000 and silently drops the rest). */
export const DEFAULT_MAX_HEADERS = 500;

/**
 * Whether a request has more header fields than `max`. The server keeps max + 1 of them
 * (maxHeadersCount), so "more" is visible: Node drops the surplus without a word, which once let
 * padding push the router's Via out of a forwarded request and restart the hop count.
 */
export function tooManyHeaders(rawHeaders: readonly string[], max: number): boolean {
  return rawHeaders.length / 2 > max;
}

/**
 * Why a parsed HTTP/1 head must still be refused, if it must: more than one Host field (RFC 9112
 * 3.2: 400; Node's parser keeps the first and drops the rest, so the router would route by one
 * Host while a server behind it may read another), a major version other than 1 (llhttp takes
 * `HTTP/2.0` on a request line; RFC 9110 15.6.6: 505), Transfer-Encoding on HTTP/1.0 (RFC 9112
 * 6.1: faulty framing; llhttp reads it chunked, a 1.0 server would not), or a transfer coding
 * before chunked (`gzip, chunked`: llhttp takes off the chunks only, and the router would send the
 * gzip bytes on as if they were the content; RFC 9112 6.1: 501), or a fragment in the target.
 */
export function headRefusal(req: {
  readonly rawHeaders: readonly string[];
  readonly httpVersion: string;
  readonly url?: string | undefined;
}): HostmeshError | undefined {
  const v = req.httpVersion;
  if (v !== '1.1' && v !== '1.0') {
    // A request line without a version is HTTP/0.9 to llhttp: malformed here, as it was.
    if (v.startsWith('0.')) return HostmeshError.of('BAD_REQUEST', 'parser', { reason: 'a request line without an HTTP/1 version' });
    return HostmeshError.of('HTTP_VERSION_NOT_SUPPORTED', 'version', { version: v.slice(0, 10) });
  }
  // No form of request-target has a fragment (RFC 9112 3.2); llhttp takes '#'. Policy paths end at
  // it, but an app that reads it as a path character would see another path (`/public#/../admin`).
  if (req.url?.includes('#') === true) return HostmeshError.of('BAD_REQUEST', 'fragment');
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return HostmeshError.of('BAD_REQUEST', 'duplicateHost');
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      if (v === '1.0') return HostmeshError.of('BAD_REQUEST', 'transferEncoding10');
      // When the last coding is not chunked, llhttp refuses the head itself, after this: one answer, not two.
      const codings = transferCodings(raw[i + 1] as string);
      const other = codings[codings.length - 1] === 'chunked' ? codings.find((c) => c !== 'chunked') : undefined;
      if (other !== undefined) return HostmeshError.of('NOT_IMPLEMENTED', 'transferCoding', { coding: other.slice(0, 40) });
    }
  }
  return undefined;
}

/** The transfer codings a Transfer-Encoding value lists, lowercase, in order (RFC 9112 6.1). */
export function transferCodings(value: string): string[] {
  return value
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((c) => c !== '');
}

/**
 * Header names TRACE must not echo: credentials travel under many names (X-Api-Key,
 * X-Auth-Token, session ids, client certificates), and RFC 9110 9.3.8 says to exclude them.
 */
const CREDENTIAL_LIKE = /auth|token|key|secret|passw|passphrase|pwd|session|cookie|credential|csrf|xsrf|cert|signature|jwt|bearer/i;

export function isCredentialLike(name: string): boolean {
  return CREDENTIAL_LIKE.test(name);
}

/**
 * For a request whose only Upgrade offer is h2c: its head rewritten as plain HTTP/1.1 (Upgrade,
 * HTTP2-Settings and their Connection tokens removed), to be parsed again as an ordinary
 * request. RFC 9110 7.8 lets a server ignore Upgrade, and RFC 9113 3.1 deprecates h2c; curl
 * --http2 through http_proxy then carries on in HTTP/1.1, which is what its users expect.
 * Undefined for any other upgrade (WebSocket and the like are tunnelled).
 */
export function h2cAsHttp11(req: IncomingMessage): Buffer | undefined {
  const offers = (headerValue(req.headers.upgrade) ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (offers.length === 0 || offers.some((o) => o !== 'h2c')) return undefined;
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    const value = req.rawHeaders[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'http2-settings') continue;
    if (lower === 'connection') {
      const rest = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && !/^(upgrade|http2-settings)$/i.test(s));
      if (rest.length > 0) text += `${name}: ${rest.join(', ')}\r\n`;
      continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}
