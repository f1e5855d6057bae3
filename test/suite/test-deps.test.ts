// The suite a newcomer runs: scripts/test-deps.mjs (npm test's pretest) and test/helpers/requires.ts.
// Without curl, chromium, kubectl, h2load or a python3 with grpcio (and nothing installed), the
// pretest names what will be skipped and lets the suite run; under CI it fails. The helpers find a
// program on PATH (or CHROMIUM_PATH; for grpcio, the first python3 on PATH that imports grpc), and
// say CI only when CI is set to something true.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import t from 'tap';
import { findTool, inCi, missingMessage } from '../helpers/requires.js';

// From test/suite (tap runs the sources) or dist/test/suite (the compiled copy).
const SCRIPT = [2, 3].map((up) => join(import.meta.dirname, ...Array<string>(up).fill('..'), 'scripts', 'test-deps.mjs')).find((p) => existsSync(p)) as string;

function run(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Never installs here (HOSTMESH_NO_INSTALL), whoever runs the suite.
    const child = spawn(process.execPath, [SCRIPT], { env: { HOSTMESH_NO_INSTALL: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

let bin: string;
let empty: string;
/** A python3 without grpcio (its `import grpc` fails). */
let bare: string;
t.before(async () => {
  bin = await mkdtemp(join(tmpdir(), 'hostmesh-tools-'));
  empty = await mkdtemp(join(tmpdir(), 'hostmesh-notools-'));
  bare = await mkdtemp(join(tmpdir(), 'hostmesh-bare-python-'));
  for (const [dir, name, exit] of [...['curl', 'chromium', 'kubectl', 'h2load', 'python3'].map((n) => [bin, n, 0] as const), [bare, 'python3', 1] as const]) {
    await writeFile(join(dir, name), `#!/bin/sh\nexit ${exit}\n`);
    await chmod(join(dir, name), 0o755);
  }
});
t.teardown(async () => {
  for (const dir of [bin, empty, bare]) await rm(dir, { recursive: true, force: true });
});

t.test('nothing missing: the pretest is silent and passes, CI or not', async (t) => {
  for (const CI of ['', 'true']) {
    const r = await run({ PATH: bin, CI });
    t.equal(r.code, 0, `CI=${CI}`);
    t.equal(r.stderr, '');
  }
});

t.test('all missing, not CI: the pretest names each skipped test loudly and lets the suite run', async (t) => {
  const r = await run({ PATH: empty });
  t.equal(r.code, 0);
  t.match(r.stderr, /curl \(Debian package curl\): .*mesh\.test\.ts.* SKIPPED/);
  t.match(r.stderr, /chromium \(Debian package chromium\): .*dashboard\.test\.ts.* SKIPPED/);
  t.match(r.stderr, /kubectl \(Debian package kubernetes-client\): .*test\/deploy.* SKIPPED/);
  t.match(r.stderr, /nghttp2 \(Debian package nghttp2-client\): .*grpc-interop-python\.test\.ts.* SKIPPED/);
  t.match(r.stderr, /python3-grpcio \(Debian package python3-grpcio\): .*grpc-interop-python\.test\.ts.* SKIPPED/);
  t.match(r.stderr, /!{100}/, 'loudly');
});

t.test('missing under CI=true: the pretest fails', async (t) => {
  for (const CI of ['true', '1', 'TRUE']) {
    const r = await run({ PATH: empty, CI });
    t.equal(r.code, 1, `CI=${CI}`);
    t.match(r.stderr, /CI=true: every test must run/);
  }
  t.equal((await run({ PATH: empty, CI: 'false' })).code, 0, 'CI=false is not CI');
});

t.test('CHROMIUM_PATH stands for chromium', async (t) => {
  const r = await run({ PATH: empty, CHROMIUM_PATH: '/opt/chrome' });
  t.notMatch(r.stderr, /chromium \(Debian/);
  t.match(r.stderr, /curl \(Debian/);
});

t.test('helpers: findTool on PATH and CHROMIUM_PATH; inCi; the message names the package', async (t) => {
  t.equal(findTool('kubectl', { PATH: bin }), join(bin, 'kubectl'));
  t.equal(findTool('kubectl', { PATH: empty }), undefined);
  t.equal(findTool('curl', {}), undefined, 'no PATH at all');
  t.equal(findTool('chromium', { PATH: empty, CHROMIUM_PATH: '/opt/chrome' }), '/opt/chrome');
  t.equal(findTool('chromium', { PATH: bin }), join(bin, 'chromium'));
  t.equal(findTool('nghttp2', { PATH: bin }), join(bin, 'h2load'), "h2load stands for nghttp2's clients");
  t.equal(findTool('python3-grpcio', { PATH: bare }), undefined, 'a python3 that cannot import grpc');
  t.equal(findTool('python3-grpcio', { PATH: `${bare}${delimiter}${bin}` }), join(bin, 'python3'), 'the first python3 on PATH that can');
  t.same(
    ['', '0', 'false', 'FALSE', 'true', '1', 'yes'].map((CI) => inCi({ CI })),
    [false, false, false, false, true, true, true],
  );
  t.equal(inCi({}), false);
  t.match(
    missingMessage('kubectl', 'the manifest tests'),
    /^SKIPPED: the manifest tests: kubectl is not installed\. Install the Debian package `kubernetes-client`/,
  );
});
