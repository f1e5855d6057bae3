// test/helpers/test-keys.ts: once imported, the 2048-bit RSA keys made in the process, through a
// named import of node:crypto (as src/ makes them) or the module object, sync, callback or
// promisified, are 1024-bit; other key types and sizes are left alone; the certificates made with
// them still work for mutual TLS. (tls/inspect.test.ts checks that generate.ts makes 2048-bit keys
// without it.) If this stopped working the suite would only get slower, so it is checked here.

import '../helpers/test-keys.js';
import crypto, { generateKeyPair, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import { promisify } from 'node:util';
import t from 'tap';
import { createCa, issueNodeCertificate } from '../../src/tls/generate.js';
import { TEST_RSA_BITS } from '../helpers/test-keys.js';

const bits = (key: crypto.KeyObject): number | undefined => key.asymmetricKeyDetails?.modulusLength;

t.test('2048-bit RSA requests make 1024-bit keys, every way of asking', async (t) => {
  t.equal(TEST_RSA_BITS, 1024);
  t.equal(bits(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey), 1024, 'named import, sync');
  t.equal(bits(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey), 1024, 'module object, sync');
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  t.equal(bits(privateKey), 1024, 'promisified');
  const viaCallback = await new Promise<crypto.KeyObject>((resolve, reject) =>
    crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))),
  );
  t.equal(bits(viaCallback), 1024, 'callback');
  t.equal(bits(generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey), 512, 'another size is left alone');
  t.equal(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'another type too');
});

t.test('certificates made with them carry 1024-bit keys and work for mutual TLS', async (t) => {
  const ca = createCa({ commonName: 'test-keys CA', days: 1 });
  const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-a', ip: '127.0.0.1' }, 1);
  t.equal(bits(new X509Certificate(node.certPem).publicKey), 1024);
  t.equal(bits(new X509Certificate(ca.certPem).publicKey), 1024);
  const server = tls.createServer({ cert: node.certPem, key: node.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (s) => s.end('hi'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const client = tls.connect({ host: '127.0.0.1', port, servername: 'hostmesh', ca: ca.certPem, cert: node.certPem, key: node.keyPem });
  let got = '';
  client.setEncoding('utf8').on('data', (c: string) => (got += c));
  await once(client, 'end');
  t.ok(client.authorized, 'the server certificate verifies against the CA');
  t.equal(got, 'hi', 'the handshake with client certificates completed');
});
