// The PKCS#10 certificate request a router sends for its node certificate (RFC 2986): empty
// subject, the key's SubjectPublicKeyInfo, one extensionRequest attribute with the URI SAN, signed
// sha256WithRSAEncryption. DER written here with node:crypto's key export and sign, so the router
// does not load node-forge (1.8 MB of heap for one request a day; docs/memory.md).

import { createPublicKey, sign, type KeyObject } from 'node:crypto';

/** One DER TLV (X.690 8.1: definite length, short form under 128 bytes). */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : undefined;
  if (len === undefined) throw new RangeError('DER value over 64 KiB');
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
// Object identifiers, DER-encoded (X.690 8.19).
const OID_EXTENSION_REQUEST = Buffer.from('06092a864886f70d01090e', 'hex'); // 1.2.840.113549.1.9.14
const OID_SUBJECT_ALT_NAME = Buffer.from('0603551d11', 'hex'); // 2.5.29.17
const SHA256_WITH_RSA = Buffer.from('300d06092a864886f70d01010b0500', 'hex'); // {1.2.840.113549.1.1.11, NULL}

/** A PEM CSR for the URI SAN `uri` (e.g. spiffe://cluster.local/node/n1), signed by `privateKey` (RSA). */
export function buildUriCsr(privateKey: KeyObject, uri: string): string {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const san = seq(tlv(0x86, Buffer.from(uri, 'utf8'))); // GeneralNames { uniformResourceIdentifier [6] IA5String }
  const extensions = seq(seq(OID_SUBJECT_ALT_NAME, tlv(0x04, san)));
  const attributes = tlv(0xa0, seq(OID_EXTENSION_REQUEST, tlv(0x31, extensions))); // [0] IMPLICIT SET OF Attribute
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), seq(), spki, attributes); // version 0, empty subject
  const signature = sign('sha256', info, privateKey);
  const der = seq(info, SHA256_WITH_RSA, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`;
}
