// Identity issuance at scale: 1,000 router pods on 1,000 nodes renew their node certificates
// against one issuer (the test API server answering TokenReview and pod reads on loopback).
// Reports issuance latency (p50/p99/max as a router sees it, keys made beforehand so only the
// request is timed) and the issuer's CPU per certificate (process CPU while the issuer alone runs
// in this process: the API server runs in a child). `npm run bench:identity`; NODES=, CONCURRENCY=.

import { fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import { Agent, request } from 'undici';
import { buildCsr } from '../../src/identity-issuer/csr.js';
import { KubeIdentityApi } from '../../src/identity-issuer/kube-api.js';
import { IssuerServer } from '../../src/identity-issuer/server.js';
import { silentLogger } from '../../src/log.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { IdentityRoutes } from '../fixtures/k8s-identity-routes.js';
import { makePki } from '../helpers/identity-issuer.js';

const NODES = Number(process.env['NODES'] ?? 1000);
const CONCURRENCY = Number(process.env['CONCURRENCY'] ?? 16);

if (process.argv[2] === 'api') {
  // The child: the API server with NODES router pods and a token for each, sent to the parent.
  const api = await new FakeApiServer({ tokens: ['issuer-token'] }).start();
  const routes = new IdentityRoutes(api);
  const tokens: string[] = [];
  for (let i = 0; i < NODES; i++) {
    const pod = api.apply({
      kind: 'Pod',
      metadata: { name: `hostmesh-${i}`, namespace: 'hostmesh' },
      spec: { serviceAccountName: 'hostmesh', nodeName: `node-${i}` },
      status: { phase: 'Running' },
    });
    tokens.push(
      routes.token({
        namespace: 'hostmesh',
        serviceAccount: 'hostmesh',
        pod: { name: pod.metadata.name, uid: pod.metadata.uid ?? '' },
        audiences: ['hostmesh-identity'],
        expiresAt: Date.now() + 3_600_000,
      }),
    );
  }
  process.send?.({ url: api.url, tokens });
} else {
  const child = fork(fileURLToPath(import.meta.url), ['api'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { url, tokens } = await new Promise<{ url: string; tokens: string[] }>((resolve) =>
    child.once('message', (m) => resolve(m as { url: string; tokens: string[] })),
  );
  const pki = makePki();
  const kube = new KubeIdentityApi({ baseUrl: url, authorization: async () => 'Bearer issuer-token', describe: 'bench' }, { connections: CONCURRENCY });
  const server = await new IssuerServer({
    api: kube,
    policy: { trustDomain: 'cluster.local', audience: 'hostmesh-identity', namespace: 'hostmesh', serviceAccount: 'hostmesh', lifetimeMs: 86_400_000 },
    issuerCertFile: pki.issuerCertPath,
    issuerKeyFile: pki.issuerKeyPath,
    dnsNames: ['localhost'],
    ip: '127.0.0.1',
    port: 0,
    adminIp: '127.0.0.1',
    adminPort: 0,
    maxConcurrent: CONCURRENCY * 2,
    logger: silentLogger(),
  }).start();
  // Routers' keys and CSRs, made before timing (each router makes its own, elsewhere). A few keys
  // shared round robin: the issuer's work does not depend on which key a CSR carries.
  const keys = Array.from({ length: 16 }, () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const k = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
    return { privateKey: k, publicKey: forge.pki.setRsaPublicKey(k.n, k.e) };
  });
  const csrs = tokens.map((_, i) => buildCsr(keys[i % keys.length] as (typeof keys)[number], `spiffe://cluster.local/node/node-${i}`));
  // The bench client runs in this process too; its TLS handshakes are kept out of the CPU count by
  // reusing connections (keep-alive), as a router's renewals would not share one, this is the
  // issuer's cost per certificate plus a small client share.
  const agent = new Agent({ connect: { ca: pki.anchor.certPem, servername: 'localhost', timeout: 60_000 }, connections: CONCURRENCY, headersTimeout: 120_000 });
  const origin = `https://127.0.0.1:${server.address.port}`;
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < tokens.length) {
        const i = next++;
        const start = process.hrtime.bigint();
        try {
          const res = await request(`${origin}/v1/certificates`, {
            method: 'POST',
            dispatcher: agent,
            headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json' },
            body: JSON.stringify({ csr: csrs[i] }),
          });
          await res.body.text();
          if (res.statusCode !== 200) failed++;
        } catch {
          failed++;
        }
        latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
    }),
  );
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(
    JSON.stringify(
      {
        nodes: NODES,
        concurrency: CONCURRENCY,
        failed,
        wallMs: Math.round(wallMs),
        certificatesPerSecond: Math.round((NODES / wallMs) * 1000),
        latencyMs: { p50: +q(0.5).toFixed(1), p99: +q(0.99).toFixed(1), max: +(latencies.at(-1) ?? 0).toFixed(1) },
        issuerProcessCpuMsPerCertificate: +(cpuMs / NODES).toFixed(2),
      },
      null,
      2,
    ),
  );
  await agent.close();
  await server.close();
  await kube.close();
  child.kill();
}
