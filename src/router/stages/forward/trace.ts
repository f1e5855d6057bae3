// TRACE with Max-Forwards: 0 is answered by the router itself (RFC 9110 9.3.8), echoing the
// request as message/http without its credentials; other TRACEs are forwarded with one hop less.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { headerValue, isCredentialLike } from '../../headers.js';

/** Whether this router answers the request itself. */
export function traceHere(req: IncomingMessage): boolean {
  return req.method === 'TRACE' && headerValue(req.headers['max-forwards'])?.trim() === '0';
}

/** One hop less in a forwarded TRACE's Max-Forwards. */
export function decrementMaxForwards(req: IncomingMessage, out: OutgoingHttpHeaders): void {
  if (req.method === 'TRACE' && out['max-forwards'] !== undefined) {
    out['max-forwards'] = String(Math.max(0, Number(headerValue(req.headers['max-forwards'])) - 1));
  }
}

/** The echo: the request line and fields as message/http. */
export function traceEcho(req: IncomingMessage, res: ServerResponse): void {
  let text = `${req.method ?? 'TRACE'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    // Credentials are not echoed back (RFC 9110 9.3.8 advises excluding sensitive fields), under
    // any of the names they travel by (X-Api-Key, X-Auth-Token, session ids...).
    if (isCredentialLike(name)) continue;
    text += `${name}: ${req.rawHeaders[i + 1] ?? ''}\r\n`;
  }
  text += '\r\n';
  req.resume();
  res.writeHead(200, { 'content-type': 'message/http', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
