// The deploy path as a user takes it (test/helpers/manifest-cases.ts): every manifest rendered by
// the real `kubectl kustomize`, validated and checked against the code. Without kubectl the file
// says so loudly and is counted as skipped (a failure under CI=true): helpers/requires.ts.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import t from 'tap';
import { fileNeeds } from '../helpers/requires.js';

if (fileNeeds(t, 'kubectl', 'the manifest tests (test/deploy/manifests.test.ts) render k8s/ with kubectl kustomize')) {
  await import('../helpers/manifest-cases.js');
}
