// A dtabFile swapped for a FIFO, a device or a huge file while the router runs: the reload is
// rejected once with the path (never waited on: a blocked read would hold a libuv thread for
// good), the dtab in force stays, and a good version afterwards applies.

import { execFileSync } from 'node:child_process';
import { mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Dtab } from '../../src/dtab/dtab.js';
import { silentLogger } from '../../src/log.js';
import { Var } from '../../src/namer/var.js';
import { DtabWatcher } from '../../src/server/dtab-watcher.js';
import { within } from '../helpers/prompt.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-dtab-watcher-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/**
 * Resolves with the check, or 'stuck' (what an operator would notice as a wedged reload). A read
 * that waits on a FIFO or reads /dev/zero never finishes, so 'stuck' is after 5 s rather than 1 s:
 * as sure a failure, and no flake on a busy machine where one check can take a second.
 */
function unwedged(p: Promise<void>): Promise<'done' | 'stuck'> {
  return within(
    p.then(() => 'done' as const),
    5000,
    'stuck' as const,
  );
}

t.test('swapped for a FIFO, /dev/zero or a 2 MB file: rejected once each, the old dtab stays', async (t) => {
  const file = join(dir, 'router.dtab');
  const v1 = '/svc => /#/io.l5d.fs;\n';
  await writeFile(file, v1);
  const dtab = new Var(Dtab.read(v1));
  const rejected: string[] = [];
  const watcher = new DtabWatcher({ file, dtab, initialText: v1, logger: silentLogger(), pollMs: 60_000, onReject: (m) => rejected.push(m) });
  t.teardown(() => watcher.close());

  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await rename(join(dir, 'fifo'), file);
  t.equal(await unwedged(watcher.check()), 'done', 'a FIFO is not waited on');
  t.equal(await unwedged(watcher.check()), 'done');
  t.equal(rejected.length, 1, 'reported once while it stays');
  t.match(rejected[0], /router\.dtab is not a regular file \(a FIFO\)/);

  await rm(file);
  await symlink('/dev/zero', file);
  t.equal(await unwedged(watcher.check()), 'done', '/dev/zero is not read forever');
  t.match(rejected[1], /not a regular file \(a character device\)/);

  await rm(file);
  await writeFile(file, '/a => /b;\n'.repeat(200_000));
  t.equal(await unwedged(watcher.check()), 'done');
  t.match(rejected[2], /larger than 1 MiB/);
  t.equal(dtab.get().show(), Dtab.read(v1).show(), 'the dtab in force is unchanged');

  await rm(file);
  await writeFile(file, '/svc => /#/io.l5d.k8s;\n');
  await watcher.check();
  t.equal(dtab.get().show(), Dtab.read('/svc => /#/io.l5d.k8s;').show(), 'a good version applies afterwards');
  t.equal(watcher.rejected, 3, rejected.join(' | '));
});
