// Writes the demo's certificates: a throwaway mesh CA and one certificate per node, made on the
// spot (never reused: the demo shows how identities work, it protects nothing).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa, issueNodeCertificate } from '../tls/generate.js';

export interface DemoPki {
  readonly ca: string;
  readonly nodes: Map<string, { cert: string; key: string }>;
}

export async function writeDemoPki(dir: string, meshName: string, nodes: readonly { name: string; ip: string }[]): Promise<DemoPki> {
  await mkdir(dir, { recursive: true });
  const ca = createCa({ commonName: `${meshName} demo CA`, days: 2 });
  const caPath = join(dir, 'ca.pem');
  await writeFile(caPath, ca.certPem);
  const out = new Map<string, { cert: string; key: string }>();
  for (const node of nodes) {
    const pem = issueNodeCertificate(ca, meshName, node, 2);
    const cert = join(dir, `${node.name}.pem`);
    const key = join(dir, `${node.name}.key`);
    await writeFile(cert, pem.certPem);
    await writeFile(key, pem.keyPem, { mode: 0o600 });
    out.set(node.name, { cert, key });
  }
  return { ca: caPath, nodes: out };
}
