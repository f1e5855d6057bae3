// Signing node certificates: node-forge builds the X.509 (To Be Signed part), Node's crypto signs
// it with the issuer's key (native RSA, about 1 ms, where forge's pure-JS RSA takes tens of ms;
// test/bench/identity.ts measures it). The issuer's key must be RSA: forge writes only
// sha256WithRSAEncryption as a certificate's signature algorithm. The trust anchor above it may
// be any algorithm OpenSSL verifies (cert-manager's ECDSA anchors work).

import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { serialHex } from '../tls/generate.js';

export interface IssuerMaterial {
  /** The issuer (intermediate CA) certificate, PEM: what a node's chain carries after its leaf. */
  readonly certPem: string;
  readonly notAfter: Date;
  readonly subjectDer: forge.pki.Certificate['subject'];
  readonly keyId: string;
  readonly key: KeyObject;
}

/** Reads the issuer's certificate and key (a Secret mount); throws a line naming what is wrong. */
export function loadIssuer(certPem: string, keyPem: string): IssuerMaterial {
  const blocks = certPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const first = blocks[0];
  if (first === undefined) throw new Error('issuer certificate: no PEM certificate');
  const x = new X509Certificate(first);
  if (!x.ca) throw new Error('issuer certificate is not a CA (basicConstraints cA: true is needed to sign node certificates)');
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`issuer key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`issuer key is ${key.asymmetricKeyType ?? 'unknown'}: it must be RSA (node-forge signs RSA only)`);
  if (!x.checkPrivateKey(key)) throw new Error('issuer key does not belong to the issuer certificate');
  const parsed = forge.pki.certificateFromPem(first);
  const ski = parsed.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return {
    certPem: first.endsWith('\n') ? first : `${first}\n`,
    notAfter: new Date(x.validTo),
    subjectDer: parsed.subject,
    keyId: ski?.subjectKeyIdentifier !== undefined ? forge.util.hexToBytes(ski.subjectKeyIdentifier) : parsed.generateSubjectKeyIdentifier().getBytes(),
    key,
  };
}

export interface LeafRequest {
  readonly publicKey: forge.pki.PublicKey;
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly usage: 'both' | 'server';
}

/** Signs a leaf (never a CA) for the given public key and names; returns PEM. */
export function signLeaf(issuer: IssuerMaterial, req: LeafRequest): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = req.publicKey;
  cert.serialNumber = serialHex(randomBytes(16));
  cert.validity.notBefore = req.notBefore;
  // Never past the issuer's own expiry: a chain is only as valid as its shortest link.
  cert.validity.notAfter = new Date(Math.min(req.notAfter.getTime(), issuer.notAfter.getTime()));
  // An empty subject: the identity is the SAN alone (RFC 5280 4.2.1.6: then SAN is critical).
  cert.setSubject([]);
  cert.issuer.attributes = issuer.subjectDer.attributes;
  cert.issuer.hash = issuer.subjectDer.hash;
  const altNames = [...(req.uris ?? []).map((value) => ({ type: 6, value })), ...(req.dnsNames ?? []).map((value) => ({ type: 2, value }))];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: req.usage === 'both' },
    { name: 'subjectAltName', altNames, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: issuer.keyId },
  ]);
  // What forge's cert.sign does, with the signature from Node's crypto.
  cert.siginfo.algorithmOid = forge.pki.oids['sha256WithRSAEncryption'] as string;
  cert.signatureOid = cert.siginfo.algorithmOid;
  // getTBSCertificate is forge's own (x509.js); its type declarations leave it out.
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  cert.tbsCertificate = tbs;
  cert.signature = sign('sha256', der, issuer.key).toString('binary');
  return forge.pki.certificateToPem(cert);
}

/** The issuer's own serving certificate (HTTPS that routers verify against the trust bundle). */
export function servingCertificate(
  issuer: IssuerMaterial,
  dnsNames: readonly string[],
  uri: string,
  now: Date,
  lifetimeMs: number,
): { certPem: string; keyPem: string; notAfter: Date } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const notAfter = new Date(Math.min(now.getTime() + lifetimeMs, issuer.notAfter.getTime()));
  const leaf = signLeaf(issuer, {
    publicKey: forgePublicKey(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    uris: [uri],
    dnsNames,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter,
    usage: 'server',
  });
  return { certPem: leaf + issuer.certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), notAfter };
}

/** A public key (PEM) as forge reads it; RSA only. */
export function forgePublicKey(pem: string): forge.pki.PublicKey {
  return forge.pki.publicKeyFromPem(createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString());
}
