// The shipped router config (k8s/base/config/config.yaml) as a user who manages certificate files
// runs it: identity.issuer removed and the TLS blocks naming files (the paths --set fills in).
// Static files keep working beside issued node certificates; tests of them start from this.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { ROOT } from './manifests.js';

export function staticTlsConfig(dir: string): string {
  const doc = parseDocument(readFileSync(join(ROOT, 'k8s', 'base', 'config', 'config.yaml'), 'utf8'));
  doc.deleteIn(['identity', 'issuer']);
  doc.setIn(['routers', 0, 'client', 'tls', 'commonName'], 'hostmesh');
  doc.setIn(['routers', 0, 'client', 'tls', 'clientAuth'], doc.createNode({ certPath: '/tls/tls.crt', keyPath: '/tls/tls.key' }));
  doc.setIn(['routers', 1, 'servers', 0, 'tls', 'certPath'], '/tls/tls.crt');
  doc.setIn(['routers', 1, 'servers', 0, 'tls', 'keyPath'], '/tls/tls.key');
  // The h2 routers (4240/4241) likewise.
  doc.setIn(['routers', 2, 'client', 'tls', 'commonName'], 'hostmesh');
  doc.setIn(['routers', 2, 'client', 'tls', 'clientAuth'], doc.createNode({ certPath: '/tls/tls.crt', keyPath: '/tls/tls.key' }));
  doc.setIn(['routers', 3, 'servers', 0, 'tls', 'certPath'], '/tls/tls.crt');
  doc.setIn(['routers', 3, 'servers', 0, 'tls', 'keyPath'], '/tls/tls.key');
  const file = join(dir, 'static-tls-config.yaml');
  writeFileSync(file, doc.toString());
  return file;
}
