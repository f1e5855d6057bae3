// What a verified peer's certificate may be used for, and the identity it names, read from the
// certificate's DER bytes (RFC 5280) rather than from Node's printed `subjectaltname` string.

import type { PeerCertificate } from 'node:tls';

/** RFC 5280 4.2.1.12 key purposes. */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Chain-verified peers whose certificate has no extended key usage, accepted for any purpose (RFC
 * 5280 4.2.1.12), by the side that met them: `client` (a peer router's client certificate on the
 * incoming side), `server` (a peer router's server certificate on the outgoing side). Read at
 * scrape time (hostmesh_peer_certificates_any_purpose_total).
 */
export const anyPurposePeers = { client: 0, server: 0 };

/**
 * Why a chain-verified certificate cannot authenticate a TLS client (`purpose: 'client'`, the
 * incoming side) or server (the outgoing side), or undefined when it can. RFC 5280 4.2.1.12: a
 * certificate without the extended key usage extension may serve any purpose (OpenSSL-made
 * certificates, as Linkerd 1's TLS guide made them, have none), so it is accepted and counted; one
 * whose extension lists other purposes only is refused. OpenSSL accepts CA certificates as
 * leaves; the mesh requires an end-entity certificate.
 */
export function certificatePurposeProblem(cert: PeerCertificate, purpose: 'client' | 'server'): string | undefined {
  if (cert.ca) return 'the certificate is a CA certificate, not a leaf';
  const eku = cert.ext_key_usage;
  if (eku === undefined || eku.length === 0) {
    anyPurposePeers[purpose]++;
    return undefined;
  }
  return ekuProblem(eku, purpose);
}

/** Why an extended key usage list (OIDs) excludes the purpose, or undefined when it allows it. */
export function ekuProblem(eku: readonly string[], purpose: 'client' | 'server'): string | undefined {
  const want = purpose === 'client' ? CLIENT_AUTH : SERVER_AUTH;
  // anyExtendedKeyUsage (2.5.29.37.0) allows every purpose.
  if (eku.includes(want) || eku.includes('2.5.29.37.0')) return undefined;
  return `the certificate is not for TLS ${purpose} authentication (its extended key usage lacks ${purpose}Auth)`;
}

/** One DER element: its tag and where its contents lie. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** The element at `at`, or undefined when the bytes are not DER this reader handles. */
function tlv(der: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = der[at] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // multi-byte tags do not occur on this path
  let len = der[at + 1] as number;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] as number);
    start += n;
  }
  const end = start + len;
  return end <= limit ? { tag, start, end } : undefined;
}

/** The elements inside a constructed element. */
function children(der: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const c = tlv(der, at, parent.end);
    if (c === undefined) return undefined;
    out.push(c);
    at = c.end;
  }
  return out;
}

const SAN_OID = Buffer.from([0x55, 0x1d, 0x11]); // 2.5.29.17

export interface SanNames {
  /** uniformResourceIdentifier [6] entries, as raw bytes (IA5String: ASCII if well formed). */
  readonly uris: Buffer[];
  /** dNSName [2] entries, raw bytes. */
  readonly dns: Buffer[];
  /** iPAddress [7] entries: 4 (IPv4) or 16 (IPv6) bytes. */
  readonly ips?: Buffer[];
}

/**
 * The URI and DNS names of the subjectAltName extension, in certificate order. Certificate ::=
 * SEQUENCE { tbsCertificate SEQUENCE { ..., [3] EXPLICIT Extensions }, ... }; Extension ::=
 * SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
 */
export function sanNames(der: Uint8Array): SanNames | undefined {
  const cert = tlv(der, 0, der.length);
  if (cert === undefined || cert.tag !== 0x30) return undefined;
  const tbs = children(der, cert)?.[0];
  if (tbs === undefined || tbs.tag !== 0x30) return undefined;
  const fields = children(der, tbs);
  const extsWrapper = fields?.find((f) => f.tag === 0xa3);
  if (extsWrapper === undefined) return { uris: [], dns: [] };
  const exts = children(der, extsWrapper)?.[0];
  if (exts === undefined || exts.tag !== 0x30) return undefined;
  for (const ext of children(der, exts) ?? []) {
    const parts = children(der, ext);
    const oid = parts?.[0];
    const value = parts?.[parts.length - 1];
    if (oid === undefined || value === undefined || oid.tag !== 0x06 || value.tag !== 0x04) continue;
    if (!Buffer.from(der.subarray(oid.start, oid.end)).equals(SAN_OID)) continue;
    const names = tlv(der, value.start, value.end);
    if (names === undefined || names.tag !== 0x30) return undefined;
    const uris: Buffer[] = [];
    const dns: Buffer[] = [];
    const ips: Buffer[] = [];
    for (const n of children(der, names) ?? []) {
      if (n.tag === 0x86) uris.push(Buffer.from(der.subarray(n.start, n.end)));
      else if (n.tag === 0x82) dns.push(Buffer.from(der.subarray(n.start, n.end)));
      else if (n.tag === 0x87) ips.push(Buffer.from(der.subarray(n.start, n.end)));
    }
    return { uris, dns, ips };
  }
  return { uris: [], dns: [] };
}

/** Longest identity accepted (it becomes `l5d-client-id` and a dashboard entry). */
const MAX_IDENTITY = 512;

/** A URI as RFC 3986 allows: visible ASCII, no space, quote-free of controls. */
function isUri(s: string): boolean {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:[\x21-\x7e]+$/.test(s);
}

/** A DNS name (RFC 1035 labels, a leading `*.` wildcard allowed). */
function isDnsName(s: string): boolean {
  return /^(\*\.)?[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62}))*\.?$/.test(s);
}

export type PeerIdentity = { readonly kind: 'ok'; readonly id: string } | { readonly kind: 'bad'; readonly reason: string };

/**
 * The identity a certificate names (design.md): its first URI SAN, else its first DNS SAN, else
 * its CN. The chosen name must be well formed, or the peer has no identity at all: skipping to
 * another name would let a certificate choose which of its names counts.
 */
export function certificateIdentity(der: Uint8Array, commonName: string | undefined): PeerIdentity {
  const sans = sanNames(der);
  if (sans === undefined) return { kind: 'bad', reason: 'the subjectAltName extension is malformed' };
  const uri = sans.uris[0];
  if (uri !== undefined) {
    const s = uri.toString('latin1');
    return isUri(s) && s.length <= MAX_IDENTITY ? { kind: 'ok', id: s } : { kind: 'bad', reason: 'the URI SAN is not a well-formed URI' };
  }
  const dns = sans.dns[0];
  if (dns !== undefined) {
    const s = dns.toString('latin1');
    return isDnsName(s) && s.length <= 253 ? { kind: 'ok', id: s } : { kind: 'bad', reason: 'the DNS SAN is not a DNS name' };
  }
  if (commonName !== undefined && /^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$/.test(commonName)) return { kind: 'ok', id: commonName };
  return { kind: 'bad', reason: 'the certificate names no identity (no URI or DNS SAN, no usable CN)' };
}
