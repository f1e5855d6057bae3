// Importing this module makes the RSA keys made in this process 1024-bit instead of 2048-bit: the
// certificates of a test are still made at test time (src/tls/generate.ts, the demo's PKI, the
// identity issuer and the routers' own keys), only cheaper. A 2048-bit key costs 0.1-0.5 s of CPU
// on an idle core (seconds on a loaded one) and was half of the CPU of a typical mesh test file;
// a 1024-bit key costs a tenth of it. Node's TLS (OpenSSL 3, security level 1) accepts 1024-bit RSA
// certificates, so handshakes, verification and identities behave as with 2048-bit ones.
//
// Import it FIRST in a file whose tests are not about key size (before any src/ module, so a module
// that wraps `generateKeyPair` at load time wraps this one). Files that check key sizes (the
// generator's own tests, `certs inspect` output) do not import it; nor do CLI children, which make
// their keys as the binary does.
//
// Only under tap (TAP=1 in every test process and its children): the benchmarks import the same
// helpers and must measure the key sizes a user runs (nginx refuses a 1024-bit certificate).

import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { promisify } from 'node:util';

/** The modulus size of the RSA keys made while this module is loaded. */
export const TEST_RSA_BITS = 1024;

type KeyOptions = { modulusLength?: number } | undefined;

function smaller(type: unknown, options: KeyOptions): KeyOptions {
  return type === 'rsa' && options?.modulusLength === 2048 ? { ...options, modulusLength: TEST_RSA_BITS } : options;
}

const marker = Symbol.for('hostmesh.test-keys');
const patched = crypto as typeof crypto & { [marker]?: true };
if (process.env['TAP'] === '1' && patched[marker] !== true) {
  patched[marker] = true;
  const sync = crypto.generateKeyPairSync as (type: unknown, options: KeyOptions) => unknown;
  const async = crypto.generateKeyPair as (type: unknown, options: KeyOptions, callback: (...args: unknown[]) => void) => void;
  const asyncPromisified = promisify(crypto.generateKeyPair) as (type: unknown, options: KeyOptions) => Promise<unknown>;
  const generateKeyPairSync = (type: unknown, options: KeyOptions): unknown => sync(type, smaller(type, options));
  const generateKeyPair = (type: unknown, options: KeyOptions, callback: (...args: unknown[]) => void): void => async(type, smaller(type, options), callback);
  // promisify(generateKeyPair) resolves to { publicKey, privateKey } through this custom form.
  Object.defineProperty(generateKeyPair, promisify.custom, { value: (type: unknown, options: KeyOptions) => asyncPromisified(type, smaller(type, options)) });
  (crypto as { generateKeyPairSync: unknown }).generateKeyPairSync = generateKeyPairSync;
  (crypto as { generateKeyPair: unknown }).generateKeyPair = generateKeyPair;
  // Named imports of node:crypto (`import { generateKeyPairSync } from 'node:crypto'`) follow.
  syncBuiltinESMExports();
}
