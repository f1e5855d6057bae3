// Hostile TLS peers against an incoming (mTLS) router started from a config: suites without
// forward secrecy, certificates that are not client leaves, SANs that Node prints in its quoted
// form; and the outgoing side refusing a peer whose certificate is not a server leaf.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { clientTlsOptions } from '../../src/tls/tls-files.js';
import { createCa, issueCertificate, issueNodeCertificate, type Pem } from '../../src/tls/generate.js';
import { promptBound, timed } from '../helpers/prompt.js';

const HOST = '127.0.0.1';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-tls-policy-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const ca = createCa({ commonName: 'mesh CA', days: 1 });
const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-b', ip: HOST }, 1);
const peer = issueNodeCertificate(ca, 'hostmesh', { name: 'node-a', ip: HOST }, 1);
await writeFile(join(dir, 'ca.pem'), ca.certPem);
await writeFile(join(dir, 'node.pem'), node.certPem);
await writeFile(join(dir, 'node.key'), node.keyPem, { mode: 0o600 });

// The application behind the incoming router: answers with the identity the router vouched for.
const backend = http.createServer((req, res) => res.end(String(req.headers['l5d-client-id'] ?? '(none)')));
await new Promise<void>((resolve) => backend.listen(0, HOST, () => resolve()));
t.teardown(() => new Promise<void>((resolve) => backend.close(() => resolve())));
const backendPort = (backend.address() as { port: number }).port;

const tlsBlock = (extra: string): string => `{certPath: node.pem, keyPath: node.key, caCertPath: ca.pem, requireClientAuth: true${extra}}`;
const router = (label: string, extra: string): string => `
- protocol: http
  label: ${label}
  dtab: /svc/echo => /$/inet/${HOST}/${backendPort};
  servers: [{port: 0, ip: ${HOST}, tls: ${tlsBlock(extra)}}]`;
const configText = `admin: {ip: ${HOST}, port: 0}
routers:${router('incoming', '')}${router('strict', ', protocols: [TLSv1.2], ciphers: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]')}${router('tls13', ', protocols: [TLSv1.3]')}
`;
const configFile = join(dir, 'config.yaml');
await writeFile(configFile, configText);
const mesh: Hostmesh = await startHostmesh(parseConfig(configText, configFile).config, { logger: silentLogger() });
t.teardown(() => mesh.close(0));
const portOf = (label: string): number => mesh.routers.find((r) => r.label === label)?.listeners[0]?.address.port as number;

interface Outcome {
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
}

/**
 * How long a call may sit idle: what a user notices ("within 1 s"), measured so a busy machine
 * cannot trip it: 10x a mesh peer's call before any hostile one (at least 2 s). 10 s until then.
 */
let boundMs = 10_000;

