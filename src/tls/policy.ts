// The TLS versions and cipher suites a router offers and accepts: Linkerd 1's `protocols` and
// `ciphers` keys (JSSE/IANA or OpenSSL names) mapped to Node's minVersion/maxVersion/ciphers. Pure.

import { getCiphers, type SecureVersion } from 'node:tls';

/**
 * The default: every TLS 1.3 suite (all are forward-secret AEAD) and, for TLS 1.2, ECDHE with
 * AES-GCM or ChaCha20-Poly1305 only (no static RSA key exchange, no CBC, no SHA-1 MAC), ECDSA
 * and RSA certificates both (cert-manager issues ECDSA, `hostmesh certs` RSA).
 */
const DEFAULT_TLS13_SUITES: readonly string[] = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const DEFAULT_TLS12_SUITES: readonly string[] = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

export type ProtocolName = { readonly kind: 'ok'; readonly version: SecureVersion } | { readonly kind: 'refused' } | { readonly kind: 'unknown' };

/** A `protocols` entry: TLSv1.2/TLSv1.3 (any case); older names are known and refused. */
export function classifyProtocol(name: string): ProtocolName {
  const n = name.trim().toLowerCase();
  if (n === 'tlsv1.2') return { kind: 'ok', version: 'TLSv1.2' };
  if (n === 'tlsv1.3') return { kind: 'ok', version: 'TLSv1.3' };
  if (['tlsv1', 'tlsv1.0', 'tlsv1.1', 'sslv3', 'sslv2', 'sslv2hello'].includes(n)) return { kind: 'refused' };
  return { kind: 'unknown' };
}

export type CipherName =
  | { readonly kind: 'ok'; readonly openssl: string; readonly tls13: boolean; readonly weakness?: string }
  | { readonly kind: 'unavailable'; readonly openssl: string }
  | { readonly kind: 'unknown' };

/** IANA key exchange (+ authentication) -> OpenSSL name prefix. */
const KEY_EXCHANGE: Readonly<Record<string, string>> = {
  RSA: '',
  ECDHE_RSA: 'ECDHE-RSA-',
  ECDHE_ECDSA: 'ECDHE-ECDSA-',
  DHE_RSA: 'DHE-RSA-',
  DHE_DSS: 'DHE-DSS-',
  ECDH_RSA: 'ECDH-RSA-',
  ECDH_ECDSA: 'ECDH-ECDSA-',
};

/** IANA bulk cipher + MAC -> OpenSSL name suffix. */
const BULK: Readonly<Record<string, string>> = {
  AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  CHACHA20_POLY1305_SHA256: 'CHACHA20-POLY1305',
  AES_128_CCM: 'AES128-CCM',
  AES_256_CCM: 'AES256-CCM',
  AES_128_CBC_SHA: 'AES128-SHA',
  AES_256_CBC_SHA: 'AES256-SHA',
  AES_128_CBC_SHA256: 'AES128-SHA256',
  AES_256_CBC_SHA256: 'AES256-SHA256',
  AES_256_CBC_SHA384: 'AES256-SHA384',
  '3DES_EDE_CBC_SHA': 'DES-CBC3-SHA',
  RC4_128_SHA: 'RC4-SHA',
  RC4_128_MD5: 'RC4-MD5',
  NULL_SHA: 'NULL-SHA',
  NULL_SHA256: 'NULL-SHA256',
  CAMELLIA_128_CBC_SHA: 'CAMELLIA128-SHA',
  CAMELLIA_256_CBC_SHA: 'CAMELLIA256-SHA',
};

const TLS13_SUITES = new Set([
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_CCM_SHA256',
  'TLS_AES_128_CCM_8_SHA256',
]);

let available: Set<string> | undefined;
/** OpenSSL names this Node's OpenSSL implements (upper case). */
function availableSuites(): Set<string> {
  available ??= new Set(getCiphers().map((c) => c.toUpperCase()));
  return available;
}

/** The OpenSSL name of a JSSE/IANA (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `SSL_...`) or OpenSSL name. */
function toOpenssl(name: string): string | undefined {
  const n = name.trim().toUpperCase().replace(/^SSL_/, 'TLS_');
  if (TLS13_SUITES.has(n)) return n;
  const iana = /^TLS_([A-Z0-9_]+?)_WITH_([A-Z0-9_]+)$/.exec(n);
  if (iana !== null) {
    const kx = KEY_EXCHANGE[iana[1] as string];
    const bulk = BULK[iana[2] as string];
    if (kx === undefined || bulk === undefined) return undefined;
    // OpenSSL's one irregular family: DHE with 3DES is EDH-..., not DHE-...
    if (bulk === 'DES-CBC3-SHA' && kx.startsWith('DHE-')) return `EDH-${kx.slice(4)}${bulk}`;
    return kx + bulk;
  }
  return /^[A-Z0-9]+(-[A-Z0-9]+)+$/.test(n) ? n : undefined;
}

function weaknessOf(openssl: string): string | undefined {
  const fs = /^(ECDHE|DHE|EDH)-/.test(openssl);
  const aead = /GCM|CHACHA20|CCM/.test(openssl);
  if (!fs && !aead) return 'has no forward secrecy and is not AEAD (CBC)';
  if (!fs) return 'has no forward secrecy';
  if (!aead) return 'is not AEAD (CBC)';
  return undefined;
}

