// `hostmesh certs inspect` and the reader behind it on the certificates cert-manager issues
// (ECDSA P-256 and P-384) and on Ed25519, made with the openssl CLI at test time: node-forge
// cannot parse EC keys ("OID is not RSA"), so these failed before.

import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { inspectPem } from '../../src/tls/inspect.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { runCli } from '../helpers/cli.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-inspect-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

// A P-384 CA and a P-256 leaf as cert-manager issues them: both usages, URI, DNS and IP SANs.
openssl(
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-384',
  '-nodes',
  '-keyout',
  'ca.key',
  '-out',
  'ca.crt',
  '-days',
  '90',
  '-subj',
  '/CN=mesh CA/O=hostmesh',
);
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=hostmesh');
execFileSync(
  'sh',
  [
    '-c',
    "printf '%s\\n' 'extendedKeyUsage=serverAuth,clientAuth' 'subjectAltName=URI:spiffe://hostmesh/node/node-a,DNS:hostmesh,IP:10.0.0.5,IP:fd00::1' 'basicConstraints=critical,CA:FALSE' > tls.ext",
  ],
  { cwd: dir },
);
openssl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '90', '-extfile', 'tls.ext');
openssl(
  'req',
  '-x509',
  '-newkey',
  'ed25519',
  '-nodes',
  '-keyout',
  'ed.key',
  '-out',
  'ed.crt',
  '-days',
  '90',
  '-subj',
  '/CN=ed',
  '-addext',
  'subjectAltName=DNS:ed.example',
);

t.test('the reader: ECDSA leaf and CA, Ed25519, and RSA as before', async (t) => {
  const [leaf] = inspectPem(await readFile(join(dir, 'tls.crt'), 'utf8'));
  t.match(leaf, {
    subject: 'CN=hostmesh',
    issuer: 'CN=mesh CA, O=hostmesh',
    isCa: false,
    key: 'EC P-256',
    dnsNames: ['hostmesh'],
    ipAddresses: ['10.0.0.5', 'fd00::1'],
    uris: ['spiffe://hostmesh/node/node-a'],
    extKeyUsage: ['serverAuth', 'clientAuth'],
  });
  t.ok((leaf?.notAfter.getTime() ?? 0) - (leaf?.notBefore.getTime() ?? 0) === 90 * 86_400_000, 'validity read from the certificate');
  const [ca] = inspectPem(await readFile(join(dir, 'ca.crt'), 'utf8'));
  t.match(ca, { isCa: true, key: 'EC P-384', extKeyUsage: [] });
  const [ed] = inspectPem(await readFile(join(dir, 'ed.crt'), 'utf8'));
  t.match(ed, { key: 'Ed25519', dnsNames: ['ed.example'] });
  const forgeCa = createCa({ commonName: 'rsa CA', days: 1 });
  const rsa = issueCertificate(forgeCa, { commonName: 'hostmesh', dnsNames: ['hostmesh'], ipAddresses: ['127.0.0.1'], usage: 'server', days: 1 });
  const [r] = inspectPem(rsa.certPem + forgeCa.certPem).map((i) => ({ key: i.key, ips: i.ipAddresses, eku: i.extKeyUsage, ca: i.isCa }));
  t.same(r, { key: 'RSA 2048', ips: ['127.0.0.1'], eku: ['serverAuth'], ca: false });
  t.equal(inspectPem(rsa.certPem + forgeCa.certPem).length, 2, 'a bundle: every certificate');
  t.throws(() => inspectPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), 'a malformed certificate throws');
});

t.test('certs inspect on cert-manager ECDSA certificates: chain, key, name', async (t) => {
  const [leaf, ed] = await Promise.all([
    runCli(['certs', 'inspect', join(dir, 'tls.crt'), '--ca', join(dir, 'ca.crt'), '--key', join(dir, 'tls.key'), '--name', 'hostmesh']),
    runCli(['certs', 'inspect', join(dir, 'ed.crt'), '--key', join(dir, 'ed.key'), '--name', 'ed.example']),
  ]);
  t.equal(leaf.code, 0, leaf.stderr);
  t.notMatch(leaf.stderr, /OID is not RSA/);
  t.match(leaf.stdout, /algorithm: EC P-256/);
  t.match(leaf.stdout, /sans: +DNS:hostmesh, IP:10\.0\.0\.5, IP:fd00::1, URI:spiffe:\/\/hostmesh\/node\/node-a/);
  t.match(leaf.stdout, /usage: +serverAuth, clientAuth/);
  t.match(leaf.stdout, /chain: +signed by/);
  t.match(leaf.stdout, /key: .* matches/);
  t.match(leaf.stdout, /name: +valid for hostmesh/);
  t.equal(ed.code, 0, ed.stderr);
  t.match(ed.stdout, /algorithm: Ed25519/);
});
