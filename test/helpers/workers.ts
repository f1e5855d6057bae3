// `hostmesh run` with `workers: N` (docs/cores.md) as the workers tests drive it: the primary as a
// child process, its workers read from /proc, its /metrics, and a teardown that leaves no process.

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Test } from 'tap';
import { spawnCli } from './cli.js';
import { request } from './http.js';
import { parsePrometheus } from './prometheus.js';

/** The direct children of a process (a primary's workers). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Socket inodes a process holds. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1] !== undefined) out.add(m[1]);
      } catch {
        // closed while listing
      }
    }
  } catch {
    // gone
  }
  return out;
}

/** The process among `pids` that owns the client side of a TCP connection from local port `port` (IPv4 loopback). */
export function ownerOfClientPort(port: number, pids: readonly number[]): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hexPort}`) && f[9] !== undefined && f[9] !== '0') inodes.add(f[9]);
  }
  return pids.find((pid) => {
    const own = socketInodes(pid);
    return [...inodes].some((i) => own.has(i));
  });
}

export interface Primary {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the primary's exit code and signal. */
  readonly exit: Promise<[number | null, string | null]>;
  readonly exited: () => boolean;
  /** What the primary and its workers logged so far. */
  readonly stderr: () => string;
  /** The workers the teardown kills if they outlive the test (set it when they are read). */
  workers: number[];
  /** The admin's /metrics, parsed ([] while it does not answer). */
  scrape(): Promise<ReturnType<typeof parsePrometheus>>;
  /** hostmesh_workers_running on the admin port (0 while it does not answer). */
  running(): Promise<number>;
  /** Polls (up to 30 s) until `n` workers run and `also` holds; then reads the workers. */
  untilRunning(n: number, also?: () => Promise<boolean>): Promise<number[]>;
}

/**
 * Starts `hostmesh run -c file` (a config with `workers:` and its admin on ip:admin). The test's
 * teardown kills the primary and its workers if they are still there, and prints the log when an
 * assertion failed (a worker's exit and its reason are in it).
 */
export function startPrimary(t: Test, file: string, ip: string, admin: number): Primary {
  const child = spawnCli(['run', '-c', file]);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  let exited = false;
  void exit.then(() => (exited = true));
  const scrape = async (): Promise<ReturnType<typeof parsePrometheus>> => {
    const r = await request({ host: ip, port: admin, path: '/metrics' }).catch(() => undefined);
    return r?.status === 200 ? parsePrometheus(r.body) : [];
  };
  const running = async (): Promise<number> => (await scrape()).find((s) => s.name === 'hostmesh_workers_running')?.value ?? 0;
  const pid = child.pid ?? 0;
  const primary: Primary = {
    child,
    pid,
    exit,
    exited: () => exited,
    stderr: () => stderr,
    workers: [],
    scrape,
    running,
    async untilRunning(n, also = async () => true) {
      for (let i = 0; i < 600 && !(childrenOf(pid).length === n && (await running()) === n && (await also())); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      primary.workers = childrenOf(pid);
      return primary.workers;
    },
  };
  t.teardown(() => {
    if (!t.passing()) t.comment(stderr.slice(-6000));
    if (!exited) child.kill('SIGKILL');
    for (const w of primary.workers) if (alive(w)) process.kill(w, 'SIGKILL');
  });
  return primary;
}
