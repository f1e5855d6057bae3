// Runs the `hostmesh` CLI from source as a child process, with the same TypeScript loader tap
// gives this test process, so CLI tests need no build step.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** The loader flags (--import=...typescript...) of this process, passed on to children. */
function loaderArgs(): string[] {
  return process.execArgv.filter((a) => a.startsWith('--import') && a.includes('typescript'));
}

export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [...loaderArgs(), MAIN, ...args], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
