// Reads the certificate files a router's config names into Node TLS options: the incoming
// server's (mTLS when requireClientAuth) and the outgoing client's (peer verified by commonName).
// The options are checked by building a context once, so a bad file fails here with its path
// (at start, in `run --check` and on reload) instead of as a bare OpenSSL code later.

import { readFileSync } from 'node:fs';
import { checkServerIdentity, createSecureContext, type ConnectionOptions, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import type { ClientTlsConfig, ServerTlsConfig } from '../config/types.js';

function read(path: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
  if (!bytes.includes('-----BEGIN ')) throw new Error(`${what} ${path} is not PEM (no -----BEGIN line)`);
  return bytes;
}

/**
 * Builds the context once (so a bad file fails here, naming the files when the key does not fit)
 * and returns the options with it, for callers that can reuse it (client connections).
 */
function usable<T extends SecureContextOptions>(options: T, certPath: string | undefined, keyPath: string | undefined): T & { secureContext: SecureContext } {
  try {
    return { ...options, secureContext: createSecureContext(options) };
  } catch (err) {
    const message = (err as Error).message;
    if (/key values mismatch/.test(message)) throw new Error(`key ${keyPath ?? '?'} does not belong to certificate ${certPath ?? '?'}`);
    throw new Error(`${certPath ?? 'TLS files'}: ${message}`);
  }
}

/** The files a server TLS config reads (what a reload watches). */
export function serverTlsFiles(cfg: ServerTlsConfig): string[] {
  return [cfg.certPath, cfg.keyPath, ...(cfg.caCertPath !== undefined ? [cfg.caCertPath] : [])];
}

/** The files a client TLS config reads (what a reload watches). */
export function clientTlsFiles(cfg: ClientTlsConfig): string[] {
  return [...(cfg.trustCerts ?? []), ...(cfg.trustCertsBundle !== undefined ? [cfg.trustCertsBundle] : []), ...(cfg.clientAuth !== undefined ? [cfg.clientAuth.certPath, cfg.clientAuth.keyPath] : [])];
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
  return usable(options, cfg.certPath, cfg.keyPath);
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
  return usable(options, cfg.clientAuth?.certPath, cfg.clientAuth?.keyPath);
}
