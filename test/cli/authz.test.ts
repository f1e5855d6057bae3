import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runAuthzCheck, runAuthzExplain } from '../../src/cli/authz.js';
import { runCli } from '../helpers/cli.js';

const SAMPLE = 'k8s/examples/policy.yaml';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

t.test('explain: allow by rule, deny by default, audit; exit 0 / 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'authz-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'p.yaml');
  await writeFile(
    file,
    `namespaces: {payments: deny, staging: {default: audit, allowDtabOverride: false}}
rules:
- name: web-to-payments
  from: [{namespace: web}]
  to: [{namespace: payments, service: api, ports: [8080], paths: [/v1]}]
`,
  );
  const allow = capture();
  t.equal(await runAuthzExplain({ policy: file, from: 'web/frontend', to: 'payments/api:8080', path: '/v1/charges' }, allow.io), 0);
  t.same(allow.out.slice(0, 2), ['allow', 'decided by: rule web-to-payments']);

  const deny = capture();
  t.equal(await runAuthzExplain({ policy: file, from: 'web/frontend', to: 'payments/api:8080', path: '/admin' }, deny.io), 1);
  t.same(deny.out.slice(0, 2), ['deny', 'decided by: the default of namespace payments (deny)']);
  t.match(
    deny.out[2],
    "reason: no rule allows frontend.web.serviceaccount.identity.hostmesh.cluster.local to payments/api:8080; namespace 'payments' defaults to deny",
  );

  const audit = capture();
  t.equal(await runAuthzExplain({ policy: file, from: 'staging/ci', to: 'staging/db', json: true }, audit.io), 0);
  const j = JSON.parse(audit.out.join('\n'));
  t.match(j, { decision: 'allow', audit: true, default: 'audit', dtabOverrideAllowed: false });

  const unauth = capture();
  t.equal(
    await runAuthzExplain({ policy: file, from: 'unauthenticated', to: '/#/io.l5d.k8s/payments/8080/api', path: '/v1' }, unauth.io),
    1,
    'a bound name gives namespace, service and port',
  );
  t.match(unauth.out[2], 'unauthenticated caller to payments/api:8080');

  const usage = capture();
  t.equal(await runAuthzExplain({ policy: file, from: 'web frontend', to: 'payments/api' }, usage.io), 2);
  t.match(usage.err[0], /--from web frontend: expected/);
  t.equal(await runAuthzExplain({ policy: file, from: 'web/a', to: 'payments' }, capture().io), 2);
  t.equal(await runAuthzExplain({ policy: join(dir, 'nope.yaml'), from: 'web/a', to: 'a/b' }, capture().io), 2);
});

t.test('check: ok, file:line:col errors (exit 1), missing file (exit 2)', async (t) => {
  const ok = capture();
  t.equal(await runAuthzCheck(SAMPLE, ok.io), 0, ok.err.join('\n'));
  t.match(ok.out[0], `${SAMPLE}: ok (1 rule, trust domain cluster.local)`);
  const dir = await mkdtemp(join(tmpdir(), 'authz-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'namespaces: {}\nrules:\n- name: r\n  from: [{namespace: a}]\n  to: [{namespace: b, method: [GET]}]\n');
  const b = capture();
  t.equal(await runAuthzCheck(bad, b.io), 1);
  t.same(b.err, [`${bad}:5:23: rules[0].to[0].method: unknown key 'method'`]);
  t.equal(await runAuthzCheck(join(dir, 'nope.yaml'), capture().io), 2);
});

t.test('the hostmesh binary: explain exit codes, usage errors exit 2', async (t) => {
  // Two children at once: each costs seconds through the TypeScript loader when dist is stale.
  const [deny, usage] = await Promise.all([
    runCli(['authz', 'explain', '-p', SAMPLE, '--from', 'default/default', '--to', 'default/world-v2:http', '--json']),
    runCli(['authz', 'explain', '-p', SAMPLE, '--to', 'default/world']),
  ]);
  t.equal(deny.code, 1, deny.stderr);
  t.match(JSON.parse(deny.stdout), { decision: 'deny', default: 'deny', request: { dest: { namespace: 'default', service: 'world-v2', port: 'http' } } });
  t.equal(usage.code, 2, 'a missing required option is a usage error');
  t.match(usage.stderr, /--from/);
});
