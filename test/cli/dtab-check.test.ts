import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runDtabCheck } from '../../src/cli/dtab-check.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

t.test('every shipped dtab in dtab/ is valid', async (t) => {
  const files = (await readdir('dtab')).filter((f) => f.endsWith('.dtab')).map((f) => join('dtab', f));
  t.ok(files.length >= 2);
  const c = capture();
  t.equal(await runDtabCheck(files, c.io), 0, c.err.join('\n'));
});

t.test('errors are file:line:col, exit 1; a missing file is exit 2', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dtab-check-'));
  const bad = join(dir, 'bad.dtab');
  await writeFile(bad, '/a => /b;\n# comment\n/c => /d^;\n');
  const c = capture();
  t.equal(await runDtabCheck([bad], c.io), 1);
  t.equal(c.err[0], `${bad}:3:9: end of input expected but '^' found at '/c => /d[^];'`);
  const m = capture();
  t.equal(await runDtabCheck([join(dir, 'nope.dtab')], m.io), 2);
  t.match(m.err[0], /no such file/);
  t.equal(await runDtabCheck([], capture().io), 2);
});
