// Runs the `hostmesh` CLI as a child process. `npm test` builds the CLI first (tsc), so children
// start the compiled dist/src/cli/main.js in ~0.3 s; a child through the TypeScript loader costs
// seconds on 2 cores, which pushed CLI test files to tap's timeout on a cold clone. When dist is
// missing or older than src (a developer running tap alone after an edit), the loader is used, so a
// test never runs stale code.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMPILED, ROOT } from './paths.js';
import type { Io } from '../../src/cli/run.js';

const SOURCE_MAIN = join(ROOT, 'src/cli/main.ts');
const BUILT_MAIN = join(ROOT, 'dist/src/cli/main.js');

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

let chosen: string[] | undefined;

/** How to start the CLI: the build when it is at least as new as every source file, else the loader. */
function cliCommand(): string[] {
  if (chosen !== undefined) return chosen;
  // Compiled tests (dist/test) are the same build as dist/src.
  if (COMPILED || (existsSync(BUILT_MAIN) && statSync(BUILT_MAIN).mtimeMs >= newestMtime(join(ROOT, 'src')))) {
    chosen = [BUILT_MAIN];
  } else {
    // The loader flags (--import=...typescript...) of this process, passed on to the child.
    chosen = [...process.execArgv.filter((a) => a.startsWith('--import') && a.includes('typescript')), SOURCE_MAIN];
  }
  return chosen;
}

/** Whether CLI children run the compiled build (for tests that report it). */
export function cliIsBuilt(): boolean {
  return cliCommand()[0] === BUILT_MAIN;
}

/**
 * Children still running: killed when this test process exits (a file that threw, or forgot one).
 * Not on tap's timeout: that ends the process with SIGALRM, which runs no exit handlers.
 */
const live = new Set<ChildProcess>();
let reaping = false;

/** `nodeFlags`: node's own flags for the child (e.g. --trace-opt), before the CLI's. */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeFlags: readonly string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeFlags, ...cliCommand(), ...args], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Otherwise a `hostmesh run` child outlives its file, serving and holding its ports and CPU
  // for the rest of the suite.
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!reaping) {
    reaping = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  return child;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (killed after `timeoutMs`). */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Resolves with everything printed so far once stdout contains `text`; rejects on exit or timeout. */
export function waitForOutput(child: ChildProcess, text: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${JSON.stringify(text)}; stdout: ${out} stderr: ${err}`)), timeoutMs);
    const onOut = (c: Buffer | string): void => {
      out += c.toString();
      if (out.includes(text)) done();
    };
    const onErr = (c: Buffer | string): void => {
      err += c.toString();
    };
    const onExit = (code: number | null): void => done(new Error(`exited (${code}) before printing ${JSON.stringify(text)}; stdout: ${out} stderr: ${err}`));
    function done(e?: Error): void {
      clearTimeout(timer);
      child.stdout?.off('data', onOut);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve(out);
    }
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', onErr);
    child.on('exit', onExit);
  });
}

/** In-process runs one at a time: the exit code travels through the global process.exitCode. */
let inProcessQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs `hostmesh certs ...` in this process: the command's own definition (commander options and
 * their defaults), its functions and its exit codes (0, 1, 2 as `guarded` sets them), with output
 * captured line by line as the binary prints it. For tests about what a command does; a child
 * (`runCli`) costs a process start-up (about a second of CPU), so each command file keeps one or
 * two binary runs for the binary's own wiring. Commander's own parse errors count as exit 2, as in
 * src/cli/program.ts. A run still going after `timeoutMs` resolves as `runCli`'s killed child does
 * (code null, signal SIGKILL).
 */
export function runCertsInProcess(args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
  const run = async (): Promise<CliResult> => {
    const [{ Command, CommanderError }, { registerCerts }] = await Promise.all([import('commander'), import('../../src/cli/certs.js')]);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const program = new Command()
      .name('hostmesh')
      .exitOverride()
      .configureOutput({ writeOut: (s) => stdout.push(s), writeErr: (s) => stderr.push(s) });
    registerCerts(program, { out: (l) => stdout.push(`${l}\n`), err: (l) => stderr.push(`${l}\n`) });
    const saved = process.exitCode;
    process.exitCode = undefined;
    let code: number;
    try {
      await program.parseAsync(['node', 'hostmesh', 'certs', ...args.slice(args[0] === 'certs' ? 1 : 0)]);
      code = Number(process.exitCode ?? 0);
    } catch (err) {
      if (!(err instanceof CommanderError)) throw err;
      code = 2;
    } finally {
      process.exitCode = saved;
    }
    return { code, signal: null, stdout: stdout.join(''), stderr: stderr.join('') };
  };
  const result = inProcessQueue.then(run);
  inProcessQueue = result.catch(() => undefined);
  return within(result, timeoutMs, () => ({ code: null, signal: 'SIGKILL', stdout: '', stderr: '' }));
}

/** `run`'s result, or `killed()` when it has not settled after `timeoutMs`. */
function within(run: Promise<CliResult>, timeoutMs: number, killed: () => CliResult): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(killed()), timeoutMs);
    run.then(
      (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Runs a command's own function in this process, the one the binary's action calls (`runCheck` for
 * `run --check`, `runDtabCheck` for `dtab check`), with its output captured line by line as the
 * binary prints it. For tests about what a command does with its inputs; the binary's wiring keeps
 * its own child runs. Like `runCli`, a run still going after `timeoutMs` resolves as a killed child
 * (code null, signal SIGKILL), so a test that the command never hangs can still fail.
 */
export function runInProcess(command: (io: Io) => Promise<number>, timeoutMs = 30_000): Promise<CliResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: Io = { out: (l) => stdout.push(`${l}\n`), err: (l) => stderr.push(`${l}\n`) };
  const run = command(io).then((code): CliResult => ({ code, signal: null, stdout: stdout.join(''), stderr: stderr.join('') }));
  return within(run, timeoutMs, () => ({ code: null, signal: 'SIGKILL', stdout: stdout.join(''), stderr: stderr.join('') }));
}
