// Certificates made by src/tls/generate.ts (what `hostmesh certs` and the demo write): every serial
// is a valid DER INTEGER, so OpenSSL never refuses one of them (serial bytes 00 00 ... made it
// refuse the certificate with "illegal padding").

import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import tls from 'node:tls';
import fc from 'fast-check';
import forge from 'node-forge';
import t from 'tap';
import { createCa, issueCertificate, serialHex } from '../../src/tls/generate.js';

t.test('a serial is positive with a non-zero first byte, whatever the random bytes', async (t) => {
  for (let first = 0; first < 256; first++) {
    const hex = serialHex(Buffer.from([first, ...Array.from({ length: 15 }, () => 0)]));
    const top = Number.parseInt(hex.slice(0, 2), 16);
    t.ok(top >= 0x01 && top <= 0x7f, `first byte 0x${first.toString(16)} -> 0x${top.toString(16)}`);
  }
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const hex = serialHex(Buffer.from(bytes));
      return (
        hex.length === 32 &&
        Number.parseInt(hex.slice(0, 2), 16) >= 1 &&
        Number.parseInt(hex.slice(0, 2), 16) <= 0x7f &&
        hex.slice(2) === Buffer.from(bytes).toString('hex').slice(2)
      );
    }),
  );
});

t.test('the random bytes that broke a certificate before now make one OpenSSL takes', async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  /** A self-signed certificate with this serial, as generate.ts makes them (node-forge). */
  const withSerial = (serialNumber: string): string => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    cert.serialNumber = serialNumber;
    cert.validity.notBefore = new Date();
    cert.validity.notAfter = new Date(Date.now() + 86_400_000);
    cert.setSubject([{ name: 'commonName', value: 'serial' }]);
    cert.setIssuer([{ name: 'commonName', value: 'serial' }]);
    cert.sign(key, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  };
  const zeros = Buffer.alloc(16);
  t.throws(
    () => tls.createSecureContext({ cert: withSerial(zeros.toString('hex')), key: keyPem }),
    /illegal padding/,
    'the old serial (top bit cleared only): refused',
  );
  t.doesNotThrow(() => tls.createSecureContext({ cert: withSerial(serialHex(zeros)), key: keyPem }), 'serialHex of the same bytes: taken');
});

t.test('certificates parse in OpenSSL (node:crypto) and carry the serial they were given', async (t) => {
  const ca = createCa({ commonName: 'serial test CA', days: 1 });
  const caCert = new X509Certificate(ca.certPem);
  t.match(caCert.serialNumber, /^[4-7][0-9A-F]{31}$/, 'the CA serial: 16 bytes, top byte 0x40-0x7f');
  for (let i = 0; i < 5; i++) {
    const leaf = new X509Certificate(issueCertificate(ca, { commonName: `leaf-${i}`, days: 1 }).certPem);
    t.ok(leaf.verify(caCert.publicKey), `leaf ${i} parses and verifies`);
    t.match(leaf.serialNumber, /^[4-7][0-9A-F]{31}$/);
  }
});
