// /proc readings for the benchmark: CPU time and resident memory of a process and its children
// (nginx's workers), so each row is charged for every process on its path.

import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The pid and its direct children (nginx master -> workers). */
export function family(pid: number): number[] {
  const out = [pid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(Number(entry));
    if (s !== undefined && Number(s[1]) === pid) out.push(Number(entry));
  }
  return out;
}

/** User + system CPU seconds of the processes. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const s = stat(pid);
    if (s !== undefined) ticks += Number(s[11]) + Number(s[12]); // utime, stime (fields 14, 15)
  }
  return ticks / TICKS_PER_SECOND;
}

/** The whole machine's CPU seconds since boot, busy (all but idle and iowait) and in all, every core summed. */
export function machineCpu(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** Read and write system calls made so far by the processes (/proc/<pid>/io: syscr, syscw; sockets included). */
export function syscalls(pids: readonly number[]): { reads: number; writes: number } {
  let reads = 0;
  let writes = 0;
  for (const pid of pids) {
    try {
      const text = readFileSync(`/proc/${pid}/io`, 'utf8');
      reads += Number(/^syscr: (\d+)$/m.exec(text)?.[1] ?? 0);
      writes += Number(/^syscw: (\d+)$/m.exec(text)?.[1] ?? 0);
    } catch {
      // gone, or not ours to read
    }
  }
  return { reads, writes };
}

/** A `/proc/<pid>/status` memory field (VmRSS, RssAnon, ...) in MB; 0 when the process is gone. */
function statusMb(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident set size in MB. */
export const rssMb = (pid: number): number => statusMb(pid, 'VmRSS');

/**
 * Private anonymous memory in MB (RssAnon): the heap and buffers the process itself owns. RSS also
 * counts file-backed pages, mostly the node binary (~34 MB for a bare Node 20), shared between
 * processes and reclaimable.
 */
export const anonMb = (pid: number): number => statusMb(pid, 'RssAnon');

/** Samples the RSS of `pids` every `ms` until stopped; returns the peak per pid. */
export function rssSampler(pids: readonly number[], ms = 100): { stop(): number[] } {
  const peak = pids.map((p) => rssMb(p));
  const timer = setInterval(() => pids.forEach((p, i) => (peak[i] = Math.max(peak[i] ?? 0, rssMb(p)))), ms);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}
