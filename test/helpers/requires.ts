// The programs a few tests drive besides Node (curl, chromium, kubectl, nghttp2's h2load, Python's
// grpcio). `npm test` installs them
// first where it can (scripts/test-deps.mjs: root with apt-get); where it cannot, a test needing
// one says so loudly and is counted as skipped, so a fresh machine's `npm test` passes. Under
// CI (CI=true) a missing program is a failure: CI must run everything.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Test } from 'tap';

export type Tool = 'chromium' | 'curl' | 'kubectl' | 'nghttp2' | 'python3-grpcio';

/** What installs each (Debian packages, as scripts/test-deps.mjs and .ci/run install them). */
const HOW: Record<Tool, string> = {
  chromium: 'the Debian package `chromium`, or set CHROMIUM_PATH to a Chrome or Chromium',
  curl: 'the Debian package `curl`',
  kubectl: 'the Debian package `kubernetes-client` (kubectl)',
  nghttp2: 'the Debian package `nghttp2-client` (h2load, nghttp)',
  'python3-grpcio': 'the Debian package `python3-grpcio` (gRPC C-core for the python3 that `import grpc` works in)',
};

/** Whether this run is CI's (CI set to anything but empty, 0 or false): there a skip fails. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env['CI'] ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/** The program's path, or undefined when it is not installed (for python3-grpcio: a python3 that imports grpc). */
export function findTool(tool: Tool, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (tool === 'python3-grpcio') {
    // Every python3 on PATH, in order: apt installs grpcio for the system's, which a pyenv one may shadow.
    return onPath(['python3'], env).find((p) => spawnSync(p, ['-c', 'import grpc'], { stdio: 'ignore' }).status === 0);
  }
  if (tool === 'chromium') {
    const set = env['CHROMIUM_PATH'];
    if (set !== undefined && set !== '') return set;
  }
  const names = tool === 'chromium' ? ['chromium', 'chromium-browser', 'google-chrome'] : tool === 'nghttp2' ? ['h2load'] : [tool];
  return onPath(names, env)[0];
}

function onPath(names: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const found: string[] = [];
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const name of names) if (existsSync(join(dir, name))) found.push(join(dir, name));
  }
  return found;
}

/** The line a run without the program prints (stderr and a TAP comment). */
export function missingMessage(tool: Tool, what: string): string {
  return `SKIPPED: ${what}: ${tool} is not installed. Install ${HOW[tool]} (npm test's pretest, scripts/test-deps.mjs, does it when run as root with apt-get) to run it.`;
}

/**
 * Test options for a subtest that needs `tool`: none when it is installed; otherwise, outside
 * CI, a skip with the reason (said loudly once); under CI none either, so the test runs and fails.
 */
export function needs(t: Test, tool: Tool, what: string): { skip?: string } {
  if (findTool(tool) !== undefined || inCi()) return {};
  const message = missingMessage(tool, what);
  shout(t, message);
  return { skip: message };
}

/**
 * For a file whose every test needs `tool`: true when it can run. When the program is missing,
 * under CI the file fails; elsewhere it says so loudly and declares one skipped test instead
 * (the caller then declares nothing else, and runs no code needing the tool).
 */
export function fileNeeds(t: Test, tool: Tool, what: string): boolean {
  if (findTool(tool) !== undefined) return true;
  const message = missingMessage(tool, what);
  if (inCi()) {
    t.fail(`${message} CI=true: a test that cannot run is a failure.`);
    return false;
  }
  shout(t, message);
  t.test(what, { skip: message }, async () => undefined);
  return false;
}

function shout(t: Test, message: string): void {
  process.stderr.write(`\n${'!'.repeat(100)}\n${message}\n${'!'.repeat(100)}\n\n`);
  t.comment(message);
}
