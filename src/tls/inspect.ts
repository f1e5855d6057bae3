// Pure: what a PEM certificate says (subject, issuer, SANs, validity, CA or not, key type), read
// with node:crypto's X509Certificate (RSA, ECDSA P-256/P-384 as cert-manager issues, Ed25519;
// node-forge parses RSA keys only), and the expiry verdict `hostmesh certs inspect` reports.

import { X509Certificate } from 'node:crypto';
import { sanNames } from './peer-certificate.js';

export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  /** The public key: `RSA 2048`, `EC P-256`, `Ed25519`, ... */
  readonly key: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
  /** Extended key usage by name (serverAuth, clientAuth) or OID; empty when the extension is absent (any purpose). */
  readonly extKeyUsage: readonly string[];
}

const EKU_NAMES: Readonly<Record<string, string>> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};

/** NIST names of the curves Node reports by their OpenSSL names. */
const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

function keyDescription(cert: X509Certificate): string {
  const key = cert.publicKey;
  const type = key.asymmetricKeyType ?? 'unknown';
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') return `${type.toUpperCase()} ${d.modulusLength ?? '?'}`;
  if (type === 'ec') return `EC ${CURVES[d.namedCurve ?? ''] ?? d.namedCurve ?? '?'}`;
  if (type === 'ed25519') return 'Ed25519';
  if (type === 'ed448') return 'Ed448';
  return type;
}

function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1); // compressed form
  }
  return `(${bytes.length} bytes: ${bytes.toString('hex')})`;
}

/** Every certificate in a PEM bundle, in order. Throws on text that holds none or is malformed. */
export function inspectPem(pem: string): CertificateInfo[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) throw new Error('no PEM certificate found');
  return blocks.map((block) => {
    const cert = new X509Certificate(block);
    const sans = sanNames(cert.raw);
    return {
      subject: cert.subject.split('\n').join(', '),
      issuer: cert.issuer.split('\n').join(', '),
      serial: cert.serialNumber.toLowerCase(),
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
      isCa: cert.ca,
      key: keyDescription(cert),
      dnsNames: (sans?.dns ?? []).map((b) => b.toString('latin1')),
      ipAddresses: (sans?.ips ?? []).map(ipText),
      uris: (sans?.uris ?? []).map((b) => b.toString('latin1')),
      extKeyUsage: (cert.keyUsage ?? []).map((oid) => EKU_NAMES[oid] ?? oid),
    };
  });
}

export type ExpiryVerdict = { readonly kind: 'ok' | 'expiring' | 'expired' | 'not-yet-valid'; readonly daysLeft: number };

export function expiry(info: CertificateInfo, now: Date, warnDays: number): ExpiryVerdict {
  const daysLeft = Math.floor((info.notAfter.getTime() - now.getTime()) / 86_400_000);
  if (now < info.notBefore) return { kind: 'not-yet-valid', daysLeft };
  if (now > info.notAfter) return { kind: 'expired', daysLeft };
  return { kind: daysLeft < warnDays ? 'expiring' : 'ok', daysLeft };
}

export function describe(info: CertificateInfo, verdict: ExpiryVerdict): string[] {
  const sans = [...info.dnsNames.map((d) => `DNS:${d}`), ...info.ipAddresses.map((i) => `IP:${i}`), ...info.uris.map((u) => `URI:${u}`)];
  return [
    `  subject:   ${info.subject}`,
    `  issuer:    ${info.issuer}`,
    `  ca:        ${info.isCa ? 'yes' : 'no'}`,
    `  algorithm: ${info.key}`,
    `  sans:      ${sans.length > 0 ? sans.join(', ') : '(none)'}`,
    `  usage:     ${info.extKeyUsage.length > 0 ? info.extKeyUsage.join(', ') : '(any)'}`,
    `  valid:     ${info.notBefore.toISOString()} .. ${info.notAfter.toISOString()}`,
    `  expiry:    ${verdict.kind}${verdict.kind === 'expired' ? ` ${-verdict.daysLeft} days ago` : `, ${verdict.daysLeft} days left`}`,
  ];
}
