#!/usr/bin/env node
// `npm test`'s pretest: the programs a few tests drive besides Node (curl, chromium, kubectl,
// nghttp2's h2load, Python's grpcio).
// Missing ones are installed when this runs as root on a machine with apt-get (a fresh container
// or CI); otherwise the tests needing them say so loudly and are counted as skipped
// (test/helpers/requires.ts). Under CI (CI=true) a program still missing fails here, at once.
// HOSTMESH_NO_INSTALL=1 never installs (only reports).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Each program, the names it goes by on PATH, the Debian package and the tests needing it. */
const TOOLS = [
  { tool: 'curl', names: ['curl'], pkg: 'curl', tests: 'the curl-through-http_proxy test (test/e2e/mesh.test.ts)' },
  { tool: 'chromium', names: ['chromium', 'chromium-browser', 'google-chrome'], pkg: 'chromium', tests: 'the dashboard test (test/admin/dashboard.test.ts)' },
  { tool: 'kubectl', names: ['kubectl'], pkg: 'kubernetes-client', tests: 'the manifest tests (test/deploy/)' },
  { tool: 'nghttp2', names: ['h2load'], pkg: 'nghttp2-client', tests: 'the gRPC interop test (test/e2e/grpc-interop-python.test.ts)' },
  { tool: 'python3-grpcio', names: [], pkg: 'python3-grpcio', tests: 'the gRPC interop test (test/e2e/grpc-interop-python.test.ts)' },
];

const env = process.env;
const ci = !['', '0', 'false'].includes((env.CI ?? '').trim().toLowerCase());

function found(t) {
  if (t.tool === 'chromium' && (env.CHROMIUM_PATH ?? '') !== '') return true;
  // A python3 on PATH that imports grpc (apt installs it for the system's, which a pyenv one may shadow).
  if (t.tool === 'python3-grpcio') return onPath(['python3']).some((p) => spawnSync(p, ['-c', 'import grpc'], { stdio: 'ignore' }).status === 0);
  return onPath(t.names).length > 0;
}

function onPath(names) {
  return (env.PATH ?? '').split(delimiter).flatMap((dir) => (dir === '' ? [] : names.filter((n) => existsSync(join(dir, n))).map((n) => join(dir, n))));
}

let missing = TOOLS.filter((t) => !found(t));
if (missing.length === 0) process.exit(0);

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const apt = (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, 'apt-get')));
if (root && apt && env.HOSTMESH_NO_INSTALL !== '1') {
  const pkgs = missing.map((t) => t.pkg);
  process.stderr.write(`test-deps: installing ${pkgs.join(' ')} (apt-get) for the tests that drive them\n`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: aptEnv });
  const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env: aptEnv }) : update;
  if (install.status !== 0) process.stderr.write(`test-deps: apt-get failed (exit ${install.status ?? install.signal})\n`);
  missing = missing.filter((t) => !found(t));
  if (missing.length === 0) process.exit(0);
}

const bar = '!'.repeat(100);
const lines = missing.map((t) => `  ${t.tool} (Debian package ${t.pkg}): ${t.tests} will be SKIPPED`);
const how = root ? 'apt-get could not install them' : 'not root, so nothing was installed: run `sudo apt-get install ' + missing.map((t) => t.pkg).join(' ') + '`';
process.stderr.write(`\n${bar}\nMissing programs (${how}):\n${lines.join('\n')}\n`);
if (ci) {
  process.stderr.write(`CI=true: every test must run, so this is a failure.\n${bar}\n\n`);
  process.exit(1);
}
process.stderr.write(`The rest of the suite runs; the skipped tests are named in its output.\n${bar}\n\n`);
