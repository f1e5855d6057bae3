// The one error writer: any error on the request path, or a parser error before a request exists,
// becomes one answer (catalog status, `l5d-err`, a body naming the routing context), rendered onto
// an http.ServerResponse or as raw bytes on a socket that left the HTTP server (upgrade, CONNECT).

import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestContext } from '../router/context.js';

export function toHostmeshError(err: unknown): HostmeshError {
  if (err instanceof HostmeshError) return err;
  return new HostmeshError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

/** One error answer, before it is written: both outputs render exactly this. */
export interface ErrorAnswer {
  readonly error: HostmeshError;
  readonly status: number;
  /** The header fields, in the order a raw answer writes them. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/**
 * The answer to `err` in `ctx`: `l5d-err` is the short reason, URL-encoded as Linkerd 1 did (it
 * also keeps CR/LF and non-ASCII out of the header); the body repeats it and adds the service,
 * the router's dtab, any override and the error's detail (the delegation path of a 502).
 */
export function errorAnswer(err: unknown, ctx: RequestContext = {}): ErrorAnswer {
  const e = toHostmeshError(err);
  const lines = [e.message];
  if (ctx.service !== undefined) lines.push(`service: ${ctx.service}`);
  if (ctx.dtab !== undefined) lines.push(`dtab: ${ctx.dtab}`);
  if (ctx.overrides) lines.push(`override dtab: ${ctx.overrides}`);
  if (e.detail !== undefined) lines.push(e.detail);
  const body = `${lines.join('\n')}\n`;
  return {
    error: e,
    status: e.status,
    headers: [
      ['l5d-err', encodeURIComponent(e.message)],
      ['content-type', 'text/plain; charset=utf-8'],
      ['content-length', String(Buffer.byteLength(body))],
    ],
    body,
  };
}

function logged(err: unknown, ctx: RequestContext, logger: Logger): ErrorAnswer {
  const answer = errorAnswer(err, ctx);
  const e = answer.error;
  if (e.code === 'INTERNAL') logger.error({ err }, 'internal error on the request path');
  else logger.debug({ code: e.code, msg: e.message }, 'request failed');
  return answer;
}

/** HTTP output: writes the answer, or cuts the connection when the response had already started. */
export function rescue(res: ServerResponse, err: unknown, ctx: RequestContext, logger: Logger): void {
  const answer = logged(err, ctx, logger);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(answer.status, Object.fromEntries(answer.headers));
  res.end(answer.body);
}

/**
 * Raw output, for a socket outside an HTTP exchange (parser errors, refused upgrades and
 * CONNECTs): the same answer as bytes, with `connection: close`, then the socket is ended. See
 * endRaw for the deadline on a client that does not take it.
 */
export function rescueRaw(socket: Duplex, err: unknown, ctx: RequestContext, logger: Logger, lingerMs: number, onDeadline?: () => void): void {
  const answer = logged(err, ctx, logger);
  endRaw(socket, rawBytes(answer), lingerMs, onDeadline);
}

/** The HTTP/1.1 text of an answer: the status line Node would write, the fields, the body. */
export function rawBytes(answer: ErrorAnswer): string {
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\n`;
  for (const [name, value] of answer.headers) head += `${name}: ${value}\r\n`;
  return `${head}connection: close\r\n\r\n${answer.body}`;
}

/** The catalog error for one Node's HTTP parser raised before a request existed (its clientError). */
export function parserError(err: NodeJS.ErrnoException): HostmeshError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return HostmeshError.of('HEADERS_TOO_LARGE', 'size');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return HostmeshError.of('REQUEST_TIMEOUT', 'headers');
    default:
      return HostmeshError.of('BAD_REQUEST', 'parser', { reason: `${err.code ?? 'parse error'}: ${(err as { reason?: string }).reason ?? err.message}` });
  }
}

/**
 * Writes a raw answer on a socket and ends it. A peer that never takes the answer (it does not
 * read, or never finishes the close) loses the socket after `lingerMs`, so an unread error answer
 * cannot hold a file descriptor. Callers on TLS must not use this before the handshake finished:
 * there is no channel to write into then, and the socket is destroyed instead.
 */
function endRaw(socket: Duplex, response: string, lingerMs: number, onDeadline?: () => void): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => {
    onDeadline?.();
    socket.destroy();
  }, lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(response);
}