/** One request to a router's TLS port as a peer with `cert` (`boundMs` idle deadline: what a user notices). */
function call(label: string, cert: Pem, options: tls.ConnectionOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: HOST,
        port: portOf(label),
        path: '/',
        headers: { host: 'echo' },
        agent: false,
        ca: ca.certPem,
        cert: cert.certPem,
        key: cert.keyPem,
        servername: 'hostmesh',
        checkServerIdentity: (_h, c) => tls.checkServerIdentity('hostmesh', c),
        timeout: boundMs,
        ...options,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (err) => resolve({ error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${boundMs} ms`)));
    req.on('error', (err) => resolve({ error: err.message }));
    req.end();
  });
}

async function stillServes(t: Test, label = 'incoming'): Promise<void> {
  const ok = await call(label, peer);
  t.same(ok, { status: 200, body: 'spiffe://hostmesh/node/node-a' }, `a mesh peer is still served within 1 s (bound ${boundMs} ms, 10x before)`);
}

// The baseline: a mesh peer's call, once to warm the router, then timed.
await call('incoming', peer);
{
  const base = await timed(() => call('incoming', peer));
  if (base.value.status !== 200) throw new Error(`a mesh peer before the hostile ones: ${JSON.stringify(base.value)}`);
  boundMs = promptBound(base.ms, 2000);
}

t.test('a client offering only suites without forward secrecy or with CBC fails the handshake', async (t) => {
  for (const ciphers of ['AES128-SHA', 'AES256-GCM-SHA384', 'AES128-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384']) {
    const r = await call('incoming', peer, { maxVersion: 'TLSv1.2', ciphers });
    t.ok(r.error !== undefined && r.status === undefined, `${ciphers} over TLS 1.2 is refused (${r.error ?? r.status})`);
  }
  t.match(
    await mesh.metrics.registry.metrics(),
    /hostmesh_tls_handshake_failures_total\{router="incoming",reason="no_shared_cipher"\} 5/,
    'each refusal is counted',
  );
  await stillServes(t);
});

t.test('forward-secret AEAD suites work over TLS 1.2, and TLS 1.3 is the default', async (t) => {
  for (const ciphers of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
    t.same(await call('incoming', peer, { maxVersion: 'TLSv1.2', ciphers }), { status: 200, body: 'spiffe://hostmesh/node/node-a' }, ciphers);
  }
  const version = await new Promise<string | null>((resolve, reject) => {
    const s = tls.connect({ host: HOST, port: portOf('incoming'), ca: ca.certPem, cert: peer.certPem, key: peer.keyPem, servername: 'hostmesh' }, () => {
      resolve(s.getProtocol());
      s.end();
    });
    s.on('error', reject);
  });
  t.equal(version, 'TLSv1.3');
});

t.test("the server's protocols and ciphers keys (Linkerd 1 names) are enforced", async (t) => {
  t.same(
    await call('strict', peer, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' }),
    { status: 200, body: 'spiffe://hostmesh/node/node-a' },
    'the listed suite',
  );
  t.ok((await call('strict', peer, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).error, 'a suite not listed is refused');
  t.ok((await call('strict', peer, { minVersion: 'TLSv1.3' })).error, 'TLS 1.3 is refused when protocols lists only TLSv1.2');
  t.ok((await call('tls13', peer, { maxVersion: 'TLSv1.2' })).error, 'TLS 1.2 is refused when protocols lists only TLSv1.3');
  t.same(await call('tls13', peer), { status: 200, body: 'spiffe://hostmesh/node/node-a' });
});

t.test('a peer certificate must be a leaf whose extended key usage, if any, allows client authentication', async (t) => {
  const refused: Record<string, Pem> = {
    'a CA certificate signed by the mesh CA': issueCertificate(ca, {
      commonName: 'hostmesh',
      uris: ['spiffe://hostmesh/node/ca'],
      isCa: true,
      usage: 'both',
      days: 1,
    }),
    'a server-only certificate': issueCertificate(ca, { commonName: 'hostmesh', uris: ['spiffe://hostmesh/node/server'], usage: 'server', days: 1 }),
  };
  for (const [what, cert] of Object.entries(refused)) {
    const r = await call('incoming', cert);
    t.ok(r.status === undefined, `${what} is refused (${r.error ?? `got ${r.status} ${r.body}`})`);
  }
  const client = issueCertificate(ca, { commonName: 'hostmesh', uris: ['spiffe://hostmesh/node/client'], usage: 'client', days: 1 });
  t.same(await call('incoming', client), { status: 200, body: 'spiffe://hostmesh/node/client' }, 'a client-only leaf is accepted');
  // RFC 5280 4.2.1.12: without the extension a certificate may serve any purpose (as OpenSSL makes them).
  const any = issueCertificate(ca, { commonName: 'hostmesh', uris: ['spiffe://hostmesh/node/any'], usage: 'none', days: 1 });
  const anyBefore = /hostmesh_peer_certificates_any_purpose_total\{side="client"\} (\d+)/.exec(await mesh.metrics.registry.metrics())?.[1];
  t.same(await call('incoming', any), { status: 200, body: 'spiffe://hostmesh/node/any' }, 'a leaf without extended key usage is accepted');
  const text = await mesh.metrics.registry.metrics();
  const anyAfter = /hostmesh_peer_certificates_any_purpose_total\{side="client"\} (\d+)/.exec(text)?.[1];
  t.equal(Number(anyAfter) - Number(anyBefore), 1, 'and counted');
  t.match(text, /hostmesh_tls_handshake_failures_total\{router="incoming",reason="peer_certificate_refused"\} [1-9]/, 'refusals are counted');
  await stillServes(t);
});

t.test('the identity is the URI SAN (else the first DNS SAN) exactly as the certificate holds it', async (t) => {
  const issue = (names: { uris?: string[]; dnsNames?: string[] }): Pem =>
    issueCertificate(ca, { commonName: 'cn-is-not-used', usage: 'both', days: 1, ...names });
  t.same(
    await call('incoming', issue({ dnsNames: ['hostmesh'], uris: ['spiffe://hostmesh/node/a,b'] })),
    { status: 200, body: 'spiffe://hostmesh/node/a,b' },
    'a comma in the URI',
  );
  t.same(await call('incoming', issue({ dnsNames: ['node-7.hostmesh', 'other'] })), { status: 200, body: 'node-7.hostmesh' }, 'no URI SAN: the first DNS SAN');
  t.same(
    await call('incoming', issue({ dnsNames: ['hostmesh'], uris: ['spiffe://hostmesh/node/"x"'] })),
    { status: 200, body: 'spiffe://hostmesh/node/"x"' },
    'quotes in the URI',
  );
  const bad: Record<string, Pem> = {
    'CR/LF in the URI SAN': issue({ uris: ['spiffe://hostmesh/node/x\r\nl5d-client-id: spiffe://hostmesh/node/admin'] }),
    'non-ASCII in the URI SAN': issue({ uris: ['spiffe://hostmesh/node/é'] }),
    'a DNS SAN that is not a DNS name': issue({ dnsNames: ['x, URI:spiffe://hostmesh/node/admin'] }),
  };
  for (const [what, cert] of Object.entries(bad)) {
    const r = await call('incoming', cert);
    t.ok(r.status === undefined, `${what}: refused (${r.error ?? `got ${r.status} ${r.body}`})`);
  }
  await stillServes(t);
});

t.test('the outgoing side refuses a peer whose certificate is not a server leaf', async (t) => {
  const options = clientTlsOptions({ commonName: 'hostmesh', trustCerts: [join(dir, 'ca.pem')] });
  const serveWith = async (cert: Pem): Promise<string> => {
    const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
    const port = (server.address() as { port: number }).port;
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({ ...options, host: HOST, port }, () => resolve('connected'));
      s.on('error', (err) => resolve(err.message));
      s.setTimeout(1000, () => resolve('timeout'));
      s.on('secureConnect', () => s.destroy());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return outcome;
  };
  t.equal(await serveWith(issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'], usage: 'server', days: 1 })), 'connected', 'a server leaf');
  t.equal(
    await serveWith(issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'], usage: 'none', days: 1 })),
    'connected',
    'a leaf without extended key usage (any purpose, RFC 5280)',
  );
  for (const [what, cert] of Object.entries({
    'a client-only certificate': issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'], usage: 'client', days: 1 }),
    'a CA certificate': issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'], usage: 'both', isCa: true, days: 1 }),
  })) {
    t.not(await serveWith(cert), 'connected', `${what} is refused`);
  }
});

t.test('through an outgoing router: a peer without a server leaf is a 502 with l5d-err, a mesh peer is served', async (t) => {
  const clientOnly = issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'], usage: 'client', days: 1 });
  const impostor = tls.createServer({ cert: clientOnly.certPem, key: clientOnly.keyPem }, (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nimpostor'));
  await new Promise<void>((resolve) => impostor.listen(0, HOST, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => impostor.close(() => resolve())));
  await writeFile(join(dir, 'peer.pem'), peer.certPem);
  await writeFile(join(dir, 'peer.key'), peer.keyPem, { mode: 0o600 });
  const text = `admin: {ip: ${HOST}, port: 0}
routers:
- protocol: http
  label: outgoing
  dtab: |
    /svc/echo => /$/inet/${HOST}/${portOf('incoming')};
    /svc/impostor => /$/inet/${HOST}/${(impostor.address() as { port: number }).port};
  servers: [{port: 0, ip: ${HOST}}]
  client:
    tls: {commonName: hostmesh, trustCerts: [ca.pem], clientAuth: {certPath: peer.pem, keyPath: peer.key}}
`;
  const file = join(dir, 'outgoing.yaml');
  await writeFile(file, text);
  const out = await startHostmesh(parseConfig(text, file).config, { logger: silentLogger() });
  t.teardown(() => out.close(0));
  const port = out.routers[0]?.listeners[0]?.address.port as number;
  const get = (host: string): Promise<{ status: number; err: string | undefined; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: HOST, port, path: '/', headers: { host }, agent: false, timeout: boundMs }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, err: res.headers['l5d-err'] as string | undefined, body }));
        })
        .on('timeout', function (this: http.ClientRequest) {
          this.destroy(new Error(`no answer within ${boundMs} ms`));
        })
        .on('error', reject);
    });
  const bad = await get('impostor');
  t.equal(bad.status, 502);
  // OpenSSL refuses it first when the extension excludes the purpose ("unsuitable certificate purpose").
  t.match(bad.err ?? '', /serverAuth|purpose/, 'l5d-err says why');
  t.notMatch(bad.body, /^impostor/, 'nothing from the impostor reaches the client');
  t.same(
    await get('echo'),
    { status: 200, err: undefined, body: 'spiffe://hostmesh/node/node-a' },
    `the mesh peer, over mTLS, within 1 s (bound ${boundMs} ms, 10x before)`,
  );
});
