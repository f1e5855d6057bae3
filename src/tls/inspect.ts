// Pure: what a PEM certificate says (subject, issuer, SANs, validity, CA or not), via node-forge,
// and the expiry verdict `hostmesh certs inspect` reports.

import forge from 'node-forge';

export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
  readonly extKeyUsage: readonly string[];
}

function dn(attrs: forge.pki.CertificateField[]): string {
  return attrs.map((a) => `${a.shortName ?? a.name}=${String(a.value)}`).join(', ');
}

/** Every certificate in a PEM bundle, in order. Throws on text that holds none or is malformed. */
export function inspectPem(pem: string): CertificateInfo[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) throw new Error('no PEM certificate found');
  return blocks.map((block) => {
    const cert = forge.pki.certificateFromPem(block);
    const san = cert.getExtension('subjectAltName') as { altNames?: { type: number; value?: string; ip?: string }[] } | null;
    const basic = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
    const eku = cert.getExtension('extKeyUsage') as Record<string, unknown> | null;
    const names = san?.altNames ?? [];
    return {
      subject: dn(cert.subject.attributes),
      issuer: dn(cert.issuer.attributes),
      serial: cert.serialNumber,
      notBefore: cert.validity.notBefore,
      notAfter: cert.validity.notAfter,
      isCa: basic?.cA === true,
      dnsNames: names.filter((n) => n.type === 2).map((n) => n.value ?? ''),
      ipAddresses: names.filter((n) => n.type === 7).map((n) => n.ip ?? ''),
      uris: names.filter((n) => n.type === 6).map((n) => n.value ?? ''),
      extKeyUsage: eku === null ? [] : ['serverAuth', 'clientAuth'].filter((k) => eku[k] === true),
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
    `  sans:      ${sans.length > 0 ? sans.join(', ') : '(none)'}`,
    `  usage:     ${info.extKeyUsage.length > 0 ? info.extKeyUsage.join(', ') : '(any)'}`,
    `  valid:     ${info.notBefore.toISOString()} .. ${info.notAfter.toISOString()}`,
    `  expiry:    ${verdict.kind}${verdict.kind === 'expired' ? ` ${-verdict.daysLeft} days ago` : `, ${verdict.daysLeft} days left`}`,
  ];
}
