// Counts the sockets a server holds on one listening address, read from /proc/net/tcp, so a test
// (or the bench) sees the server's side of each connection whichever process owns it.

import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/** /proc/net/tcp's form of an IPv4 address and port: little-endian address hex, port hex. */
export function procAddress(ip: string, port: number): string {
  const hex = ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .reverse()
    .join('');
  return `${hex}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/**
 * Accepted sockets still owned by a process on `ip:port` (any TCP state but LISTEN), or on any of
 * several ports: one read of /proc/net/tcp for all of them (a read costs milliseconds on a machine
 * with thousands of sockets). A socket the server has closed is either gone or orphaned in
 * FIN_WAIT/TIME_WAIT with inode 0: the kernel finishes those without a file descriptor, so they
 * are not counted.
 */
export function heldSockets(ip: string, port: number | readonly number[]): number {
  const locals = new Set((typeof port === 'number' ? [port] : port).map((p) => procAddress(ip, p)));
  // By inode: the kernel writes /proc/net/tcp in chunks while other processes open and close
  // sockets, so one read can list a socket twice; its inode names it once.
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (!locals.has(f[1] as string) || f[3] === '0A') continue; // 0A: LISTEN
    if (f[9] !== undefined && f[9] !== '0') inodes.add(f[9]);
  }
  return inodes.size;
}

/** Polls `check` every 50 ms until it holds or `ceilingMs` passes; returns whether it held. */
export async function eventually(check: () => boolean, ceilingMs: number): Promise<boolean> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Everything that arrives on `s` until it closes (destroyed after `ceilingMs` if it never does: a
 * bound on a hang, not a deadline; it was 3 s, which a drain test outlived on a loaded machine).
 */
export function collect(s: Socket, ceilingMs = 30_000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
    setTimeout(() => s.destroy(), ceilingMs).unref();
  });
}
