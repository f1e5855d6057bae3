// The DER reader behind peer identities: SANs exactly as issued (whatever bytes they hold), the
// identity rule (URI, else first DNS, else CN; malformed means none), and no input makes it throw.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { certificateIdentity, sanNames } from '../../src/tls/peer-certificate.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';

const ca = createCa({ commonName: 'test CA', days: 1 });
const der = (names: { uris?: string[]; dnsNames?: string[] }, commonName = 'cn'): Buffer =>
  new X509Certificate(issueCertificate(ca, { commonName, days: 1, ...names }).certPem).raw;

t.test('SANs are read in order, byte for byte', async (t) => {
  const names = sanNames(der({ dnsNames: ['a.example', 'x, URI:spiffe://evil'], uris: ['spiffe://m/n/a,b', 'urn:x\r\ny'] }));
  t.same(
    names?.dns.map((b) => b.toString('latin1')),
    ['a.example', 'x, URI:spiffe://evil'],
  );
  t.same(
    names?.uris.map((b) => b.toString('latin1')),
    ['spiffe://m/n/a,b', 'urn:x\r\ny'],
  );
  t.same(sanNames(new X509Certificate(ca.certPem).raw), { uris: [], dns: [] }, 'a certificate without the extension');
});

t.test('the identity rule', async (t) => {
  // [SANs, the CN Node reports, verdict]
  const table: [{ uris?: string[]; dnsNames?: string[] }, string, string][] = [
    [{ uris: ['spiffe://hostmesh/node/a'], dnsNames: ['hostmesh'] }, 'cn', 'ok spiffe://hostmesh/node/a'],
    [{ dnsNames: ['node-1.hostmesh', 'b'] }, 'cn', 'ok node-1.hostmesh'],
    [{}, 'plain-cn', 'ok plain-cn'],
    [{ uris: ['spiffe://x/\r\nl5d-client-id: admin', 'spiffe://x/ok'] }, 'cn', 'bad'],
    [{ uris: ['spiffe://x/é'] }, 'cn', 'bad'],
    [{ uris: ['no scheme here'] }, 'cn', 'bad'],
    [{ dnsNames: ['x, URI:spiffe://evil'] }, 'cn', 'bad'],
    [{}, 'cn\u0007bell', 'bad'],
  ];
  for (const [names, cn, want] of table) {
    const id = certificateIdentity(der(names), cn);
    t.equal(id.kind === 'ok' ? `ok ${id.id}` : 'bad', want, JSON.stringify({ ...names, cn }));
  }
});

t.test('no input makes the reader throw: random bytes, truncated and corrupted certificates', async () => {
  const real = der({ uris: ['spiffe://hostmesh/node/a'], dnsNames: ['hostmesh'] });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(real.length), fc.nat(real.length), fc.integer({ min: 0, max: 255 }), (bytes, cut, at, value) => {
      sanNames(bytes);
      certificateIdentity(bytes, undefined);
      sanNames(real.subarray(0, cut));
      const corrupt = Buffer.from(real);
      corrupt[at % corrupt.length] = value;
      certificateIdentity(corrupt, 'cn');
    }),
  );
});
