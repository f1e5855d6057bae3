// `hostmesh certs issuer`: the identity issuer's certificate under a trust anchor made by
// `certs init`, the trust bundle (with an old anchor kept during a rotation), and the Secret and
// ConfigMap manifests the shipped deployment mounts.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { loadIssuer } from '../../src/identity-issuer/signer.js';
import { runCertsInProcess, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'hostmesh-certs-issuer-'));

t.test('certs issuer makes an issuer the identity service accepts, a bundle and the manifests', async (t) => {
  // The anchors in-process (test/cli/certs.test.ts covers init); the issuer through the binary.
  const [a, b] = await Promise.all([
    runCertsInProcess(['certs', 'init', '--out', join(dir, 'anchor')]),
    runCertsInProcess(['certs', 'init', '--out', join(dir, 'old')]),
  ]);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  const r = await runCli([
    'certs',
    'issuer',
    '--ca-dir',
    join(dir, 'anchor'),
    '--bundle',
    join(dir, 'old', 'ca.crt'),
    '--out',
    join(dir, 'issuer'),
    '--secret',
  ]);
  t.equal(r.code, 0, r.stderr);
  const issuerPem = readFileSync(join(dir, 'issuer', 'issuer.crt'), 'utf8');
  const issuer = new X509Certificate(issuerPem);
  t.ok(issuer.ca, 'a CA');
  t.ok(issuer.verify(new X509Certificate(readFileSync(join(dir, 'anchor', 'ca.crt'))).publicKey), 'signed by the anchor');
  t.doesNotThrow(() => loadIssuer(issuerPem, readFileSync(join(dir, 'issuer', 'issuer.key'), 'utf8')), 'the issuer service loads it');
  const bundle = readFileSync(join(dir, 'issuer', 'ca-bundle.crt'), 'utf8');
  t.equal(bundle.match(/BEGIN CERTIFICATE/g)?.length, 2, 'two anchors in the bundle during a rotation');
  const docs = parseAllDocuments(r.stdout).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> },
  );
  t.same(
    docs.map((d) => `${d.kind} ${d.metadata.namespace}/${d.metadata.name}`),
    ['Secret hostmesh/hostmesh-identity-issuer', 'ConfigMap hostmesh/hostmesh-trust-bundle'],
  );
  t.equal(Buffer.from(docs[0]?.data['tls.crt'] ?? '', 'base64').toString(), issuerPem);
  t.equal(docs[1]?.data['ca-bundle.crt'], bundle);
  const none = await runCertsInProcess(['certs', 'issuer', '--ca-dir', join(dir, 'anchor')]);
  t.equal(none.code, 2, 'neither --out nor --secret is a usage error');
});
