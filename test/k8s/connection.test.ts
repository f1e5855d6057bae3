// Reaching the API: in-cluster over HTTPS with the cluster CA and a token re-read from its file
// (rotation needs no restart), a kubeconfig with a client certificate, a kubeconfig with a token,
// and plain host:port (kubectl proxy).

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { K8sApiError, K8sClient } from '../../src/k8s/client.js';
import { inClusterConnection, kubeconfigConnection, plainConnection, resolveConnection } from '../../src/k8s/connection.js';
import { collectionPath, SERVICES } from '../../src/k8s/resources.js';
import { createCa, issueCertificate } from '../../src/tls/generate.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { service } from '../helpers/k8s.js';

const ca = createCa({ commonName: 'test cluster CA', days: 1 });
const serverCert = issueCertificate(ca, { commonName: 'kube-apiserver', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server', days: 1 });
const clientCert = issueCertificate(ca, { commonName: 'developer', usage: 'client', days: 1 });
const path = collectionPath(SERVICES, 'default');

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-k8s-conn-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('in-cluster: HTTPS with the cluster CA; a rotated token is used by the next request', async (t) => {
  const api = await new FakeApiServer({ tls: { key: serverCert.keyPem, cert: serverCert.certPem }, tokens: ['token-1'] }).start();
  t.teardown(() => api.close());
  api.apply(service('default', 'world'));
  const sa = join(dir, 'sa');
  await import('node:fs/promises').then((fs) => fs.mkdir(sa));
  await writeFile(join(sa, 'ca.crt'), ca.certPem);
  await writeFile(join(sa, 'token'), 'token-1\n');
  const conn = inClusterConnection({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, sa);
  t.equal(conn.baseUrl, `https://127.0.0.1:${api.port}`);
  const client = new K8sClient(conn);
  t.teardown(() => client.close());
  t.equal((await client.list(path)).items.length, 1);
  // The kubelet rotates the projected token: the API now accepts only the new one.
  api.setTokens(['token-2']);
  await writeFile(join(sa, 'token'), 'token-2\n');
  t.equal((await client.list(path)).items.length, 1, 'the new token is read for the next request');
  t.equal(api.requests.at(-1)?.auth, 'Bearer token-2');
  await writeFile(join(sa, 'token'), 'revoked\n');
  const err401 = await client.list(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err401 instanceof K8sApiError && err401.status === 401, 'a wrong token is refused with 401');
  t.throws(() => inClusterConnection({}, sa), /not running in a cluster/);
});

t.test('kubeconfig with a client certificate (inline data) and the cluster CA (a file)', async (t) => {
  const api = await new FakeApiServer({ tls: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem }, tokens: ['only-for-others'] }).start();
  t.teardown(() => api.close());
  api.apply(service('default', 'world'));
  await writeFile(join(dir, 'cluster-ca.pem'), ca.certPem);
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: dev',
      'clusters:',
      '- name: test',
      '  cluster:',
      `    server: https://127.0.0.1:${api.port}`,
      '    certificate-authority: cluster-ca.pem',
      'users:',
      '- name: me',
      '  user:',
      `    client-certificate-data: ${b64(clientCert.certPem)}`,
      `    client-key-data: ${b64(clientCert.keyPem)}`,
      'contexts:',
      '- name: dev',
      '  context: {cluster: test, user: me}',
      '',
    ].join('\n'),
  );
  const client = new K8sClient(kubeconfigConnection(kubeconfig));
  t.teardown(() => client.close());
  t.equal((await client.list(path)).items.length, 1);
  t.equal(api.requests.at(-1)?.clientCert, 'developer', 'authenticated by the client certificate');
  t.equal(api.requests.at(-1)?.auth, undefined);
  t.equal(resolveConnection({}, { KUBECONFIG: kubeconfig }).describe, `kubeconfig ${kubeconfig} context dev`, 'KUBECONFIG is used outside a cluster');
  t.throws(() => kubeconfigConnection(kubeconfig, 'nope'), /context nope not found/);
});

t.test('kubeconfig with a token', async (t) => {
  const api = await new FakeApiServer({ tokens: ['s3cret'] }).start();
  t.teardown(() => api.close());
  const kubeconfig = join(dir, 'kubeconfig-token');
  await writeFile(
    kubeconfig,
    `current-context: c\nclusters: [{name: k, cluster: {server: "http://127.0.0.1:${api.port}/"}}]\nusers: [{name: u, user: {token: s3cret}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n`,
  );
  const client = new K8sClient(kubeconfigConnection(kubeconfig));
  t.teardown(() => client.close());
  t.same((await client.list(path)).items, []);
  t.equal(api.requests.at(-1)?.auth, 'Bearer s3cret');
});

t.test('plain host:port, as a kubectl proxy sidecar (Linkerd 1 configs)', async (t) => {
  const api = await new FakeApiServer().start();
  t.teardown(() => api.close());
  api.apply(service('default', 'world'));
  const conn = resolveConnection({ host: '127.0.0.1', port: api.port }, { KUBERNETES_SERVICE_HOST: '10.0.0.1' });
  t.equal(conn.baseUrl, `http://127.0.0.1:${api.port}`, 'host/port win over in-cluster');
  const client = new K8sClient(conn);
  t.teardown(() => client.close());
  const list = await client.list(path);
  t.equal(list.items[0]?.metadata.name, 'world');
  t.equal(list.resourceVersion, String(api.resourceVersion));
  t.equal(plainConnection('::1', 8001).baseUrl, 'http://[::1]:8001', 'IPv6 hosts are bracketed');
  const err404 = await client.list('/api/v1/namespaces/default/widgets').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err404 instanceof K8sApiError && err404.status === 404, 'an unknown resource is a 404');
});
