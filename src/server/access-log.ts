// Linkerd 1's httpAccessLog: one line per answered request, in its format (common log format with
// the Host first: `host remote - - [dd/MM/yyyy:HH:mm:ss z] "GET /p HTTP/1.1" 200 12 "referer"
// "user-agent"`), rolled by its httpAccessLogRollPolicy, httpAccessLogAppend and
// httpAccessLogRotateCount. Never on the request path's critical section: lines go to a bounded
// queue written by one writer; a full queue, a slow disk or a failed write drops lines and counts them.

import { type Clock, systemClock } from '../core/clock.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/** A router's httpAccessLog as this module writes it (config/ maps Linkerd 1's httpAccessLog* keys onto it). */
export type RollPolicy =
  | { readonly kind: 'never' | 'hourly' | 'daily' }
  /** Rolled when this day of the week begins (Java Calendar numbering: 1 Sunday .. 7 Saturday). */
  | { readonly kind: 'weekly'; readonly day: number }
  | { readonly kind: 'size'; readonly bytes: number };

export interface AccessLogConfig {
  readonly path: string;
  readonly rollPolicy: RollPolicy;
  /** Append to an existing file (default) or truncate it at start. */
  readonly append: boolean;
  /** Rolled files kept; -1 keeps them all (Linkerd 1's default). */
  readonly rotateCount: number;
  /** Bytes of lines waiting for the writer before further lines are dropped (httpAccessLogBufferKB). */
  readonly bufferBytes: number;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** `06/12/2026:11:33:00 UTC`: Linkerd 1's `dd/MM/yyyy:HH:mm:ss z`, in UTC. */
export function accessLogTime(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getUTCDate())}/${two(d.getUTCMonth() + 1)}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} UTC`;
}

/** Quotes, backslashes and control bytes written as \xHH: a request cannot forge a line or a field. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function header(v: string | string[] | undefined): string {
  if (v === undefined) return '-';
  return clean(Array.isArray(v) ? v.join(', ') : v);
}

export interface AccessLogLine {
  readonly host: string | undefined;
  readonly remote: string | undefined;
  readonly method: string;
  readonly uri: string;
  readonly httpVersion: string;
  readonly status: number;
  readonly contentLength: string | number | undefined;
  readonly referer: string | undefined;
  readonly userAgent: string | undefined;
}

/** One line as Linkerd 1's AccessLogger wrote it (with a newline). */
export function formatAccessLine(l: AccessLogLine, time: string): string {
  const remote = (l.remote ?? '-').replace(/^::ffff:(?=\d+\.)/, '');
  const bytes = l.contentLength === undefined ? '-' : clean(String(l.contentLength));
  return `${header(l.host)} ${clean(remote)} - - [${time}] "${clean(l.method.toUpperCase())} ${clean(l.uri)} HTTP/${clean(l.httpVersion)}" ${l.status} ${bytes} "${header(l.referer)}" "${header(l.userAgent)}"\n`;
}

/** The end of the period that starts at or before `ms` (UTC), for time-based policies. */
export function periodEnd(policy: RollPolicy, ms: number): number {
  const d = new Date(ms);
  if (policy.kind === 'hourly') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
  if (policy.kind === 'daily') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  if (policy.kind === 'weekly') {
    const today = d.getUTCDay() + 1; // Calendar numbering
    const ahead = (policy.day - today + 7) % 7 || 7;
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + ahead);
  }
  return Number.POSITIVE_INFINITY;
}

/** The name a rolled file gets: `access-20261206_110000.log` for `access.log`. */
export function rolledName(path: string, ms: number): string {
  const d = new Date(ms);
  const stamp = `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}_${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`;
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}-${stamp}${ext}`);
}

/**
 * The Content-Length of a head written with writeHead(status, headers) (the router relays heads
 * that way, and Node then keeps no header map): read from the head Node sent. Undefined: none.
 */
function sentContentLength(res: ServerResponse): string | undefined {
  const head = (res as unknown as { _header?: unknown })._header;
  if (typeof head !== 'string') return undefined;
  return /\r\ncontent-length: *(\d+)\r\n/i.exec(head)?.[1];
}

export interface AccessLogOptions {
  readonly clock?: Clock;
  /** A write failed (disk full, file gone): lines were dropped. Said once per failure streak. */
  readonly onError?: (err: Error) => void;
}

