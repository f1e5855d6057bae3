// `hostmesh delegate` with a dtab that doubles at every level: exits 1 at once with the budget
// error on stderr instead of printing (or building) a 2^N-node tree; parse depth errors exit 1.

import t from 'tap';
import { runDelegate } from '../../src/cli/delegate.js';
import { runCli } from '../helpers/cli.js';

function chain(levels: number, op: string): string {
  const lines = ['/svc/world=>/h0'];
  for (let i = 0; i < levels; i++) lines.push(`/h${i}=>/h${i + 1}${op}/h${i + 1}`);
  lines.push(`/h${levels}=>/$/inet/127.0.0.1/8080`);
  return lines.join(';');
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

t.test('a doubling chain over the budget: exit 1, one clear line, no huge output', async (t) => {
  for (const op of ['|', '&']) {
    for (const json of [false, true]) {
      const c = capture();
      t.equal(await runDelegate({ path: '/svc/world', dtab: chain(25, op), json }, c.io), 1, `${op} json=${json}: exit 1`);
      t.match(c.err.join('\n'), /binding \/svc\/world exceeded the binding budget of 10000 delegation nodes/);
      t.ok(c.out.join('\n').length < 2000, 'output stays small');
    }
  }
  const small = capture();
  t.equal(await runDelegate({ path: '/svc/world', dtab: chain(4, '&') }, small.io), 0, 'a small doubled chain is explained');
  t.match(small.out.join('\n'), /bound: \/\$\/inet\/127.0.0.1\/8080/);
});

t.test('7,000 nested parentheses: exit 1 with the parse error', async (t) => {
  const c = capture();
  t.equal(await runDelegate({ path: '/svc', dtab: `/svc=>${'('.repeat(7000)}/a${')'.repeat(7000)}` }, c.io), 1);
  t.match(c.err[0], /^at most 32 nested parentheses expected but '\(' found at/);
});

t.test('the real CLI exits promptly with the message', async (t) => {
  const r = await runCli(['delegate', '--dtab', chain(25, '|'), '/svc/world'], {}, 30_000);
  t.equal(r.code, 1);
  t.match(r.stderr, /exceeded the binding budget/);
  t.notMatch(r.stderr, /RangeError|heap/);
});
