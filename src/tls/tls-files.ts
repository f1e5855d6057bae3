// Reads the certificate files a router's config names into Node TLS options: the incoming
// server's (mTLS when requireClientAuth) and the outgoing client's (peer verified by commonName).
// The options are checked by building a context once, so a bad file fails here with its path
// (at start, in `run --check` and on reload) instead of as a bare OpenSSL code later. Versions and
// suites follow tls/policy.ts (forward-secret AEAD unless the config lists others).

import { statSync } from 'node:fs';
import {
  checkServerIdentity,
  createSecureContext,
  type ConnectionOptions,
  type PeerCertificate,
  type SecureContext,
  type SecureContextOptions,
  type TlsOptions,
} from 'node:tls';
import { readInputFileSync } from '../fs/read-input.js';
import { certificateIdentity, certificatePurposeProblem } from './peer-certificate.js';
import { anyPurposeWarning, ownCertificateVerdict } from './own-certificate.js';
import { tlsPolicy } from './policy.js';

/** A server's TLS as this module reads it (paths absolute; config/ maps the YAML onto it). */
export interface ServerTlsSpec {
  /** Both absent: the node certificate (identity.issuer). */
  readonly certPath?: string | undefined;
  readonly keyPath?: string | undefined;
  readonly caCertPath?: string | undefined;
  /** Linkerd 1: CA certificates sent after the certificate (its chain to the root). */
  readonly intermediateCertsPath?: string | undefined;
  readonly requireClientAuth: boolean;
  /** A TLS handshake must finish within this, else the socket is destroyed (default 10 s). */
  readonly handshakeTimeoutMs?: number | undefined;
  /** Unfinished handshakes at once; over it the oldest of the source holding most is closed (default 512). */
  readonly maxPendingHandshakes?: number | undefined;
  /** Linkerd 1's TLS versions and suites (policy.ts; default TLS 1.2-1.3, forward-secret AEAD). */
  readonly protocols?: readonly string[] | undefined;
  readonly ciphers?: readonly string[] | undefined;
}

/** A client's TLS as this module reads it: how peers are verified, and what this router offers them. */
export interface ClientTlsSpec {
  readonly commonName?: string | undefined;
  readonly trustCerts?: readonly string[] | undefined;
  readonly trustCertsBundle?: string | undefined;
  readonly disableValidation?: boolean | undefined;
  readonly clientAuth?: { readonly certPath: string; readonly keyPath: string; readonly intermediateCertsPath?: string | undefined } | undefined;
  readonly protocols?: readonly string[] | undefined;
  readonly ciphers?: readonly string[] | undefined;
}

function read(path: string, what: string): Buffer {
  // Regular files of at most 1 MiB only: a key path pointing at a FIFO or /dev/zero must not hang.
  const bytes = readInputFileSync(path, what);
  if (!bytes.includes('-----BEGIN ')) throw new Error(`${what} ${path} is not PEM (no -----BEGIN line)`);
  return bytes;
}

/**
 * One line per private key file that users other than the router can read: others at all, or the
 * group when it is not one of the router's own groups (a Kubernetes Secret mounted 0440 with the
 * pod's fsGroup is fine). Names the path, never the content.
 */
export function keyFileWarnings(paths: readonly string[]): string[] {
  const groups = new Set(typeof process.getgroups === 'function' ? [process.getgid?.(), ...process.getgroups()] : []);
  const out: string[] = [];
  for (const path of paths) {
    let mode: number;
    let gid: number;
    try {
      ({ mode, gid } = statSync(path));
    } catch {
      continue; // reading it reports the problem
    }
    const byOthers = (mode & 0o004) !== 0;
    const byGroup = (mode & 0o040) !== 0 && !groups.has(gid);
    if (byOthers || byGroup) {
      out.push(
        `private key ${path} is readable by ${byOthers ? 'all users' : `group ${gid}`} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); make it 0600 or 0400`,
      );
    }
  }
  return out;
}

/**
 * One warning per own certificate without extended key usage (accepted for any purpose, RFC
 * 5280), said at start and by `run --check`. Unreadable files are reported by the TLS options.
 */
export function anyPurposeWarnings(server: readonly (ServerTlsSpec | undefined)[], client: ClientTlsSpec | undefined): string[] {
  const own: [string, 'client' | 'server'][] = [
    ...server.flatMap((s): [string, 'server'][] => (s?.certPath !== undefined ? [[s.certPath, 'server']] : [])),
    ...(client?.clientAuth !== undefined ? [[client.clientAuth.certPath, 'client'] as [string, 'client']] : []),
  ];
  const out: string[] = [];
  for (const [path, purpose] of own) {
    let pem: Buffer;
    try {
      pem = read(path, 'certificate');
    } catch {
      continue;
    }
    if (ownCertificateVerdict(pem, purpose).kind === 'any-purpose') out.push(anyPurposeWarning(path, purpose));
  }
  return out;
}