export class AccessLog {
  readonly #cfg: AccessLogConfig;
  readonly #now: () => number;
  readonly #onError: ((err: Error) => void) | undefined;
  #queue: string[] = [];
  #queued = 0;
  #writing: Promise<void> | undefined;
  #fh: FileHandle | undefined;
  #size = 0;
  #periodEnd = Number.POSITIVE_INFINITY;
  #opened = false;
  #failing = false;
  #closed = false;
  #timeSecond = -1;
  #timeText = '';
  /** Lines written, and lines dropped (queue full or a failed write). */
  written = 0;
  dropped = 0;

  constructor(cfg: AccessLogConfig, options: AccessLogOptions = {}) {
    this.#cfg = cfg;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
    this.#onError = options.onError;
  }

  /** Logs an answered request (called when its response closed). */
  request(req: IncomingMessage, res: ServerResponse): void {
    const length = res.getHeader('content-length') ?? sentContentLength(res);
    this.add(
      formatAccessLine(
        {
          host: req.headers.host,
          remote: req.socket.remoteAddress,
          method: req.method ?? '-',
          uri: req.url ?? '-',
          httpVersion: req.httpVersion,
          status: res.statusCode,
          contentLength: Array.isArray(length) ? length[0] : length,
          referer: req.headers.referer,
          userAgent: req.headers['user-agent'],
        },
        this.#time(),
      ),
    );
  }

  /** Queues one formatted line; dropped (and counted) when the queue is full. */
  add(line: string): void {
    if (this.#closed || this.#queued + line.length > this.#cfg.bufferBytes) {
      this.dropped++;
      return;
    }
    this.#queue.push(line);
    this.#queued += line.length;
    this.#writing ??= this.#drain();
  }

  /** Resolves once every queued line is written or dropped. */
  async flushed(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flushed();
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
  }

  #time(): string {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    if (second !== this.#timeSecond) {
      this.#timeSecond = second;
      this.#timeText = accessLogTime(now);
    }
    return this.#timeText;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        this.#queued = 0;
        const text = batch.join('');
        try {
          await this.#rollIfDue(Buffer.byteLength(text));
          const fh = await this.#file();
          await fh.write(text);
          this.#size += Buffer.byteLength(text);
          this.written += batch.length;
          this.#failing = false;
        } catch (err) {
          this.dropped += batch.length;
          // The file is reopened for the next batch (it may have been removed or the disk freed).
          await this.#fh?.close().catch(() => {});
          this.#fh = undefined;
          if (!this.#failing) this.#onError?.(err as Error);
          this.#failing = true;
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }

  async #file(): Promise<FileHandle> {
    if (this.#fh !== undefined) return this.#fh;
    const path = this.#cfg.path;
    await mkdir(dirname(path), { recursive: true });
    // Truncated once at start when httpAccessLogAppend is false; appended to after that.
    const fh = await open(path, !this.#opened && !this.#cfg.append ? 'w' : 'a');
    this.#opened = true;
    this.#fh = fh;
    this.#size = (await fh.stat()).size;
    if (this.#periodEnd === Number.POSITIVE_INFINITY) this.#periodEnd = periodEnd(this.#cfg.rollPolicy, this.#now());
    return fh;
  }

  async #rollIfDue(incoming: number): Promise<void> {
    const policy = this.#cfg.rollPolicy;
    if (policy.kind === 'never') return;
    const now = this.#now();
    const due = policy.kind === 'size' ? this.#size > 0 && this.#size + incoming > policy.bytes : now >= this.#periodEnd;
    if (!due) return;
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
    this.#periodEnd = periodEnd(policy, now);
    const path = this.#cfg.path;
    const exists = await stat(path).then(
      (s) => s.size > 0,
      () => false,
    );
    if (exists) await rename(path, rolledName(path, now));
    this.#size = 0;
    await this.#prune();
  }

  /** Keeps the newest rotateCount rolled files (-1: all). */
  async #prune(): Promise<void> {
    const keep = this.#cfg.rotateCount;
    if (keep < 0) return;
    const path = this.#cfg.path;
    const ext = extname(path);
    const base = basename(path, ext);
    const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{8}_\\d{6}${ext.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const rolled = (await readdir(dirname(path))).filter((n) => pattern.test(n)).sort();
    for (const name of rolled.slice(0, Math.max(0, rolled.length - keep))) await unlink(join(dirname(path), name)).catch(() => {});
  }
}
