// Policy hot reload as Kubernetes does it: the ConfigMap mount's `..data` symlink is swapped. A
// valid version applies; a bad one is rejected with file:line:col, counted, and the old policy
// stays in force (so a typo cannot open a deny-by-default namespace).

import { clockWithNow } from '../../src/core/clock.js';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFile, PolicyWatcher } from '../../src/authz/policy-watcher.js';
import { PolicyError } from '../../src/authz/policy.js';
import { parsePolicy } from '../../src/authz/parse-policy.js';
import { parseCase } from '../helpers/authz-cases.js';

async function publish(mount: string, generation: string, text: string): Promise<void> {
  const dir = join(mount, `..${generation}`);
  await mkdir(dir);
  await writeFile(join(dir, 'policy.yaml'), text);
  await symlink(`..${generation}`, join(mount, '..data_tmp'));
  await rename(join(mount, '..data_tmp'), join(mount, '..data'));
}

const DENY = 'namespaces: {payments: deny}\nrules: []\n';
const ALLOW_WEB = 'namespaces: {payments: deny}\nrules:\n- {name: web, from: [{namespace: web}], to: [{namespace: payments}]}\n';
const webToPayments = parseCase('web/sa -> payments/api => allow').request;

t.test('a valid version applies, a bad one keeps the policy in force', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'hostmesh-policy-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await publish(root, 'gen1', DENY);
  const file = join(root, 'policy.yaml');
  await symlink('..data/policy.yaml', file);

  let clock = 1_000;
  const rejects: string[] = [];
  const applied: number[] = [];
  const initial = await loadPolicyFile(file);
  const w = new PolicyWatcher({
    file,
    initial,
    logger: silentLogger(),
    pollMs: 60_000,
    clock: clockWithNow(() => clock),
    onReject: (m) => rejects.push(m),
    onApply: (p) => applied.push(p.ruleCount),
  });
  t.teardown(() => w.close());
  t.equal(w.policy.decide(webToPayments).decision, 'deny');

  clock = 2_000;
  await publish(root, 'gen2', ALLOW_WEB);
  await w.check();
  t.equal(w.policy.decide(webToPayments).decision, 'allow', 'the new rule applies');
  t.same(applied, [1]);
  t.equal(w.status.lastAppliedAt, 2_000);

  // A typo: the rule's `from` misspelt. Rejected with its position; the allow rule stays.
  clock = 3_000;
  await publish(root, 'gen3', 'namespaces: {payments: deny}\nrules:\n- {name: web, form: [{namespace: web}], to: [{namespace: payments}]}\n');
  await w.check();
  t.equal(rejects.length, 1, 'counted once');
  t.match(rejects[0], `${file}:3:15: rules[0].form: unknown key 'form'`);
  t.equal(w.policy.decide(webToPayments).decision, 'allow', 'the previous policy stays in force');
  t.same(w.status, { applied: 1, rejected: 1, lastAppliedAt: 2_000, lastRejectedAt: 3_000, lastError: rejects[0] });

  // An emptied ConfigMap is a bad version too, not "no policy". A file read empty is taken once it
  // has stayed empty for the watcher's settle (fs/file-watcher.ts): the re-read it schedules reports it.
  await publish(root, 'gen4', '');
  await w.check();
  for (const until = Date.now() + 10_000; rejects.length < 2 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
  t.equal(rejects.length, 2);
  t.match(rejects[1], 'the policy is empty');
  t.equal(w.policy.decide(webToPayments).decision, 'allow');

  // The same bad bytes again are not a new version: no second count.
  await w.check();
  t.equal(rejects.length, 2);

  clock = 4_000;
  await publish(root, 'gen5', DENY);
  await w.check();
  t.equal(w.policy.decide(webToPayments).decision, 'deny');
  t.equal(w.status.lastError, undefined, 'a valid version clears the error');
  t.equal(w.status.applied, 2);
});

t.test('the directory watch picks up a swap without an explicit check', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'hostmesh-policy-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await publish(root, 'gen1', DENY);
  const file = join(root, 'policy.yaml');
  await symlink('..data/policy.yaml', file);
  let onApply: () => void = () => undefined;
  const applied = new Promise<void>((resolve) => {
    onApply = resolve;
  });
  const w = new PolicyWatcher({
    file,
    initial: { policy: parsePolicy(DENY, file), text: DENY },
    logger: silentLogger(),
    pollMs: 100,
    onApply: () => onApply(),
  });
  t.teardown(() => w.close());
  t.equal(w.policy.decide(webToPayments).decision, 'deny', 'before the swap: web may not call payments');
  await publish(root, 'gen2', ALLOW_WEB);
  await applied;
  t.equal(w.policy.decide(webToPayments).decision, 'allow', 'after the swap, with no explicit check: the new rule decides');
  t.equal(w.status.applied, 1);
});

t.test('loadPolicyFile: unreadable and bad files are PolicyErrors', async (t) => {
  await t.rejects(loadPolicyFile('/nonexistent/policy.yaml'), PolicyError);
  const root = await mkdtemp(join(tmpdir(), 'hostmesh-policy-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'p.yaml'), 'namespaces: {}\n');
  await t.rejects(loadPolicyFile(join(root, 'p.yaml')), { name: 'PolicyError', message: /p\.yaml:1:1: rules: required key missing/ });
});
