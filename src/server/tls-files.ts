// Reads the certificate files a router's config names into Node TLS options: the incoming
// server's (mTLS when requireClientAuth) and the outgoing client's (peer verified by commonName).

import { readFileSync } from 'node:fs';
import { checkServerIdentity, type ConnectionOptions, type TlsOptions } from 'node:tls';
import type { ClientTlsConfig, ServerTlsConfig } from '../config/types.js';

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

export function serverTlsOptions(cfg: ServerTlsConfig): TlsOptions {
  const options: TlsOptions = {
    cert: read(cfg.certPath, 'certificate'),
    key: read(cfg.keyPath, 'key'),
    requestCert: cfg.requireClientAuth || cfg.caCertPath !== undefined,
    rejectUnauthorized: cfg.requireClientAuth,
    minVersion: 'TLSv1.2',
  };
  if (cfg.caCertPath !== undefined) options.ca = read(cfg.caCertPath, 'CA certificate');
  return options;
}

export function clientTlsOptions(cfg: ClientTlsConfig): ConnectionOptions {
  const options: ConnectionOptions = { minVersion: 'TLSv1.2' };
  const cas: Buffer[] = [];
  for (const p of cfg.trustCerts ?? []) cas.push(read(p, 'trusted certificate'));
  if (cfg.trustCertsBundle !== undefined) cas.push(read(cfg.trustCertsBundle, 'trust bundle'));
  if (cas.length > 0) options.ca = cas;
  if (cfg.clientAuth !== undefined) {
    options.cert = read(cfg.clientAuth.certPath, 'client certificate');
    options.key = read(cfg.clientAuth.keyPath, 'client key');
  }
  if (cfg.disableValidation === true) options.rejectUnauthorized = false;
  const commonName = cfg.commonName;
  if (commonName !== undefined) {
    // Peers are reached by IP, but verified as the mesh name (Linkerd 1's commonName).
    options.servername = commonName;
    options.checkServerIdentity = (_host, cert) => checkServerIdentity(commonName, cert);
  }
  return options;
}
