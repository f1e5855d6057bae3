// A node's certificate signing request (PKCS#10, RFC 2986) as the issuer reads it: the signature
// must verify with the request's own public key (proof that the requester holds the private key),
// and the names it asks for are reported so the issuer can refuse any but the node's own.

import forge from 'node-forge';

/** Over this, a CSR is refused unread (a 2048-bit RSA CSR is about 1 KB of PEM). */
export const MAX_CSR_BYTES = 16 * 1024;

export type CsrReading =
  | { readonly ok: true; readonly publicKey: forge.pki.PublicKey; readonly uris: readonly string[]; readonly otherNames: readonly string[] }
  | { readonly ok: false; readonly reason: 'csr_invalid' | 'csr_signature'; readonly message: string };

export function readCsr(pem: string): CsrReading {
  if (pem.length > MAX_CSR_BYTES) return { ok: false, reason: 'csr_invalid', message: `CSR over ${MAX_CSR_BYTES} bytes` };
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(pem);
  } catch (err) {
    return { ok: false, reason: 'csr_invalid', message: `not a PKCS#10 RSA request: ${(err as Error).message}` };
  }
  let verified = false;
  try {
    verified = csr.verify();
  } catch {
    verified = false;
  }
  if (!verified) return { ok: false, reason: 'csr_signature', message: 'the CSR signature does not verify with its public key (no proof of possession)' };
  const uris: string[] = [];
  const otherNames: string[] = [];
  for (const attr of csr.subject.attributes) otherNames.push(`subject ${attr.shortName ?? attr.name ?? attr.type}=${String(attr.value)}`);
  const ext = csr.getAttribute({ name: 'extensionRequest' }) as {
    extensions?: { name?: string; altNames?: { type: number; value?: string; ip?: string }[] }[];
  } | null;
  for (const e of ext?.extensions ?? []) {
    if (e.name !== 'subjectAltName') continue;
    for (const n of e.altNames ?? []) {
      if (n.type === 6 && typeof n.value === 'string') uris.push(n.value);
      else otherNames.push(`SAN type ${n.type} ${n.ip ?? n.value ?? ''}`);
    }
  }
  if (csr.publicKey === null) return { ok: false, reason: 'csr_invalid', message: 'the CSR has no public key' };
  return { ok: true, publicKey: csr.publicKey, uris, otherNames };
}

/**
 * A CSR for `uri` signed with the given forge key: what a router sends. The subject is empty;
 * the node's identity is the one URI SAN.
 */
export function buildCsr(
  key: { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey },
  uri: string,
  extraNames: { cn?: string; dns?: string[] } = {},
): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = key.publicKey;
  csr.setSubject(extraNames.cn !== undefined ? [{ name: 'commonName', value: extraNames.cn }] : []);
  csr.setAttributes([
    {
      name: 'extensionRequest',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 6, value: uri }, ...(extraNames.dns ?? []).map((value) => ({ type: 2, value }))] }],
    },
  ]);
  csr.sign(key.privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}
