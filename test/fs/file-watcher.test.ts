// The one file-watching primitive: runs never overlap and a burst coalesces into one more run; the
// fs namer sees a new file through its directory watch alone (the poll is a minute away).

import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Path } from '../../src/dtab/path.js';
import { DirectoryWatch, FileSetWatcher } from '../../src/fs/file-watcher.js';
import { FsNamer } from '../../src/namer/fs-namer.js';
import { settled } from '../../src/namer/var.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-fs-watch-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('a burst of checks during a run makes one more run, never two at once', async (t) => {
  let runs = 0;
  let running = 0;
  let overlapped = false;
  let release: () => void = () => undefined;
  const watch = new DirectoryWatch({
    dirs: [dir],
    pollMs: 60_000,
    run: async () => {
      runs++;
      running++;
      if (running > 1) overlapped = true;
      await new Promise<void>((r) => (release = r));
      running--;
    },
  });
  t.teardown(() => watch.close());
  const first = watch.check();
  for (let i = 0; i < 10; i++) void watch.check();
  release();
  await new Promise((r) => setImmediate(r));
  release();
  await first;
  t.equal(runs, 2, 'ten checks during the first run coalesce into one more');
  t.notOk(overlapped, 'runs never overlap');
  watch.close();
  await watch.check();
  t.equal(runs, 2, 'a closed watch runs nothing');
});

t.test('FileSetWatcher reports a changed file once, and not its first read', async (t) => {
  const file = join(dir, 'watched.txt');
  await writeFile(file, 'one');
  const seen: string[] = [];
  const w = new FileSetWatcher([file], ([c]) => seen.push(String(c)), 60_000);
  t.teardown(() => w.close());
  await w.check();
  t.same(seen, [], 'the first read is the baseline');
  // Replaced whole, as Kubernetes swaps a mounted file: writeFile in place truncates first, and the
  // directory watch may fire between the truncation and the write (an empty read, seen in CI).
  await writeFile(`${file}.next`, 'two');
  await rename(`${file}.next`, file);
  await w.check();
  await w.check();
  t.same(seen, ['two']);
});

t.test('the fs namer picks up a new service file from the directory watch, not the poll', async (t) => {
  const root = await mkdtemp(join(dir, 'namer-'));
  const namer = new FsNamer({ rootDir: root, pollMs: 60_000 });
  t.teardown(() => namer.close());
  const lookup = namer.lookup(new Path(['web']));
  const off = lookup.subscribe(() => undefined);
  t.teardown(off);
  t.match(await settled(lookup, 5000), { kind: 'ok', tree: { kind: 'neg' } }, 'no file yet: neg');
  await writeFile(join(root, 'web'), '127.0.0.1 8080\n');
  const bound = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('not seen within 5 s'), 5000);
    const stop = lookup.subscribe((s) => {
      if (s.kind === 'ok' && s.tree.kind === 'leaf') {
        clearTimeout(timer);
        queueMicrotask(() => stop());
        resolve('bound');
      }
    });
  });
  t.equal(bound, 'bound', 'the new file binds the name');
});
