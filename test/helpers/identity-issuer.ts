// A running identity issuer for tests: a PKI made now (anchor -> issuer), the test API server with
// TokenReview and pod reads, router pods on nodes, and projected tokens for them.

import './test-keys.js'; // 1024-bit RSA keys for the PKI made here (test-keys.ts): its users do not test key size
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { Agent } from 'undici';
import { FakeApiServer, type KObject } from '../fixtures/k8s-api-server.js';
import { IdentityRoutes } from '../fixtures/k8s-identity-routes.js';
import { KubeIdentityApi } from '../../src/identity-issuer/kube-api.js';
import { IssuerServer } from '../../src/identity-issuer/server.js';
import { createCa, createIntermediateCa, type CertificateAuthority } from '../../src/tls/generate.js';
import type { Logger } from '../../src/log.js';
import { silentLogger } from '../../src/log.js';

export const AUDIENCE = 'hostmesh-identity';
export const TRUST_DOMAIN = 'cluster.local';

export interface Pki {
  readonly dir: string;
  readonly anchor: CertificateAuthority;
  readonly issuer: CertificateAuthority;
  readonly bundlePath: string;
  readonly issuerCertPath: string;
  readonly issuerKeyPath: string;
}

export function makePki(name = 'hostmesh anchor'): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'hostmesh-identity-'));
  const anchor = createCa({ commonName: name });
  const issuer = createIntermediateCa(anchor, { commonName: 'hostmesh identity issuer' });
  const pki = {
    dir,
    anchor,
    issuer,
    bundlePath: join(dir, 'ca-bundle.crt'),
    issuerCertPath: join(dir, 'issuer.crt'),
    issuerKeyPath: join(dir, 'issuer.key'),
  };
  writeFileSync(pki.bundlePath, anchor.certPem);
  writeFileSync(pki.issuerCertPath, issuer.certPem);
  writeFileSync(pki.issuerKeyPath, issuer.keyPem, { mode: 0o600 });
  return pki;
}

export interface IssuerEnv {
  readonly pki: Pki;
  readonly api: FakeApiServer;
  readonly routes: IdentityRoutes;
  readonly server: IssuerServer;
  readonly url: string;
  /** A pod (router pods: namespace hostmesh, service account hostmesh, Running). */
  pod(name: string, node: string, o?: { namespace?: string; serviceAccount?: string; phase?: string }): KObject;
  /** A projected token for a pod made by pod() (audience hostmesh-identity, an hour). */
  token(pod: KObject, o?: { audiences?: string[]; expiresAt?: number; unbound?: boolean; serviceAccount?: string }): string;
  /** POSTs a request as a router would; status and JSON body. */
  ask(token: string, csr: string): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startIssuerEnv(o: { lifetimeMs?: number; now?: () => number; logger?: Logger; pki?: Pki } = {}): Promise<IssuerEnv> {
  const pki = o.pki ?? makePki();
  const api = await new FakeApiServer({ tokens: ['issuer-token'] }).start();
  const routes = new IdentityRoutes(api, o.now ?? Date.now);
  const kube = new KubeIdentityApi({ baseUrl: api.url, authorization: async () => 'Bearer issuer-token', describe: 'test api' });
  const server = await new IssuerServer({
    api: kube,
    policy: { trustDomain: TRUST_DOMAIN, audience: AUDIENCE, namespace: 'hostmesh', serviceAccount: 'hostmesh', lifetimeMs: o.lifetimeMs ?? 3_600_000 },
    issuerCertFile: pki.issuerCertPath,
    issuerKeyFile: pki.issuerKeyPath,
    dnsNames: ['localhost', 'hostmesh-identity.hostmesh.svc'],
    ip: '127.0.0.1',
    port: 0,
    adminIp: '127.0.0.1',
    adminPort: 0,
    ...(o.now !== undefined ? { now: o.now } : {}),
    pollMs: 200,
    logger: o.logger ?? silentLogger(),
  }).start();
  const url = `https://localhost:${server.address.port}`;
  const agent = new Agent({ connect: { ca: pki.anchor.certPem, servername: 'localhost' } });
  let closed = false;
  return {
    pki,
    api,
    routes,
    server,
    url,
    pod(name, node, po = {}) {
      return api.apply({
        kind: 'Pod',
        metadata: { name, namespace: po.namespace ?? 'hostmesh', labels: { 'app.kubernetes.io/name': 'hostmesh' } },
        spec: { serviceAccountName: po.serviceAccount ?? 'hostmesh', nodeName: node, containers: [{ name: 'hostmesh', image: 'hostmesh' }] },
        status: { phase: po.phase ?? 'Running', podIP: '10.0.0.1' },
      });
    },
    token(pod, to = {}) {
      const ns = pod.metadata.namespace ?? '';
      const spec = pod['spec'] as { serviceAccountName: string };
      return routes.token({
        namespace: ns,
        serviceAccount: to.serviceAccount ?? spec.serviceAccountName,
        ...(to.unbound === true ? {} : { pod: { name: pod.metadata.name, uid: pod.metadata.uid ?? '' } }),
        audiences: to.audiences ?? [AUDIENCE],
        expiresAt: to.expiresAt ?? (o.now ?? Date.now)() + 3_600_000,
      });
    },
    async ask(token, csr) {
      const res = await request(`${url}/v1/certificates`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ csr }),
      });
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.close();
      await server.close();
      await kube.close();
      await api.close();
    },
  };
}
