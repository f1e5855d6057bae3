// The TLS files every relay hop of the forwarders bench reads (relay-child.ts): a CA, and one
// certificate for the name `hostmesh` that each hop serves and shows as client, written in `dir`.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueCertificate } from '../../../src/tls/generate.js';

/** [ca, certificate, key] paths; written once per directory (later calls reuse the files). */
export function relayPki(dir: string): readonly [string, string, string] {
  const files = [join(dir, 'relay-ca.crt'), join(dir, 'relay.crt'), join(dir, 'relay.key')] as const;
  if (files.every((f) => existsSync(f))) return files;
  const ca = createCa({ commonName: 'relay CA' });
  const leaf = issueCertificate(ca, { commonName: 'hostmesh', dnsNames: ['hostmesh'] });
  writeFileSync(files[0], ca.certPem);
  writeFileSync(files[1], leaf.certPem);
  writeFileSync(files[2], leaf.keyPem);
  return files;
}