/** The private key files a router's TLS config names. */
export function tlsKeyFiles(server: readonly (ServerTlsSpec | undefined)[], client: ClientTlsSpec | undefined): string[] {
  return [...server.flatMap((s) => (s?.keyPath !== undefined ? [s.keyPath] : [])), ...(client?.clientAuth !== undefined ? [client.clientAuth.keyPath] : [])];
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
export function serverTlsFiles(cfg: ServerTlsSpec): string[] {
  return [
    ...(cfg.certPath !== undefined ? [cfg.certPath] : []),
    ...(cfg.keyPath !== undefined ? [cfg.keyPath] : []),
    ...(cfg.caCertPath !== undefined ? [cfg.caCertPath] : []),
    ...(cfg.intermediateCertsPath !== undefined ? [cfg.intermediateCertsPath] : []),
  ];
}

/** The files a client TLS config reads (what a reload watches). */
export function clientTlsFiles(cfg: ClientTlsSpec): string[] {
  return [
    ...(cfg.trustCerts ?? []),
    ...(cfg.trustCertsBundle !== undefined ? [cfg.trustCertsBundle] : []),
    ...(cfg.clientAuth !== undefined ? [cfg.clientAuth.certPath, cfg.clientAuth.keyPath] : []),
    ...(cfg.clientAuth?.intermediateCertsPath !== undefined ? [cfg.clientAuth.intermediateCertsPath] : []),
  ];
}

/** Linkerd 1's intermediateCertsPath: the chain sent after the leaf (Node takes the leaf first, then its issuers, in one PEM). */
function withIntermediates(cert: Buffer, intermediatesPath: string | undefined): Buffer {
  if (intermediatesPath === undefined) return cert;
  return Buffer.concat([cert, Buffer.from('\n'), read(intermediatesPath, 'intermediate certificates')]);
}

/** Reads the router's own certificate, refusing one whose extended key usage excludes `purpose`. */
function ownCertificate(path: string, what: string, purpose: 'client' | 'server'): Buffer {
  const pem = read(path, what);
  const verdict = ownCertificateVerdict(pem, purpose);
  if (verdict.kind === 'refused') throw new Error(`${what} ${path}: ${verdict.reason}`);
  return pem;
}

/** A certificate (chain) and key held in memory: the node certificate from identity.issuer. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
}

/**
 * Server options from the config's files, or, for a block without certPath/keyPath, from the node
 * certificate in memory (none yet: handshakes fail until one is issued, and /ready says so).
 */
export function serverTlsOptions(cfg: ServerTlsSpec, node?: TlsMaterial): TlsOptions {
  const policy = tlsPolicy(cfg.protocols, cfg.ciphers);
  const own =
    cfg.certPath !== undefined && cfg.keyPath !== undefined
      ? { cert: withIntermediates(ownCertificate(cfg.certPath, 'certificate', 'server'), cfg.intermediateCertsPath), key: read(cfg.keyPath, 'key') }
      : node;
  const options: TlsOptions = {
    ...(own !== undefined ? { cert: own.cert, key: own.key } : {}),
    requestCert: cfg.requireClientAuth || cfg.caCertPath !== undefined,
    rejectUnauthorized: cfg.requireClientAuth,
    minVersion: policy.minVersion,
    maxVersion: policy.maxVersion,
    ciphers: policy.ciphers,
    honorCipherOrder: true, // our order (AES-GCM, then ChaCha20) rather than the client's
  };
  if (cfg.caCertPath !== undefined) options.ca = read(cfg.caCertPath, 'CA certificate');
  return usable(options, cfg.certPath, cfg.keyPath);
}

/**
 * Client options. `node`: the router holds a node certificate (identity.issuer): it is the client
 * certificate when the block names none, and without a commonName a peer must present a node
 * identity of the trust domain (`spiffe://<trust domain>/node/<node>`).
 */
export function clientTlsOptions(cfg: ClientTlsSpec, node?: { readonly material: TlsMaterial | undefined; readonly trustDomain: string }): ConnectionOptions {
  const policy = tlsPolicy(cfg.protocols, cfg.ciphers);
  const options: ConnectionOptions = { minVersion: policy.minVersion, maxVersion: policy.maxVersion, ciphers: policy.ciphers };
  const cas: Buffer[] = [];
  for (const p of cfg.trustCerts ?? []) cas.push(read(p, 'trusted certificate'));
  if (cfg.trustCertsBundle !== undefined) cas.push(read(cfg.trustCertsBundle, 'trust bundle'));
  if (cas.length > 0) options.ca = cas;
  if (cfg.clientAuth !== undefined) {
    options.cert = withIntermediates(ownCertificate(cfg.clientAuth.certPath, 'client certificate', 'client'), cfg.clientAuth.intermediateCertsPath);
    options.key = read(cfg.clientAuth.keyPath, 'client key');
  } else if (node?.material !== undefined) {
    options.cert = node.material.cert;
    options.key = node.material.key;
  }
  if (cfg.disableValidation === true) options.rejectUnauthorized = false;
  const commonName = cfg.commonName;
  // Peers are reached by IP, but verified as the mesh name (Linkerd 1's commonName).
  if (commonName !== undefined) options.servername = commonName;
  // Runs after the chain verified: the peer must also hold a server leaf (OpenSSL alone accepts a
  // CA certificate as the server's); one without extended key usage is accepted and counted.
  options.checkServerIdentity = (host: string, cert: PeerCertificate) => {
    const problem = certificatePurposeProblem(cert, 'server');
    if (problem !== undefined) return new Error(`peer certificate refused: ${problem}`);
    if (commonName === undefined && node !== undefined) {
      const id = certificateIdentity(cert.raw, undefined);
      const prefix = `spiffe://${node.trustDomain}/node/`;
      if (id.kind === 'ok' && id.id.startsWith(prefix) && id.id.length > prefix.length && !id.id.slice(prefix.length).includes('/')) return undefined;
      return new Error(`peer certificate refused: not a node identity of ${node.trustDomain} (${id.kind === 'ok' ? id.id : id.reason})`);
    }
    return checkServerIdentity(commonName ?? host, cert);
  };
  return usable(options, cfg.clientAuth?.certPath, cfg.clientAuth?.keyPath);
}
