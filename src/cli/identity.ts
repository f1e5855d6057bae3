// `hostmesh identity`: the identity issuer (docs/identity.md), what the hostmesh-identity
// Deployment runs. It signs node certificates for hostmesh router pods that prove themselves with
// their projected ServiceAccount token, and nothing else.

import type { Command } from 'commander';
import { resolveConnection } from '../k8s/connection.js';
import { createLogger } from '../log.js';
import type { IssuerServer } from '../identity-issuer/server.js';

interface IdentityCliOptions {
  issuerCert: string;
  issuerKey: string;
  trustDomain: string;
  audience: string;
  routerNamespace: string;
  routerServiceAccount: string;
  lifetimeHours: string;
  ip: string;
  port: string;
  adminIp: string;
  adminPort: string;
  dnsName: string[];
}

const repeat = (v: string, acc: string[]): string[] => [...acc, v];

function number(value: string, what: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`hostmesh identity: ${what} must be a number in ${min}..${max}, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return n;
}

export function registerIdentity(program: Command): void {
  program
    .command('identity')
    .description('run the identity issuer: node certificates for hostmesh routers, checked with TokenReview')
    .option('--issuer-cert <file>', "the issuer's certificate (a CA under the trust anchor; Secret mount)", '/var/run/secrets/hostmesh/issuer/tls.crt')
    .option('--issuer-key <file>', "the issuer's RSA key", '/var/run/secrets/hostmesh/issuer/tls.key')
    .option('--trust-domain <name>', 'node identities are spiffe://<trust domain>/node/<node>', 'cluster.local')
    .option('--audience <aud>', "the routers' projected token audience", 'hostmesh-identity')
    .option('--router-namespace <ns>', 'namespace of the router pods', 'hostmesh')
    .option('--router-service-account <sa>', 'service account of the router pods', 'hostmesh')
    .option('--lifetime-hours <h>', 'node certificate lifetime in hours', '24')
    .option('--ip <address>', 'HTTPS listen address', '0.0.0.0')
    .option('--port <port>', 'HTTPS port', '8443')
    .option('--admin-ip <address>', 'admin listen address (/ready, /metrics)', '0.0.0.0')
    .option('--admin-port <port>', 'admin port', '9990')
    .option('--dns-name <name>', 'a DNS name of the serving certificate (repeatable; default the Service names)', repeat, [] as string[])
    .action(async (o: IdentityCliOptions) => {
      // Loaded here, not at the top: `hostmesh run` registers this command and never runs it.
      const { KubeIdentityApi } = await import('../identity-issuer/kube-api.js');
      const { IssuerServer } = await import('../identity-issuer/server.js');
      const logger = createLogger();
      const api = new KubeIdentityApi(resolveConnection({}));
      const dnsNames =
        o.dnsName.length > 0
          ? o.dnsName
          : [`hostmesh-identity.${o.routerNamespace}.svc`, `hostmesh-identity.${o.routerNamespace}.svc.cluster.local`, 'hostmesh-identity'];
      let server: IssuerServer;
      try {
        server = await new IssuerServer({
          api,
          policy: {
            trustDomain: o.trustDomain,
            audience: o.audience,
            namespace: o.routerNamespace,
            serviceAccount: o.routerServiceAccount,
            lifetimeMs: number(o.lifetimeHours, '--lifetime-hours', 1, 24 * 30) * 3_600_000,
          },
          issuerCertFile: o.issuerCert,
          issuerKeyFile: o.issuerKey,
          dnsNames,
          ip: o.ip,
          port: number(o.port, '--port', 1, 65535),
          adminIp: o.adminIp,
          adminPort: number(o.adminPort, '--admin-port', 1, 65535),
          logger,
        }).start();
      } catch (err) {
        logger.error({ error: (err as Error).message }, 'identity issuer cannot start');
        await api.close();
        process.exitCode = 1;
        return;
      }
      const stop = (): void => {
        void server.close().then(() => api.close());
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
