import t from 'tap';
import { Glob } from '../../src/authz/glob.js';
import { parsePolicy } from '../../src/authz/parse-policy.js';

t.test('glob table', async (t) => {
  const table: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['*', '', true],
    ['*', 'anything', true],
    ['a*', 'a', true],
    ['a*', 'ba', false],
    ['*b', 'ab', true],
    ['*b', 'ba', false],
    ['a*b', 'ab', true],
    ['a*b', 'aXXb', true],
    ['a*b', 'aXXbc', false],
    ['ab*b', 'ab', false],
    ['ab*ba', 'aba', false],
    ['a*a*a', 'aa', false],
    ['a*a*a', 'aaa', true],
    ['*.ops.*', 'x.ops.y', true],
    ['*.ops.*', 'ops.y', false],
    ['frontend-*', 'frontend-', true],
    ['a**b', 'ab', true],
    ['*x*y*', 'yx', false],
    ['*x*y*', 'xay', true],
  ];
  for (const [pattern, input, expected] of table) t.equal(new Glob(pattern).test(input), expected, `${pattern} ~ ${input}`);
});

t.test('hostile patterns against long names stay linear (a backtracking matcher would not finish)', async (t) => {
  // With a backtracking regex, `a*a*...*b` against a run of `a`s costs about n^k steps: for
  // n = 200,000 and k = 12 that is beyond any timeout. This test's timeout is the guard.
  t.setTimeout(10_000);
  const long = 'a'.repeat(200_000);
  const hostile = ['a*a*a*a*a*b', `${'a*'.repeat(12)}b`, `*${'a*'.repeat(12)}ab*`, `*${'a'.repeat(100)}b*`];
  for (const p of hostile) t.equal(new Glob(p).test(long), false, p);
  t.equal(new Glob(`${'a*'.repeat(12)}a`).test(long), true);

  // The same through a whole policy: hostile globs in every field, a long caller and destination.
  const rules = hostile.map((p, i) => `- {name: r${i}, from: [{identity: "${p}"}], to: [{name: "/${p}"}]}`).join('\n');
  const policy = parsePolicy(`namespaces: {"*": deny}\nrules:\n${rules}\n`, 'p.yaml');
  for (let i = 0; i < 50; i++) {
    const d = policy.decide({ caller: { authenticated: true, identity: long }, dest: { name: `/${long}` }, method: 'GET', path: `/${long}` });
    if (d.decision !== 'deny') t.fail('hostile name allowed');
  }
  t.pass('50 hostile decisions done');
});
