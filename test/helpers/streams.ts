// Streams for the streaming tests: a deterministic body made chunk by chunk, its hash, and a
// request through a test mesh's outgoing router.

import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { A, type TestMesh } from './mesh.js';

export const MiB = 1024 * 1024;

/** A deterministic byte stream of `total` bytes, made chunk by chunk (never held whole). */
export function pattern(total: number, chunk = 64 * 1024): Readable {
  let sent = 0;
  const block = Buffer.alloc(chunk);
  for (let i = 0; i < chunk; i++) block[i] = (i * 31 + 7) & 0xff;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(chunk, total - sent);
      sent += n;
      this.push(n === chunk ? block : block.subarray(0, n));
    },
  });
}

export async function sha256Of(stream: AsyncIterable<Buffer>): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c);
    bytes += c.length;
  }
  return { hash: h.digest('hex'), bytes };
}

export async function expectedHash(total: number): Promise<string> {
  return (await sha256Of(pattern(total))).hash;
}

/** Samples this process's RSS while `work` runs; returns the peak growth in bytes. */
export async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
  global.gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20); // rss() alone: memoryUsage() also walks the heap
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(0, peak - base);
}

/** A request to `path` through the mesh's outgoing router (node-a), on a connection of its own. */
export function proxied(mesh: TestMesh, path: string, options: http.RequestOptions = {}): http.ClientRequest {
  return http.request({ host: A, port: mesh.ports.outgoing, path, agent: false, ...options });
}

export function responseOf(req: http.ClientRequest): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
}
