// The PKI of a test with one mTLS listener: a CA, the listening node's certificate (for `ip`) and a
// peer node's, written as ca.pem, cert.pem and key.pem in `dir` (the paths a config names).

import { writeFile } from 'node:fs/promises';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
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

/**
 * TLS client options of a peer router calling the listener: trusts `ca`, shows `peer` (when given),
 * and checks the listener's certificate for the mesh name `hostmesh`, as routers do.
 */
export function asPeer(ca: CertificateAuthority, peer?: Pem): ConnectionOptions {
  return {
    ca: ca.certPem,
    ...(peer !== undefined ? { cert: peer.certPem, key: peer.keyPem } : {}),
    servername: 'hostmesh',
    checkServerIdentity: (_h, c) => checkServerIdentity('hostmesh', c),
  };
}