/** A `ciphers` entry: an OpenSSL suite this Node offers, a known one it lacks, or not a suite. */
export function classifyCipher(name: string): CipherName {
  const openssl = toOpenssl(name);
  if (openssl === undefined) return { kind: 'unknown' };
  if (TLS13_SUITES.has(openssl)) return availableSuites().has(openssl) ? { kind: 'ok', openssl, tls13: true } : { kind: 'unavailable', openssl };
  if (!availableSuites().has(openssl)) {
    // A well-formed OpenSSL-style name that OpenSSL does not have: unknown unless it came from a
    // recognised IANA name (then it is a real suite this build dropped, such as 3DES).
    return /^(TLS|SSL)_/i.test(name.trim()) ? { kind: 'unavailable', openssl } : { kind: 'unknown' };
  }
  const weakness = weaknessOf(openssl);
  return { kind: 'ok', openssl, tls13: false, ...(weakness !== undefined ? { weakness } : {}) };
}

export interface TlsPolicy {
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
  /** Node's `ciphers` string: TLS 1.3 suite names and the TLS 1.2 OpenSSL list together. */
  readonly ciphers: string;
}

/** What a list of names means, with the problems (errors) and notes (warnings) per index. */
interface Reading {
  readonly policy: TlsPolicy | undefined;
  readonly problems: { readonly path: readonly (string | number)[]; readonly message: string }[];
  readonly notes: { readonly path: readonly (string | number)[]; readonly message: string }[];
}

function read(protocols: readonly string[] | undefined, ciphers: readonly string[] | undefined): Reading {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const notes: { path: (string | number)[]; message: string }[] = [];
  let tls12 = true;
  let tls13 = true;
  if (protocols !== undefined) {
    tls12 = tls13 = false;
    protocols.forEach((p, i) => {
      const v = classifyProtocol(p);
      if (v.kind === 'unknown') problems.push({ path: ['protocols', i], message: `unknown TLS protocol '${p}' (expected TLSv1.2 or TLSv1.3)` });
      else if (v.kind === 'refused') notes.push({ path: ['protocols', i], message: `${p} is not offered: hostmesh speaks TLS 1.2 and 1.3 only` });
      else if (v.version === 'TLSv1.2') tls12 = true;
      else tls13 = true;
    });
    if (problems.length === 0 && !tls12 && !tls13)
      problems.push({ path: ['protocols'], message: 'none of these protocols is offered by hostmesh (TLSv1.2, TLSv1.3)' });
  }
  let suites12 = [...DEFAULT_TLS12_SUITES];
  let suites13 = [...DEFAULT_TLS13_SUITES];
  if (ciphers !== undefined) {
    const listed12: string[] = [];
    const listed13: string[] = [];
    ciphers.forEach((c, i) => {
      const v = classifyCipher(c);
      if (v.kind === 'unknown')
        problems.push({
          path: ['ciphers', i],
          message: `unknown cipher suite '${c}' (IANA names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, or OpenSSL names)`,
        });
      else if (v.kind === 'unavailable') notes.push({ path: ['ciphers', i], message: `${c} is not available in this build's OpenSSL: ignored` });
      else {
        (v.tls13 ? listed13 : listed12).push(v.openssl);
        if (v.weakness !== undefined) notes.push({ path: ['ciphers', i], message: `${c} ${v.weakness}: accepted because it is listed` });
      }
    });
    suites12 = listed12;
    // All TLS 1.3 suites are forward-secret AEAD: a list naming none of them (a Linkerd 1 list
    // from before TLS 1.3) leaves TLS 1.3 with all of its suites rather than switching it off.
    if (listed13.length > 0) suites13 = listed13;
    if (suites12.length === 0) tls12 = false;
    if (problems.length === 0 && !tls12 && !tls13) problems.push({ path: ['ciphers'], message: 'no listed suite is usable with the listed protocols' });
  }
  const policy: TlsPolicy | undefined =
    problems.length > 0
      ? undefined
      : {
          minVersion: tls12 ? 'TLSv1.2' : 'TLSv1.3',
          maxVersion: tls13 ? 'TLSv1.3' : 'TLSv1.2',
          ciphers: [...suites13, ...suites12].join(':'),
        };
  return { policy, problems, notes };
}

/** The policy for validated `protocols`/`ciphers` (defaults when absent). */
export function tlsPolicy(protocols?: readonly string[], ciphers?: readonly string[]): TlsPolicy {
  const r = read(protocols, ciphers);
  if (r.policy === undefined) throw new Error(r.problems.map((p) => p.message).join('; '));
  return r.policy;
}

/** Errors in `protocols`/`ciphers`, with their path below the tls object (for the schema). */
export function tlsPolicyProblems(protocols?: readonly string[], ciphers?: readonly string[]): Reading['problems'] {
  return read(protocols, ciphers).problems;
}

/** Warnings (refused old protocols, weak or unavailable suites), with their path below the tls object. */
export function tlsPolicyNotes(protocols?: readonly string[], ciphers?: readonly string[]): Reading['notes'] {
  return read(protocols, ciphers).notes;
}
