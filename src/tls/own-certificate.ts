// The router's own certificates against the purpose they serve (RFC 5280 4.2.1.12): a server
// certificate must allow serverAuth, a client certificate clientAuth; one without the extension
// may serve any purpose (accepted, with a warning), one whose extension excludes it is refused.

import { X509Certificate } from 'node:crypto';
import { ekuProblem } from './peer-certificate.js';

export type OwnCertificateVerdict =
  | { readonly kind: 'ok' }
  /** No extended key usage: RFC 5280 allows any purpose; peers that require the extension refuse it. */
  | { readonly kind: 'any-purpose' }
  | { readonly kind: 'refused'; readonly reason: string };

/** The first certificate of a PEM file (the leaf), judged for `purpose`. Unparsable: ok (the TLS context reports it). */
export function ownCertificateVerdict(pem: Buffer | string, purpose: 'client' | 'server'): OwnCertificateVerdict {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return { kind: 'ok' };
  }
  const eku = cert.keyUsage; // Node names the extended key usage OIDs `keyUsage`
  if (eku === undefined || eku.length === 0) return { kind: 'any-purpose' };
  const reason = ekuProblem(eku, purpose);
  return reason === undefined ? { kind: 'ok' } : { kind: 'refused', reason };
}

/** The warning for a certificate without extended key usage, naming its file and purpose. */
export function anyPurposeWarning(path: string, purpose: 'client' | 'server'): string {
  return `certificate ${path} has no extended key usage: accepted for TLS ${purpose} authentication (RFC 5280: any purpose), but peers that require ${purpose}Auth will refuse it`;
}
