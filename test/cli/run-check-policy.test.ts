// `hostmesh run --check` validates the authorization policy the config names, as the router would
// at start: a typo in the policy is a file:line:col error and exit 1, a good policy passes. The
// check runs in-process (runCheck, what the binary's `run --check` calls; test/cli/run.test.ts runs
// `run --check` through the binary).

import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInProcess } from '../helpers/cli.js';
import { runCheck } from '../../src/cli/run.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-check-policy-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await writeFile(
  join(dir, 'config.yaml'),
  [
    'authz:',
    '  policyFile: policy.yaml',
    'routers:',
    '- protocol: http',
    '  label: outgoing',
    '  dtab: /svc => /$/inet/127.0.0.1/8080;',
    '  servers: [{port: 4140}]',
    '',
  ].join('\n'),
);

t.test('a bad policy fails --check with its position', async (t) => {
  await writeFile(join(dir, 'policy.yaml'), 'namespaces: {}\nrules:\n  - name: r\n    from: [{namespace: web}]\n    to: [{namespace: api, method: [GET]}]\n');
  const r = await runInProcess((io) => runCheck(join(dir, 'config.yaml'), [], io));
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /policy\.yaml:5:\d+: rules\[0\]\.to\[0\]\.method: unknown key 'method'/);
});

t.test('a good policy passes', async (t) => {
  await writeFile(join(dir, 'policy.yaml'), 'namespaces: {"*": deny}\nrules:\n  - name: r\n    from: [{namespace: web}]\n    to: [{namespace: api}]\n');
  const r = await runInProcess((io) => runCheck(join(dir, 'config.yaml'), [], io));
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /ok \(1 router\(s\): outgoing\)/);
});
