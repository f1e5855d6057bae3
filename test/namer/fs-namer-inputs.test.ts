// The io.l5d.fs namer and `hostmesh delegate --dtab-file` read their files as bounded inputs: an
// entry that is a FIFO, /dev/zero or an oversized file is neg at once (others keep serving), and
// the CLI refuses such a dtab file promptly with exit 1 and a message naming the path.

import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { FsNamer } from '../../src/namer/fs-namer.js';
import { Path } from '../../src/dtab/path.js';
import type { Lookup } from '../../src/namer/addr.js';
import { settled as settledVar, type Var } from '../../src/namer/var.js';
import { runDelegate } from '../../src/cli/delegate.js';
import { runCli } from '../helpers/cli.js';
import { promptBound, timed } from '../helpers/prompt.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-fs-inputs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await writeFile(join(dir, 'good'), '127.0.0.1 8080\n');
execFileSync('mkfifo', [join(dir, 'fifo')]);
await symlink('/dev/zero', join(dir, 'zero'));
await writeFile(join(dir, 'huge'), Buffer.alloc(2 * 1024 * 1024, '#'));
await writeFile(join(dir, 'ok.dtab'), '/svc => /$/inet/127.0.0.1/9;\n');

/** Resolves with the lookup's first settled state, or 'pending' if it has none within `ms`. */
async function settled(v: Var<Lookup>, ms: number): Promise<Lookup | 'pending'> {
  return (await settledVar(v, ms)) ?? 'pending';
}

// "Within 1 s" without a stopwatch a busy machine trips: a read that waits on a FIFO or reads
// /dev/zero never settles, so 5 s is as sure a failure as 1 s; the state (neg, not pending) is the proof.
t.test('fs namer: a FIFO, /dev/zero and a 2 MiB entry are neg within 1 s; a good entry is served', async (t) => {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const namer = new FsNamer({ rootDir: dir, pollMs: 60_000, logger });
  t.teardown(() => namer.close());
  const started = Date.now();
  const [fifo, zero, huge] = await Promise.all(['fifo', 'zero', 'huge'].map((n) => settled(namer.lookup(new Path([n])), 5000)));
  for (const [name, s] of [
    ['fifo', fifo],
    ['zero', zero],
    ['huge', huge],
  ] as const) {
    t.same(s, { kind: 'ok', tree: { kind: 'neg' } }, `${name} is neg, not pending`);
  }
  t.ok(Date.now() - started < 5000, `settled in ${Date.now() - started} ms (a blocked read never does)`);
  const good = await settled(namer.lookup(new Path(['good'])), 5000);
  t.match(good, { kind: 'ok', tree: { kind: 'leaf' } }, 'the namer keeps serving the good entry');
  const text = warnings.join('');
  t.match(text, /fifo is not a regular file \(a FIFO\)/, 'the FIFO is named in a warning');
  t.match(text, /zero is not a regular file \(a character device\)/);
  t.match(text, /huge is larger than 1 MiB/);
  t.notMatch(text, /good/, 'nothing is said about the good entry');
});

t.test('fs namer: a refused entry is warned about once, not on every poll', async (t) => {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const namer = new FsNamer({ rootDir: dir, pollMs: 50, logger });
  t.teardown(() => namer.close());
  const v = namer.lookup(new Path(['fifo']));
  const off = v.subscribe(() => undefined);
  t.teardown(off);
  await new Promise((r) => setTimeout(r, 400)); // several polls of an observed entry
  t.equal(warnings.filter((w) => w.includes('a FIFO')).length, 1);
});

t.test('hostmesh delegate --dtab-file: a FIFO, /dev/zero or a 2 MiB file exits 1 promptly', async (t) => {
  // The real CLI once (a FIFO would have kept the process waiting for a writer)...
  const r = await runCli(['delegate', '--dtab-file', join(dir, 'fifo'), '/svc/x'], {}, 20_000);
  t.equal(r.signal, null, 'not killed: it did not hang');
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, `dtab file ${join(dir, 'fifo')} is not a regular file (a FIFO)`, 'the path and the reason');
  // ...and the same function in-process for the other kinds (a CLI start costs seconds here),
  // promptly: within 10x a regular dtab file's run (at least 2 s), so a busy machine cannot trip it.
  const regular = await timed(() => runDelegate({ path: '/svc/x', dtabFile: join(dir, 'ok.dtab') }, { out: () => undefined, err: () => undefined }));
  t.equal(regular.value, 0, `a regular dtab file first (${regular.ms.toFixed(0)} ms)`);
  const bound = promptBound(regular.ms, 2000);
  for (const [file, reason] of [
    ['/dev/zero', /dev\/zero is not a regular file \(a character device\)/],
    [join(dir, 'huge'), /huge is larger than 1 MiB/],
  ] as const) {
    const err: string[] = [];
    const started = Date.now();
    const code = await runDelegate({ path: '/svc/x', dtabFile: file }, { out: () => undefined, err: (l) => err.push(l) });
    t.equal(code, 1, `${file}: exit 1`);
    t.match(err.join('\n'), reason, `${file}: the reason`);
    t.ok(Date.now() - started < bound, `${file}: refused in ${Date.now() - started} ms (bound ${bound} ms, 10x a regular file)`);
  }
  const out: string[] = [];
  t.equal(
    await runDelegate({ path: '/svc/x', dtabFile: join(dir, 'ok.dtab') }, { out: (l) => out.push(l), err: () => undefined }),
    0,
    'a regular dtab file still works',
  );
  t.match(out.join('\n'), /bound: \/\$\/inet\/127.0.0.1\/9\/x/);
});
