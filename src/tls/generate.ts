// Certificate generation on node-forge: a mesh CA and node certificates with SANs and proper v3
// extensions. RSA keys come from Node's crypto (native, fast); forge builds and signs the X.509.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface Pem {
  readonly certPem: string;
  /** PKCS#8 unless `keyFormat: 'pkcs1'` was asked for. */
  readonly keyPem: string;
}

export interface CertificateAuthority extends Pem {
  readonly commonName: string;
}

export interface IssueOptions {
  readonly commonName: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly uris?: readonly string[];
  /** Extended key usage; 'none' leaves the extension out (tests of peers that lack it). */
  readonly usage?: 'server' | 'client' | 'both' | 'none';
  /** Marks the certificate as a CA (tests: a CA certificate presented as a peer's). */
  readonly isCa?: boolean;
  readonly days?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly keyFormat?: 'pkcs8' | 'pkcs1';
}

function newKey(format: 'pkcs8' | 'pkcs1' = 'pkcs8'): { keyPem: string; forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pkcs1);
  const publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  const keyPem = format === 'pkcs1' ? pkcs1 : privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, forgeKey, publicKey };
}

function serial(): string {
  return serialHex(randomBytes(16));
}

/**
 * A certificate serial from random bytes: positive (top bit clear) and with a non-zero first byte.
 * Serial bytes starting 00 00 make node-forge write an INTEGER with a leading zero octet, which DER
 * forbids: OpenSSL then refuses the whole certificate ("illegal padding"). With only the top bit
 * cleared that was about one certificate in 32,768, and a CI run met it once in the demo's PKI.
 */
export function serialHex(random: Buffer): string {
  const b = Buffer.from(random);
  b[0] = ((b[0] as number) & 0x7f) | 0x40;
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number, notBefore?: Date, notAfter?: Date): void {
  const start = notBefore ?? new Date(Date.now() - 5 * 60_000); // tolerate small clock skew
  cert.validity.notBefore = start;
  cert.validity.notAfter = notAfter ?? new Date(start.getTime() + days * 86_400_000);
}

export function createCa(options: { commonName: string; days?: number }): CertificateAuthority {
  const { keyPem, forgeKey, publicKey } = newKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  validity(cert, options.days ?? 3650);
  const subject = [{ name: 'commonName', value: options.commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return { commonName: options.commonName, certPem: forge.pki.certificateToPem(cert), keyPem };
}

export function issueCertificate(ca: CertificateAuthority, options: IssueOptions): Pem {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const { keyPem, publicKey } = newKey(options.keyFormat);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  validity(cert, options.days ?? 365, options.notBefore, options.notAfter);
  cert.setSubject([{ name: 'commonName', value: options.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const usage = options.usage ?? 'both';
  const altNames: { type: number; value?: string; ip?: string }[] = [
    // forge writes the string's chars as bytes: UTF-8 first, so a non-ASCII SAN is its UTF-8 bytes.
    ...(options.dnsNames ?? []).map((value) => ({ type: 2, value: forge.util.encodeUtf8(value) })),
    ...(options.uris ?? []).map((value) => ({ type: 6, value: forge.util.encodeUtf8(value) })),
    ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: options.isCa === true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, ...(options.isCa === true ? { keyCertSign: true } : {}), critical: true },
    ...(usage === 'none' ? [] : [{ name: 'extKeyUsage', serverAuth: usage !== 'client', clientAuth: usage !== 'server' }]),
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** The URI SAN hostmesh gives a node certificate; `l5d-client-id` shows it on the incoming side. */
export function nodeIdentity(meshName: string, nodeName: string): string {
  return `spiffe://${meshName}/node/${nodeName}`;
}

/**
 * A node certificate: the mesh name as CN and DNS SAN (what peers verify), the node name as DNS
 * SAN, its IP, and a URI SAN identity naming the node. Usable as server and client certificate.
 */
export function issueNodeCertificate(ca: CertificateAuthority, meshName: string, node: { name: string; ip?: string }, days = 365): Pem {
  return issueCertificate(ca, {
    commonName: meshName,
    dnsNames: [meshName, node.name],
    ...(node.ip !== undefined ? { ipAddresses: [node.ip] } : {}),
    uris: [nodeIdentity(meshName, node.name)],
    usage: 'both',
    days,
  });
}

/**
 * An intermediate CA signed by `parent`: the identity issuer's certificate (trust anchor ->
 * issuer -> node certificates). RSA, since the issuer signs node certificates with node-forge.
 * pathLen 0: it may sign leaves only.
 */
export function createIntermediateCa(
  parent: CertificateAuthority,
  options: { commonName: string; days?: number; notBefore?: Date; notAfter?: Date },
): CertificateAuthority {
  const parentCert = forge.pki.certificateFromPem(parent.certPem);
  const parentKey = forge.pki.privateKeyFromPem(parent.keyPem);
  const { keyPem, publicKey } = newKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  validity(cert, options.days ?? 365, options.notBefore, options.notAfter);
  cert.setSubject([{ name: 'commonName', value: options.commonName }]);
  cert.setIssuer(parentCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: parentCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(parentKey, forge.md.sha256.create());
  return { commonName: options.commonName, certPem: forge.pki.certificateToPem(cert), keyPem };
}
