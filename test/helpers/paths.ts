// Where things are for a test, the same whether it runs from its TypeScript source (test/, through
// tap's loader) or compiled (dist/test/: `npm test` runs the build, which starts each file without
// loading the TypeScript compiler). Files that are not TypeScript (fixtures, docs, k8s/) are read
// from the repository, never from dist/.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no repository root above ${from}`);
  }
}

/** The repository root (the folder with package.json). */
export const ROOT = findRoot(import.meta.dirname);

/** A path in the repository: `repoPath('test', 'fixtures', 'x.yaml')`. */
export function repoPath(...parts: string[]): string {
  return join(ROOT, ...parts);
}

/** Whether this run is the compiled one (dist/test). */
export const COMPILED = import.meta.filename.endsWith('.js');

/**
 * A test module to start as a child process (`test/helpers/x.ts` -> dist's `x.js` when compiled),
 * with the node flags it needs: tap's TypeScript loader only when it runs from source, and never
 * tap's coverage hooks (block coverage slows a child's hot loops many times over).
 */
export function childModule(testRelative: string): { file: string; execArgv: string[] } {
  const file = COMPILED ? join(ROOT, 'dist', testRelative.replace(/\.ts$/, '.js')) : join(ROOT, testRelative);
  const execArgv = process.execArgv.filter((a) => !a.includes('processinfo') && !(COMPILED && a.includes('typescript')));
  return { file, execArgv };
}

/**
 * The environment for a child `node` a test starts: the test's own, without tap's process-tracking
 * hook, which tap passes in NODE_OPTIONS and which costs every node process about a second of CPU
 * to start (coverage is off in `npm test`; a child's coverage is not collected).
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_V8_COVERAGE' || k.startsWith('_TAPJS_PROCESSINFO')) continue;
    env[k] = v;
  }
  const options = (process.env.NODE_OPTIONS ?? '')
    .split(/\s+/)
    .filter((o) => o !== '' && !o.includes('processinfo'))
    .join(' ');
  env.NODE_OPTIONS = options;
  return { ...env, ...extra };
}
