// The PKI of a test with one mTLS listener: a CA, the listening node's certificate (for `ip`) and a
// peer node's, written as ca.pem, cert.pem and key.pem in `dir` (the paths a config names).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CertificateAuthority, createCa, issueNodeCertificate, type Pem } from '../../src/tls/generate.js';

export async function writeListenerPki(
  dir: string,
  ip: string,
  names: { node: string; peer: string } = { node: 'node-1', peer: 'node-2' },
): Promise<{ ca: CertificateAuthority; node: Pem; peer: Pem }> {
  const ca = createCa({ commonName: 'test CA', days: 1 });
  const node = issueNodeCertificate(ca, 'hostmesh', { name: names.node, ip }, 1);
  const peer = issueNodeCertificate(ca, 'hostmesh', { name: names.peer }, 1);
  await writeFile(join(dir, 'ca.pem'), ca.certPem);
  await writeFile(join(dir, 'cert.pem'), node.certPem);
  await writeFile(join(dir, 'key.pem'), node.keyPem);
  return { ca, node, peer };
}
