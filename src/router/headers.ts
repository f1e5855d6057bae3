// Header rules for a hop (design.md "Headers"): hop-by-hop headers stripped (RFC 9110 7.6.1),
// l5d-client-id never trusted from outside, l5d-dtab carried on as l5d-ctx-dtab, Via appended.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

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
]);

/** Names listed in Connection (also hop-by-hop). */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  if (value === undefined) return out;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const t = part.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-');
}

/** Copies end-to-end headers, dropping hop-by-hop ones and any header in `drop`. */
export function endToEnd(headers: IncomingHttpHeaders, drop: ReadonlySet<string>): OutgoingHttpHeaders {
  const named = connectionTokens(headers['connection']);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || isHopByHop(name) || named.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Number of hops recorded in Via (comma-separated entries across header lines). */
export function viaHops(via: string | string[] | undefined): number {
  if (via === undefined) return 0;
  let n = 0;
  for (const line of Array.isArray(via) ? via : [via]) for (const part of line.split(',')) if (part.trim()) n++;
  return n;
}

export function appendVia(via: string | string[] | undefined): string {
  const entry = '1.1 hostmesh';
  if (via === undefined || via === '') return entry;
  return `${Array.isArray(via) ? via.join(', ') : via}, ${entry}`;
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}
