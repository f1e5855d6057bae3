// The identity issuer refuses every request it must not sign (docs/identity.md), over real HTTPS,
// against the test API server's TokenReview and pod reads: each refusal has its reason in the
// answer and in hostmesh_identity_refused_total, and nothing is signed for it.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import t from 'tap';
import { buildCsr } from '../../src/identity-issuer/csr.js';
import { API_AUDIENCE } from '../fixtures/k8s-identity-routes.js';
import { makePki, startIssuerEnv as start, TRUST_DOMAIN } from '../helpers/identity-issuer.js';

const pki = makePki();
const startIssuerEnv = () => start({ pki });

function forgeKey(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const k = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  return { privateKey: k, publicKey: forge.pki.setRsaPublicKey(k.n, k.e) };
}

const key = forgeKey();
const nodeId = (n: string): string => `spiffe://${TRUST_DOMAIN}/node/${n}`;

async function metric(env: Awaited<ReturnType<typeof start>>, line: string): Promise<number> {
  const text = await env.server.registry.metrics();
  const m = text.split('\n').find((l) => l.startsWith(line + ' '));
  return m === undefined ? Number.NaN : Number(m.slice(line.length + 1));
}

t.test('a router pod gets a certificate for its own node, and only that name', async (t) => {
  const env = await startIssuerEnv();
  t.teardown(() => env.close());
  const podA = env.pod('hostmesh-a', 'node-a');
  const r = await env.ask(env.token(podA), buildCsr(key, nodeId('node-a')));
  t.equal(r.status, 200, String(r.body['message'] ?? 'issued'));
  const leaf = new X509Certificate(r.body['certificate'] as string);
  t.equal(leaf.subjectAltName, `URI:${nodeId('node-a')}`, 'one URI SAN, the node');
  t.notOk(leaf.subject, 'no subject name');
  t.notOk(leaf.ca, 'a leaf');
  t.match(leaf.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
  const issuer = new X509Certificate((r.body['chain'] as string[])[0] as string);
  t.ok(leaf.verify(issuer.publicKey), 'signed by the issuer');
  t.ok(issuer.verify(new X509Certificate(env.pki.anchor.certPem).publicKey), 'issuer signed by the anchor');
  const life = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
  t.ok(life <= 3_600_000 + 61_000 && life >= 3_600_000, `short-lived (${life} ms)`);
  t.equal(env.routes.reviews.at(-1)?.audiences?.[0], 'hostmesh-identity', 'TokenReview asked with our audience');
  t.equal(await metric(env, 'hostmesh_identity_issued_total'), 1);
});

t.test('every request it must not sign is refused, logged with its reason, counted, never signed', async (t) => {
  const env = await startIssuerEnv();
  t.teardown(() => env.close());
  const podA = env.pod('hostmesh-a', 'node-a');
  const podB = env.pod('hostmesh-b', 'node-b');
  const stranger = env.pod('app', 'node-a', { namespace: 'default', serviceAccount: 'default' });
  const otherSa = env.pod('impostor', 'node-a', { serviceAccount: 'other' });
  const pending = env.pod('hostmesh-p', 'node-c', { phase: 'Pending' });
  const csrA = buildCsr(key, nodeId('node-a'));

  const cases: { what: string; token: string; csr: string; status: number; reason: string }[] = [
    { what: 'a token the API server never made', token: 'eyJhbGciOiJSUzI1NiJ9.e30.bm9wZQ', csr: csrA, status: 401, reason: 'token_invalid' },
    { what: 'an expired token', token: env.token(podA, { expiresAt: Date.now() - 1000 }), csr: csrA, status: 401, reason: 'token_invalid' },
    {
      what: 'a token for the API server (default audience)',
      token: env.token(podA, { audiences: [API_AUDIENCE] }),
      csr: csrA,
      status: 401,
      reason: 'wrong_audience',
    },
    { what: 'a token bound to no pod', token: env.token(podA, { unbound: true }), csr: csrA, status: 403, reason: 'not_pod_bound' },
    { what: "another namespace's pod", token: env.token(stranger), csr: csrA, status: 403, reason: 'wrong_namespace' },
    { what: 'a pod of another service account', token: env.token(otherSa), csr: csrA, status: 403, reason: 'wrong_service_account' },
    { what: 'a pod on node-b asking for node-a', token: env.token(podB), csr: csrA, status: 403, reason: 'csr_wrong_name' },
    {
      what: 'a CSR asking for an extra DNS name',
      token: env.token(podA),
      csr: buildCsr(key, nodeId('node-a'), { dns: ['kubernetes.default.svc'] }),
      status: 403,
      reason: 'csr_wrong_name',
    },
    { what: 'a CSR with a subject name', token: env.token(podA), csr: buildCsr(key, nodeId('node-a'), { cn: 'admin' }), status: 403, reason: 'csr_wrong_name' },
    { what: 'a pod not running', token: env.token(pending), csr: buildCsr(key, nodeId('node-c')), status: 403, reason: 'pod_not_running' },
    { what: 'no token', token: '', csr: csrA, status: 400, reason: 'bad_request' },
    {
      what: 'not a CSR',
      token: env.token(podA),
      csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      status: 400,
      reason: 'csr_invalid',
    },
  ];
  // No proof of possession: the CSR names key B's public key but is signed with key A.
  {
    const other = forgeKey();
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = key.publicKey;
    csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames: [{ type: 6, value: nodeId('node-a') }] }] }]);
    csr.sign(other.privateKey, forge.md.sha256.create());
    cases.push({
      what: 'a CSR not signed by its own key',
      token: env.token(podA),
      csr: forge.pki.certificationRequestToPem(csr),
      status: 400,
      reason: 'csr_signature',
    });
  }
  for (const c of cases) {
    const r = await env.ask(c.token, c.csr);
    t.equal(r.status, c.status, `${c.what}: ${r.status}`);
    t.equal(r.body['error'], c.reason, `${c.what}: ${String(r.body['message'])}`);
    t.notOk('certificate' in r.body, `${c.what}: nothing signed`);
  }
  // A pod deleted after its token was minted: TokenReview itself refuses the token.
  const gone = env.pod('hostmesh-gone', 'node-a');
  const goneToken = env.token(gone);
  env.api.delete('Pod', 'hostmesh', 'hostmesh-gone');
  const r = await env.ask(goneToken, csrA);
  t.equal(r.body['error'], 'token_invalid', 'a token of a deleted pod');

  t.equal(await metric(env, 'hostmesh_identity_issued_total'), 0, 'nothing was signed');
  t.equal(await metric(env, 'hostmesh_identity_refused_total{reason="csr_wrong_name"}'), 3);
  t.equal(await metric(env, 'hostmesh_identity_refused_total{reason="token_invalid"}'), 3);
  t.equal(await metric(env, 'hostmesh_identity_refused_total{reason="wrong_audience"}'), 1);
});

t.test('a replayed token and CSR get nothing the second time', async (t) => {
  const env = await startIssuerEnv();
  t.teardown(() => env.close());
  const podA = env.pod('hostmesh-a', 'node-a');
  const token = env.token(podA);
  const csr = buildCsr(key, nodeId('node-a'));
  t.equal((await env.ask(token, csr)).status, 200);
  const again = await env.ask(token, csr);
  t.equal(again.status, 409);
  t.equal(again.body['error'], 'replayed');
  t.equal((await env.ask(token, buildCsr(forgeKey(), nodeId('node-a')))).status, 200, 'the same token with a new key is a new request');
});

t.test('the issuer answers 503 while the API server is down, and signs nothing', async (t) => {
  const env = await startIssuerEnv();
  t.teardown(() => env.close());
  const podA = env.pod('hostmesh-a', 'node-a');
  env.api.setDown(true);
  const r = await env.ask(env.token(podA), buildCsr(key, nodeId('node-a')));
  t.equal(r.status, 503);
  t.equal(r.body['error'], 'api_unavailable');
  env.api.setDown(false);
  t.equal((await env.ask(env.token(podA), buildCsr(key, nodeId('node-a')))).status, 200, 'served again once the API is back');
});
