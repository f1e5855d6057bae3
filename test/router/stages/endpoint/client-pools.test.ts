// Per-prefix client TLS (io.l5d.static): pools for a prefix's settings originate TLS with its
// commonName as servername and name check, trust its CAs, and never fall back to plaintext.

import '../../../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createCa, issueCertificate } from '../../../../src/tls/generate.js';
import { ClientPools } from '../../../../src/router/stages/endpoint/client-pools.js';
import { EndpointPools } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { RouterParams } from '../../../../src/router/settings/static-params.js';
import { parsePath } from '../../../../src/dtab/parse.js';

const HOST = '127.0.0.5';
const ca = createCa({ commonName: 'external CA', days: 1 });
const serverCert = issueCertificate(ca, { commonName: 'api.external.test', dnsNames: ['api.external.test'], usage: 'server', days: 1 });
const clientCert = issueCertificate(ca, { commonName: 'hostmesh-egress', usage: 'client', days: 1 });
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-client-pools-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await writeFile(join(dir, 'ca.pem'), ca.certPem);
await writeFile(join(dir, 'client.pem'), clientCert.certPem);
await writeFile(join(dir, 'client.key'), clientCert.keyPem, { mode: 0o600 });

const seen: { servername: string | false | null; clientCn: unknown }[] = [];
const server = https.createServer(
  { cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false },
  (req, res) => {
    const socket = req.socket as TLSSocket;
    seen.push({ servername: socket.servername, clientCn: socket.getPeerCertificate().subject?.CN });
    res.end('over tls');
  },
);
await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
const port = (server.address() as { port: number }).port;

function setup(commonName: string): { params: RouterParams; pools: ClientPools } {
  const client = {
    loadBalancer: { kind: 'p2c' as const },
    configs: [
      {
        prefix: '/$/inet/{host}/*',
        tls: { commonName, trustCerts: [join(dir, 'ca.pem')], clientAuth: { certPath: join(dir, 'client.pem'), keyPath: join(dir, 'client.key') } },
      },
    ],
  };
  const plain = new EndpointPools(undefined);
  const pools = new ClientPools(plain, new RouterParams(undefined, { loadBalancer: { kind: 'p2c' } }).forClient(parsePath('/x')));
  t.teardown(async () => {
    await pools.close();
    await plain.close();
  });
  return { params: new RouterParams(undefined, client), pools };
}

t.test('a prefix TLS config: TLS with its commonName as servername, its CA and client certificate', async (t) => {
  const { params, pools } = setup('api.external.test');
  const settings = params.forClient(parsePath(`/$/inet/${HOST}/${port}`));
  const chosen = pools.for(settings);
  t.not(chosen, pools.router, 'not the router’s plaintext pools');
  t.ok(chosen.tls);
  const res = await chosen.get({ host: HOST, port, meta: {} }).pool.request({ method: 'GET', path: '/' });
  t.equal(await res.body.text(), 'over tls');
  t.same(seen.at(-1), { servername: 'api.external.test', clientCn: 'hostmesh-egress' });
  t.equal(pools.for(params.forClient(parsePath(`/$/inet/${HOST}/${port}`))), chosen, 'the same settings share pools');
});

t.test('a {host} commonName is filled from the bound id', async (t) => {
  const { params, pools } = setup('{host}');
  const settings = params.forClient(parsePath(`/$/inet/api.external.test/${port}`));
  t.equal(settings.tls?.commonName, 'api.external.test');
  t.ok(pools.for(settings).tls);
});

t.test('a wrong commonName fails the request; nothing is sent in plaintext', async (t) => {
  const { params, pools } = setup('other.external.test');
  const before = seen.length;
  const chosen = pools.for(params.forClient(parsePath(`/$/inet/${HOST}/${port}`)));
  const err = await chosen
    .get({ host: HOST, port, meta: {} })
    .pool.request({ method: 'GET', path: '/' })
    .then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
  t.match(err?.code, /ERR_TLS_CERT_ALTNAME_INVALID/);
  t.equal(seen.length, before, 'the server saw no request');
});

t.test('names from requests: pools for distinct settings are capped, the oldest retired', async (t) => {
  const plain = new EndpointPools(undefined);
  let evicted = 0;
  const pools = new ClientPools(
    plain,
    { loadBalancer: { kind: 'p2c' } },
    { maxClients: 4, paramsEvents: { paramsEvicted: () => evicted++ }, tlsOptions: () => ({}) },
  );
  t.teardown(async () => {
    await pools.close();
    await plain.close();
  });
  const params = new RouterParams(undefined, { loadBalancer: { kind: 'p2c' }, configs: [{ prefix: '/$/inet/{host}', tls: { commonName: '{host}' } }] });
  for (let i = 0; i < 50; i++) pools.for(params.forClient(parsePath(`/$/inet/h${i}.test/443`)));
  t.equal(pools.size, 4);
  t.equal(evicted, 46);
});
