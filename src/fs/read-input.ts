// Reads the files a config names (the config itself, dtabFiles, certificates and keys) with bounds:
// only regular files, at most 1 MiB, and never blocking on a FIFO or reading a device forever.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * The cap on every input file. Not a config key: it applies before the config is read. 1 MiB holds
 * a dtab of ~30,000 dentries or a trust bundle of ~700 CA certificates (Mozilla's is ~220 KB).
 */
const MAX_INPUT_BYTES = 1024 * 1024;

/** A refused or unreadable input file; the message names the path and never the content. */
export class InputFileError extends Error {
  /**
   * The errno code when the file could not be opened or read (ENOENT, EACCES...); undefined when it
   * was refused for its kind or size. Callers treat a missing file and a refused one differently.
   */
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.name = 'InputFileError';
    this.code = code;
  }
}

// O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer (the
// fstat check then refuses it). O_NOCTTY: a terminal device never becomes our controlling tty.
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a plain file';
}

function check(st: Stats, path: string, what: string, maxBytes: number): void {
  if (!st.isFile()) throw new InputFileError(`${what} ${path} is not a regular file (${kindOf(st)})`);
  // One wording whether fstat or the read finds it (a growing file is seen either way): a watcher
  // reports a message once per change of message.
  if (st.size > maxBytes) throw tooLarge(path, what, maxBytes);
}

function tooLarge(path: string, what: string, maxBytes: number): InputFileError {
  return new InputFileError(`${what} ${path} is larger than ${showBytes(maxBytes)}`);
}

/**
 * The buffer is sized from fstat plus one byte, so a file that grows while it is read (or a
 * /proc-like file reporting size 0) fills it: grow, up to one byte past the cap, then refuse.
 */
function grow(buf: Buffer, path: string, what: string, maxBytes: number): Buffer {
  if (buf.length > maxBytes) throw tooLarge(path, what, maxBytes);
  const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(4096, buf.length * 2)));
  buf.copy(bigger);
  return bigger;
}

function showBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`;
}

function openError(err: unknown, path: string, what: string): InputFileError {
  const e = err as NodeJS.ErrnoException;
  const reason =
    e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'ELOOP' ? 'too many symbolic links' : (e.code ?? e.message);
  return new InputFileError(`cannot read ${what} ${path}: ${reason}`, e.code ?? 'EIO');
}

/** The file's bytes, or an InputFileError naming the path. */
export function readInputFileSync(path: string, what: string, maxBytes = MAX_INPUT_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (err) {
    throw openError(err, path, what);
  }
  try {
    const st = fstatSync(fd);
    check(st, path, what, maxBytes);
    let buf: Buffer = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) buf = grow(buf, path, what, maxBytes);
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) return Buffer.from(buf.subarray(0, n));
      n += got;
    }
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw openError(err, path, what);
  } finally {
    closeSync(fd);
  }
}

/** Async form of readInputFileSync (reloads, the CLI). */
export async function readInputFile(path: string, what: string, maxBytes = MAX_INPUT_BYTES): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, FLAGS);
  } catch (err) {
    throw openError(err, path, what);
  }
  try {
    const st = await handle.stat();
    check(st, path, what, maxBytes);
    let buf: Buffer = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) buf = grow(buf, path, what, maxBytes);
      const { bytesRead } = await handle.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) return Buffer.from(buf.subarray(0, n));
      n += bytesRead;
    }
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw openError(err, path, what);
  } finally {
    await handle.close();
  }
}
