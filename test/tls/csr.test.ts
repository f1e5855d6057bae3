// The router's certificate request (src/tls/csr.ts, DER written without node-forge) as the two
// readers that matter see it: the identity issuer's own reader (signature verified with the
// request's key, the URI SAN read back) and openssl's `req -verify`.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import forge from 'node-forge';
import t from 'tap';
import { readCsr } from '../../src/identity-issuer/csr.js';
import { buildUriCsr } from '../../src/tls/csr.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dir = mkdtempSync(join(tmpdir(), 'hostmesh-csr-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the issuer reads the URI SAN and verifies the signature with the request key', async (t) => {
  const uri = 'spiffe://cluster.local/node/node-a';
  const reading = readCsr(buildUriCsr(privateKey, uri));
  t.ok(reading.ok, JSON.stringify(reading));
  if (!reading.ok) return;
  t.same(reading.uris, [uri]);
  t.same(reading.otherNames, [], 'empty subject, no other SAN');
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  t.equal(forge.pki.publicKeyToPem(reading.publicKey).replace(/\r/g, ''), spki, 'the public key is the router key');
});

t.test('openssl verifies it and sees the one URI SAN', async (t) => {
  const file = join(dir, 'req.pem');
  writeFileSync(file, buildUriCsr(privateKey, 'spiffe://example.org/node/n1'));
  const text = execFileSync('openssl', ['req', '-in', file, '-verify', '-noout', '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.match(text, /URI:spiffe:\/\/example\.org\/node\/n1/);
});

t.test('a request signed by another key does not verify (the issuer refuses it)', async (t) => {
  const pem = buildUriCsr(privateKey, 'spiffe://cluster.local/node/x');
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 1; // one bit of the signature
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  const reading = readCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`);
  t.match(reading, { ok: false, reason: 'csr_signature' });
});

t.test('property: any URI length (DER short and long lengths) round-trips through the issuer', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-./'), minLength: 1, maxLength: 400 }), (tail) => {
      const uri = `spiffe://cluster.local/node/${tail}`;
      const reading = readCsr(buildUriCsr(privateKey, uri));
      return reading.ok && reading.uris.length === 1 && reading.uris[0] === uri;
    }),
    { numRuns: 60 },
  );
});
