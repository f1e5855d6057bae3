// Linkerd 1's `clearContext: true` on a server: requests arriving there lose l5d-ctx-* and l5d-dtab
// before any stage reads them, so a client outside the trust boundary cannot steer routing.

import type { IncomingHttpHeaders } from 'node:http';

/**
 * Removes the context headers in place. This is the server's own filter running before the
 * request is handed to the router (as Linkerd 1's ClearContext filter does), so no later stage
 * can read a copy the client sent: the router's dtab overrides, and the l5d-ctx-* headers it
 * would otherwise pass on to the next hop.
 */
export function clearContextHeaders(headers: IncomingHttpHeaders): void {
  for (const name of Object.keys(headers)) {
    if (name === 'l5d-dtab' || name.startsWith('l5d-ctx-')) delete headers[name];
  }
}
