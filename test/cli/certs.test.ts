// `hostmesh certs`: the CA and certificates it writes make a real mutual TLS handshake succeed,
// carry the SANs and extensions peers check, become a valid Secret manifest; `inspect` reports
// expired, expiring and mismatched certificates with exit 1 and missing files with exit 2.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { parse } from 'yaml';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { runCertsInProcess, runCli } from '../helpers/cli.js';
import { runCheck } from '../../src/cli/run.js';
import { certsInspect, type InspectOptions } from '../../src/cli/certs.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-certs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const ca = join(dir, 'ca');
type CliResult = Awaited<ReturnType<typeof runCli>>;
// The commands run in-process (runCertsInProcess: their commander definitions, functions and exit
// codes) and `inspect` once through the binary, for the binary's own exit code and output; each
// CLI child costs a process start-up.
/** The three `issue` runs, started once the CA exists. */
let issued: Promise<{ nodeA: CliResult; nodeB: CliResult; secret: CliResult }> | undefined;
const issuedRuns = (): Promise<{ nodeA: CliResult; nodeB: CliResult; secret: CliResult }> => {
  if (issued === undefined) throw new Error('the init test runs first');
  return issued;
};

t.test('init writes a CA and refuses to overwrite it without --force', async (t) => {
  const r = await runCertsInProcess(['certs', 'init', '--out', ca]);
  t.equal(r.code, 0, r.stderr);
  const before = await readFile(join(ca, 'ca.crt'), 'utf8');
  const cert = new X509Certificate(before);
  t.equal(cert.ca, true);
  t.match(cert.subject, /CN=hostmesh CA/);
  issued = Promise.all([
    runCertsInProcess(['certs', 'issue', '--ca-dir', ca, '--out', join(dir, 'node-a'), '--node', 'node-a', '--ip', '10.0.0.5', '--days', '45']),
    runCertsInProcess(['certs', 'issue', '--ca-dir', ca, '--out', join(dir, 'node-b'), '--node', 'node-b']),
    runCertsInProcess(['certs', 'issue', '--ca-dir', ca, '--secret']),
  ]).then(([nodeA, nodeB, secret]) => ({ nodeA, nodeB, secret }));
  const again = await runCertsInProcess(['certs', 'init', '--out', ca]);
  t.equal(again.code, 2);
  t.match(again.stderr, /exists; pass --force/);
  t.equal(await readFile(join(ca, 'ca.crt'), 'utf8'), before, 'the CA is untouched');
});

