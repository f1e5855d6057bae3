// Linkerd 1's intermediateCertsPath (server tls, client tls.clientAuth): a certificate issued by an
// intermediate CA is sent with its chain, so a peer that trusts only the root accepts it. The
// chain is made at test time with openssl (root -> intermediate -> leaf).

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { serverTlsOptions } from '../../src/tls/tls-files.js';
import { parseConfig } from '../../src/config/load.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-chain-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const f = (n: string): string => join(dir, n);
const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });

await writeFile(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
await writeFile(f('leaf.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:hostmesh\n');
ssl(
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-keyout',
  f('root.key'),
  '-out',
  f('root.pem'),
  '-days',
  '1',
  '-subj',
  '/CN=root',
  '-addext',
  'basicConstraints=critical,CA:TRUE',
  '-addext',
  'keyUsage=critical,keyCertSign,cRLSign',
);
ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('inter.key'), '-out', f('inter.csr'), '-subj', '/CN=intermediate');
ssl(
  'x509',
  '-req',
  '-in',
  f('inter.csr'),
  '-CA',
  f('root.pem'),
  '-CAkey',
  f('root.key'),
  '-CAcreateserial',
  '-out',
  f('inter.pem'),
  '-days',
  '1',
  '-extfile',
  f('ca.ext'),
);
ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=hostmesh');
ssl(
  'x509',
  '-req',
  '-in',
  f('leaf.csr'),
  '-CA',
  f('inter.pem'),
  '-CAkey',
  f('inter.key'),
  '-CAcreateserial',
  '-out',
  f('leaf.pem'),
  '-days',
  '1',
  '-extfile',
  f('leaf.ext'),
);

async function handshake(intermediateCertsPath?: string): Promise<string> {
  const server = tls.createServer(
    serverTlsOptions({
      certPath: f('leaf.pem'),
      keyPath: f('leaf.key'),
      requireClientAuth: false,
      ...(intermediateCertsPath ? { intermediateCertsPath } : {}),
    }),
    (s) => s.end(),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<string>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: readFileSync(f('root.pem')), servername: 'hostmesh' });
      c.on('secureConnect', () => {
        c.destroy();
        resolve('ok');
      });
      c.on('error', (err) => resolve(err.message));
    });
  } finally {
    server.close();
  }
}

t.test('the chain is sent: a client trusting only the root accepts the leaf', async (t) => {
  t.match(
    await handshake(),
    /unable to (get local issuer certificate|verify the first certificate)/,
    'without intermediateCertsPath the leaf alone is not enough',
  );
  t.equal(await handshake(f('inter.pem')), 'ok', 'with it the handshake succeeds');
});

t.test('config: intermediateCertsPath is a server tls and clientAuth key, resolved against the config directory', async (t) => {
  const { config, warnings } = parseConfig(
    `
routers:
- protocol: http
  servers: [{port: 4141, tls: {certPath: leaf.pem, keyPath: leaf.key, intermediateCertsPath: inter.pem}}]
  client: {tls: {commonName: hostmesh, clientAuth: {certPath: leaf.pem, keyPath: leaf.key, intermediateCertsPath: inter.pem}}}
`,
    f('l5d.yaml'),
  );
  t.equal(config.routers[0]?.servers[0]?.tls?.intermediateCertsPath, f('inter.pem'));
  t.equal(config.routers[0]?.client.tls?.clientAuth?.intermediateCertsPath, f('inter.pem'));
  t.same(warnings, []);
});
