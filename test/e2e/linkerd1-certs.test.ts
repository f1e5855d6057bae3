// Certificates made as Linkerd 1's TLS guide made them (the openssl CLI: a CA, then a mesh
// certificate signed with only a subjectAltName, no extended key usage) carry real mTLS between
// two routers; RFC 5280 says such a certificate may serve any purpose. A certificate whose
// extended key usage excludes the purpose is still refused, by `run --check` and at start.

import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCheck } from '../../src/cli/run.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { request } from '../helpers/http.js';

const HOST = '127.0.0.1';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-l5d1-certs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
// The guide's steps: a self-signed CA, a key and CSR for the mesh name, signed with a SAN only.
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=linkerd-ca');
const leaf = (name: string, ext: string): void => {
  openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=linkerd');
  execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > ${name}.ext`], { cwd: dir });
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
  execFileSync('chmod', ['600', `${name}.key`], { cwd: dir });
};
leaf('linkerd', 'subjectAltName=DNS:linkerd');
leaf('clientonly', 'extendedKeyUsage=clientAuth');

const backend = http.createServer((req, res) => res.end(`client-id: ${String(req.headers['l5d-client-id'] ?? '(none)')}`));
await new Promise<void>((resolve) => backend.listen(0, HOST, () => resolve()));
t.teardown(() => new Promise<void>((resolve) => backend.close(() => resolve())));
const backendPort = (backend.address() as { port: number }).port;

const incomingText = (cert: string): string => `admin: {ip: ${HOST}, port: 0}
routers:
- protocol: http
  label: incoming
  dtab: /svc/echo => /$/inet/${HOST}/${backendPort};
  servers:
  - port: 0
    ip: ${HOST}
    tls: {certPath: ${cert}.pem, keyPath: ${cert}.key, caCertPath: ca.pem, requireClientAuth: true}
`;

t.test('the guide-made certificate has no extended key usage (what the test is about)', async (t) => {
  const text = execFileSync('openssl', ['x509', '-in', join(dir, 'linkerd.pem'), '-noout', '-text'], { encoding: 'utf8' });
  t.notMatch(text, /Extended Key Usage/);
  t.match(text, /DNS:linkerd/);
});

t.test('run --check accepts it with a warning that names the file and what peers may do', async (t) => {
  const file = join(dir, 'incoming.yaml');
  await writeFile(file, incomingText('linkerd'));
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCheck(file, [], { out: (l) => out.push(l), err: (l) => err.push(l) });
  t.equal(code, 0, err.join('\n'));
  t.match(err.join('\n'), /linkerd\.pem has no extended key usage: accepted for TLS server authentication/);
});

t.test('run --check and start refuse a server certificate whose extended key usage excludes serverAuth', async (t) => {
  const file = join(dir, 'clientonly.yaml');
  const text = incomingText('clientonly');
  await writeFile(file, text);
  const err: string[] = [];
  t.equal(await runCheck(file, [], { out: () => {}, err: (l) => err.push(l) }), 1);
  t.match(err.join('\n'), /clientonly\.pem: the certificate is not for TLS server authentication \(its extended key usage lacks serverAuth\)/);
  await t.rejects(startHostmesh(parseConfig(text, file).config, { logger: silentLogger() }), /lacks serverAuth/);
});

t.test('two routers speak mTLS with them: the incoming router verifies the peer and names it', async (t) => {
  const inFile = join(dir, 'in.yaml');
  const inText = incomingText('linkerd');
  await writeFile(inFile, inText);
  const incoming = await startHostmesh(parseConfig(inText, inFile).config, { logger: silentLogger() });
  t.teardown(() => incoming.close(0));
  const inPort = incoming.routers[0]?.listeners[0]?.address.port as number;
  const outText = `admin: {ip: ${HOST}, port: 0}
routers:
- protocol: http
  label: outgoing
  dtab: /svc/echo => /$/inet/${HOST}/${inPort};
  servers: [{port: 0, ip: ${HOST}}]
  client:
    tls: {commonName: linkerd, trustCerts: [ca.pem], clientAuth: {certPath: linkerd.pem, keyPath: linkerd.key}}
`;
  const outFile = join(dir, 'out.yaml');
  await writeFile(outFile, outText);
  const outgoing = await startHostmesh(parseConfig(outText, outFile).config, { logger: silentLogger() });
  t.teardown(() => outgoing.close(0));
  const outPort = outgoing.routers[0]?.listeners[0]?.address.port as number;
  const r = await request({ host: HOST, port: outPort, path: '/', headers: { host: 'echo' } });
  t.same({ status: r.status, body: r.body }, { status: 200, body: 'client-id: linkerd' }, 'served over mTLS, the peer named by its DNS SAN');
  const counted = (text: string, side: string): number =>
    Number(new RegExp(`hostmesh_peer_certificates_any_purpose_total\\{side="${side}"\\} (\\d+)`).exec(text)?.[1]);
  t.ok(counted(await incoming.metrics.registry.metrics(), 'client') >= 1, 'the incoming side counts the any-purpose client certificate');
  t.ok(counted(await outgoing.metrics.registry.metrics(), 'server') >= 1, 'the outgoing side counts the any-purpose server certificate');
  t.ok((await readFile(join(dir, 'linkerd.pem'), 'utf8')).includes('BEGIN CERTIFICATE'));
});
