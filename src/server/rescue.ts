// The one rescue point: turns any error on the request path into a response with `l5d-err`
// (a short reason, URL-encoded as Linkerd 1 did) and a body that explains the routing context.

import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HostmeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestContext } from '../router/router.js';

export function toHostmeshError(err: unknown): HostmeshError {
  if (err instanceof HostmeshError) return err;
  return new HostmeshError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

/** Writes the error response, or cuts the connection when the response had already started. */
export function rescue(res: ServerResponse, err: unknown, ctx: RequestContext, logger: Logger): void {
  const e = toHostmeshError(err);
  if (e.code === 'INTERNAL') logger.error({ err }, 'internal error on the request path');
  else logger.debug({ code: e.code, msg: e.message }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const lines = [e.message];
  if (ctx.service !== undefined) lines.push(`service: ${ctx.service}`);
  if (ctx.dtab !== undefined) lines.push(`dtab: ${ctx.dtab}`);
  if (ctx.overrides) lines.push(`override dtab: ${ctx.overrides}`);
  if (e.detail !== undefined) lines.push(e.detail);
  const body = lines.join('\n') + '\n';
  res.writeHead(e.status, {
    'l5d-err': encodeURIComponent(e.message),
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** A raw response for errors the HTTP parser raises before a request exists (Node's clientError). */
export function rawParserError(reason: string, status: 400 | 408 | 414 | 431 = 400): string {
  const text = { 400: 'Bad Request', 408: 'Request Timeout', 414: 'URI Too Long', 431: 'Request Header Fields Too Large' }[status];
  const message = status === 400 ? `bad request: ${reason}` : reason;
  const body = `${message}\n`;
  return (
    `HTTP/1.1 ${status} ${text}\r\nl5d-err: ${encodeURIComponent(message)}\r\n` +
    `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/**
 * Writes a raw answer on a socket outside an HTTP exchange (parser errors, refused upgrades and
 * CONNECTs) and ends it. A peer that never takes the answer (it does not read, or never finishes
 * the close) loses the socket after `lingerMs`, so an unread error answer cannot hold a file
 * descriptor. Callers on TLS must not use this before the handshake finished: there is no
 * channel to write into then, and the socket is destroyed instead.
 */
export function endRaw(socket: Duplex, response: string, lingerMs: number, onDeadline?: () => void): void {
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