t.test('issue: node certificate with SANs and usages, signed by the CA', async (t) => {
  const r = (await issuedRuns()).nodeA;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '', 'without --secret nothing goes to stdout');
  const leaf = new X509Certificate(await readFile(join(dir, 'node-a', 'tls.crt')));
  const caCert = new X509Certificate(await readFile(join(ca, 'ca.crt')));
  t.ok(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey), 'signed by the CA');
  t.equal(leaf.ca, false);
  t.same(leaf.subjectAltName?.split(', ').sort(), ['DNS:hostmesh', 'DNS:node-a', 'IP Address:10.0.0.5', 'URI:spiffe://hostmesh/node/node-a']);
  t.same([...(leaf.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
  t.ok(leaf.checkHost('hostmesh'), 'valid for the mesh name peers verify');
  const days = (Date.parse(leaf.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 44 && days <= 45, `valid ~45 days (${days.toFixed(1)})`);
  t.equal(await readFile(join(dir, 'node-a', 'ca.crt'), 'utf8'), await readFile(join(ca, 'ca.crt'), 'utf8'), 'ca.crt beside it');
});

t.test('two issued certificates complete a mutual TLS handshake verified as `hostmesh`', async (t) => {
  const b = (await issuedRuns()).nodeB;
  t.equal(b.code, 0, b.stderr);
  const read = (p: string) => readFile(join(dir, p));
  const caPem = await read('ca/ca.crt');
  const server = tls.createServer(
    { cert: await read('node-b/tls.crt'), key: await read('node-b/tls.key'), ca: caPem, requestCert: true, rejectUnauthorized: true },
    (s) => {
      s.end(`peer ${(s.getPeerCertificate().subjectaltname ?? '').split(', ').find((x) => x.startsWith('URI:'))}`);
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const client = tls.connect({
    host: '127.0.0.1',
    port,
    servername: 'hostmesh',
    ca: caPem,
    cert: await read('node-a/tls.crt'),
    key: await read('node-a/tls.key'),
    checkServerIdentity: (_h, c) => tls.checkServerIdentity('hostmesh', c),
  });
  let text = '';
  client.setEncoding('utf8').on('data', (d: string) => (text += d));
  await once(client, 'end');
  t.ok(client.authorized, 'the client verified the server');
  t.equal(text, 'peer URI:spiffe://hostmesh/node/node-a', 'the server verified the client and sees its identity');

  // A certificate from another CA is refused by the server.
  const other = createCa({ commonName: 'other CA' });
  const stranger = issueCertificate(other, { commonName: 'hostmesh', dnsNames: ['hostmesh'] });
  const bad = tls.connect({ host: '127.0.0.1', port, servername: 'hostmesh', ca: caPem, cert: stranger.certPem, key: stranger.keyPem });
  const [err] = (await Promise.race([once(bad, 'error'), once(bad, 'close').then(() => [new Error('closed')])])) as [Error];
  t.ok(err, 'the handshake with a foreign client certificate fails');
});

t.test('issue --secret: a valid Kubernetes Secret with tls.crt, tls.key and ca.crt', async (t) => {
  const r = (await issuedRuns()).secret;
  t.equal(r.code, 0, r.stderr);
  const secret = parse(r.stdout) as {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string };
    type: string;
    data: Record<string, string>;
  };
  const { Secret } = await import('kubernetes-models/v1');
  t.doesNotThrow(() => new Secret(secret as ConstructorParameters<typeof Secret>[0]).validate());
  t.same([secret.kind, secret.metadata.name, secret.metadata.namespace, secret.type], ['Secret', 'hostmesh-tls', 'hostmesh', 'kubernetes.io/tls']);
  const decode = (k: string) => Buffer.from(secret.data[k] ?? '', 'base64').toString();
  const leaf = new X509Certificate(decode('tls.crt'));
  t.ok(leaf.verify(new X509Certificate(decode('ca.crt')).publicKey));
  t.equal(decode('ca.crt'), await readFile(join(ca, 'ca.crt'), 'utf8'));
  t.match(decode('tls.key'), /^-----BEGIN PRIVATE KEY-----/);
  t.match(leaf.subjectAltName, /URI:spiffe:\/\/hostmesh\/mesh/);
});

t.test('usage errors exit 2', async (t) => {
  const [neither, noCa, badIp, badDays] = await Promise.all([
    runCertsInProcess(['certs', 'issue', '--ca-dir', ca]),
    runCertsInProcess(['certs', 'issue', '--ca-dir', join(dir, 'nope'), '--secret']),
    runCertsInProcess(['certs', 'issue', '--ca-dir', ca, '--secret', '--ip', 'node-a']),
    runCertsInProcess(['certs', 'init', '--out', join(dir, 'x'), '--days', '-3']),
  ]);
  t.equal(neither.code, 2, 'neither --out nor --secret');
  t.equal(noCa.code, 2, 'no CA there');
  t.equal(badIp.code, 2);
  t.match(badIp.stderr, /not an IP address/);
  t.equal(badDays.code, 2);
});

t.test('inspect: ok, expiring, expired, wrong CA, wrong key, wrong name, missing file', async (t) => {
  const crt = join(dir, 'node-a', 'tls.crt');
  const caPem = { certPem: await readFile(join(ca, 'ca.crt'), 'utf8'), keyPem: await readFile(join(ca, 'ca.key'), 'utf8'), commonName: 'hostmesh CA' };
  const old = issueCertificate(caPem, {
    commonName: 'hostmesh',
    dnsNames: ['hostmesh'],
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2025-01-01T00:00:00Z'),
  });
  await writeFile(join(dir, 'old.crt'), old.certPem);
  const foreign = issueCertificate(createCa({ commonName: 'other CA' }), { commonName: 'hostmesh' });
  await writeFile(join(dir, 'foreign.crt'), foreign.certPem);
  // `certs inspect` in-process (certsInspect is what the command calls, with its option defaults);
  // one case through the binary, for its exit code and output.
  const inspect = async (files: string[], opts: Partial<InspectOptions> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await certsInspect(files, { warnDays: '30', ...opts }, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  };
  const [ok, expiring, expired, wrongCa, wrongKey, wrongName, missing] = await Promise.all([
    runCli(['certs', 'inspect', crt, '--ca', join(ca, 'ca.crt'), '--key', join(dir, 'node-a', 'tls.key'), '--name', 'hostmesh']),
    inspect([crt], { warnDays: '60' }),
    inspect([join(dir, 'old.crt')]),
    inspect([join(dir, 'foreign.crt')], { ca: join(ca, 'ca.crt') }),
    inspect([crt], { key: join(dir, 'node-b', 'tls.key') }),
    inspect([crt], { name: 'node-b' }),
    inspect([join(dir, 'nope.crt')]),
  ]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /sans: +DNS:hostmesh, DNS:node-a, IP:10\.0\.0\.5, URI:spiffe:\/\/hostmesh\/node\/node-a/);
  t.match(ok.stdout, /chain: +signed by/);

  t.equal(expiring.code, 1);
  t.match(expiring.stderr, /expires in 4\d days \(warning at 60\)/);

  t.equal(expired.code, 1);
  t.match(expired.stderr, /certificate expired on 2025-01-01/);
  t.match(expired.stdout, /expiry: +expired \d+ days ago/);

  t.equal(wrongCa.code, 1);
  t.match(wrongCa.stderr, /not signed by the CA/);

  t.equal(wrongKey.code, 1);
  t.match(wrongKey.stderr, /does not belong to this certificate/);

  t.equal(wrongName.code, 1);
  t.match(wrongName.stderr, /not valid for node-b/);

  t.equal(missing.code, 2);
  t.match(missing.stderr, /no such file/);
});

t.test('run --check refuses an expired certificate and warns about one about to expire', async (t) => {
  const caPem = { certPem: await readFile(join(ca, 'ca.crt'), 'utf8'), keyPem: await readFile(join(ca, 'ca.key'), 'utf8'), commonName: 'hostmesh CA' };
  const config = (cert: string, key: string) => `routers:
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 4141
    tls: {certPath: ${cert}, keyPath: ${key}, caCertPath: ${join(ca, 'ca.crt')}, requireClientAuth: true}
`;
  const old = issueCertificate(caPem, { commonName: 'hostmesh', notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2025-01-01T00:00:00Z') });
  await writeFile(join(dir, 'old.key'), old.keyPem);
  await writeFile(join(dir, 'old-cert.crt'), old.certPem);
  await writeFile(join(dir, 'expired.yaml'), config(join(dir, 'old-cert.crt'), join(dir, 'old.key')));
  // A file that is not PEM, and a key from another certificate: named in the error.
  await writeFile(join(dir, 'garbage.crt'), 'not a certificate\n');
  await writeFile(join(dir, 'garbage.yaml'), config(join(dir, 'garbage.crt'), join(dir, 'old.key')));
  await writeFile(join(dir, 'mismatch.yaml'), config(join(dir, 'node-a', 'tls.crt'), join(dir, 'old.key')));
  const soonCert = issueCertificate(caPem, { commonName: 'hostmesh', days: 10 });
  await writeFile(join(dir, 'soon.crt'), soonCert.certPem);
  await writeFile(join(dir, 'soon.key'), soonCert.keyPem);
  await writeFile(join(dir, 'soon.yaml'), config(join(dir, 'soon.crt'), join(dir, 'soon.key')));
  // `run --check` in-process (runCheck is what it calls; test/cli/run.test.ts runs the binary's own exits).
  const check = async (file: string) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCheck(join(dir, file), [], { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  };
  const [r, garbage, mismatch, soon] = await Promise.all([check('expired.yaml'), check('garbage.yaml'), check('mismatch.yaml'), check('soon.yaml')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /server :4141 certificate .*old-cert\.crt \(CN=hostmesh\) expired on 2025-01-01/);
  t.equal(garbage.code, 1);
  t.match(garbage.stderr, /certificate .*garbage\.crt is not PEM/);
  t.equal(mismatch.code, 1);
  t.match(mismatch.stderr, /key .*old\.key does not belong to certificate .*node-a\/tls\.crt/);
  t.equal(soon.code, 0, soon.stderr);
  t.match(soon.stderr, /warning: .*soon\.crt \(CN=hostmesh\) expires in 9 days/);
});
