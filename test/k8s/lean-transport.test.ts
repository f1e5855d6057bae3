// The Kubernetes API client and the node certificate's request run on the router's own HTTP/1.1
// pool (core/h1-pool.ts, Node's llhttp binding), not on undici's Client: undici's first request
// compiles its llhttp WebAssembly and keeps the instance and the compiled code for the process's
// life, ~2.5 MB of an idle router's RSS for a few watches and one CSR a day (docs/memory.md,
// session 7). What these calls do on the wire (watch streaming, bookmarks, 410, outages, TLS with
// the cluster CA and a rotated token) is tested in the other files of test/k8s and test/e2e.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { K8sApiError, K8sClient, type WatchEvent } from '../../src/k8s/client.js';
import { inClusterConnection } from '../../src/k8s/connection.js';
import { collectionPath, SERVICES } from '../../src/k8s/resources.js';
import { silentLogger } from '../../src/log.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { NodeCertificate } from '../../src/tls/node-certificate.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { service } from '../helpers/k8s.js';

const require = createRequire(import.meta.url);
/** undici's llhttp modules loaded in this process: undici requires them on its first connection. */
const undiciParsers = (): string[] => Object.keys(require.cache).filter((k) => /undici[\\/]lib[\\/]llhttp[\\/]llhttp/.test(k));

const ca = createCa({ commonName: 'test cluster CA', days: 1 });
const serverCert = issueCertificate(ca, { commonName: 'kube-apiserver', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server', days: 1 });
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-lean-transport-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('list, paged list, watch and an error status over HTTPS with the CA and token: undici never parses an answer', async (t) => {
  t.same(undiciParsers(), [], 'nothing loaded undici parsers before');
  const api = await new FakeApiServer({ tls: { key: serverCert.keyPem, cert: serverCert.certPem }, tokens: ['token-1'] }).start();
  t.teardown(() => api.close());
  api.apply(service('default', 'a'));
  api.apply(service('default', 'b'));
  await writeFile(join(dir, 'ca.crt'), ca.certPem);
  await writeFile(join(dir, 'token'), 'token-1\n');
  const client = new K8sClient(inClusterConnection({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, dir));
  t.teardown(() => client.close());
  const path = collectionPath(SERVICES, 'default');

  const list = await client.list(path);
  t.same(
    list.items.map((o) => o.metadata.name),
    ['a', 'b'],
  );
  const paged: string[] = [];
  const page = await client.listPage(path, { limit: '1' }, undefined, (o) => paged.push(o.metadata.name));
  t.same(paged, ['a']);
  t.not(page.continue, '', 'a continue token for the next page');

  const ac = new AbortController();
  const events = await client.watch(path, { resourceVersion: list.resourceVersion, allowWatchBookmarks: 'true' }, ac.signal);
  api.apply(service('default', 'c'));
  const seen: WatchEvent[] = [];
  for await (const e of events) {
    seen.push(e);
    break;
  }
  ac.abort();
  t.equal(seen[0]?.type, 'ADDED');
  t.equal((seen[0]?.object as { metadata: { name: string } }).metadata.name, 'c');

  await writeFile(join(dir, 'token'), 'revoked\n');
  const err = await client.list(path).catch((e: unknown) => e);
  t.ok(err instanceof K8sApiError && err.status === 401, 'a refused token is a K8sApiError with the status');
  t.ok(
    api.requests.every((r) => r.auth === 'Bearer token-1' || r.auth === 'Bearer revoked'),
    'every request carried the token',
  );
  t.same(undiciParsers(), [], "undici's llhttp was never loaded");
});

t.test("the node certificate's request to the issuer: TLS verified against the trust bundle, no undici parser", async (t) => {
  const issuerCert = issueCertificate(ca, { commonName: 'hostmesh-identity', dnsNames: ['issuer.test'], usage: 'server', days: 1 });
  const seen: { method?: string; url?: string; auth?: string; body: string }[] = [];
  const issuer = https.createServer({ key: issuerCert.keyPem, cert: issuerCert.certPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"denied","message":"not this time"}');
    });
  });
  await new Promise<void>((r) => issuer.listen(0, '127.0.0.1', r));
  t.teardown(() => issuer.close());
  const bundle = join(dir, 'bundle.pem');
  await writeFile(bundle, ca.certPem);
  const token = join(dir, 'sa-token');
  await writeFile(token, 'projected\n');
  const port = (issuer.address() as { port: number }).port;
  const cert = new NodeCertificate({
    url: `https://127.0.0.1:${port}`,
    serverName: 'issuer.test',
    tokenFile: token,
    trustBundle: bundle,
    trustDomain: 'cluster.local',
    nodeName: 'node-a',
    logger: silentLogger(),
  });
  t.teardown(() => cert.close());
  t.equal(await cert.renewNow(), false, 'the refusal is a failed attempt');
  t.equal(seen.length, 1, 'the request reached the issuer over TLS');
  t.equal(seen[0]?.method, 'POST');
  t.equal(seen[0]?.url, '/v1/certificates');
  t.equal(seen[0]?.auth, 'Bearer projected');
  t.match(JSON.parse(seen[0]?.body ?? '{}'), { csr: /BEGIN CERTIFICATE REQUEST/ });
  t.same(undiciParsers(), [], "undici's llhttp was never loaded");
});
