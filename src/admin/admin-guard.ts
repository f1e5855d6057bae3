// Who may talk to the admin server: a Host it answers to (no DNS rebinding), no cross-origin
// browser request, and for a state change a request no web page can send and no router forwarded.

import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

/**
 * The header every state change needs. It is not CORS-safelisted, so a page on another origin
 * must preflight it, and the admin server never grants a preflight (it sends no CORS headers).
 */
const ADMIN_HEADER = 'hostmesh-admin';

/** Why an admin request was refused (a metric label: keep the set fixed). */
export type AdminRefusal = 'host' | 'origin' | 'simple' | 'forwarded' | 'remote';

export interface HostRules {
  /** The address the admin server listens on (0.0.0.0 or :: means every local address). */
  readonly adminIp: string;
  /** This host's interface addresses (read only when an IP Host must be matched against them). */
  readonly localAddresses: () => readonly string[];
  /** Further names the admin answers to (admin.allowedHosts: a Service name, a node name...). */
  readonly allowedHosts: readonly string[];
}

const NAME = /^[a-z0-9_~-]+(\.[a-z0-9_~-]+)*\.?$/i;

/** The host part of a Host header, lower case, without brackets or a trailing dot; undefined when malformed. */
function hostName(host: string): string | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(:[0-9]{1,5})?$/i.exec(host.trim());
  if (m === null) return undefined;
  let name = (m[1] as string).toLowerCase();
  if (name.startsWith('[')) {
    name = name.slice(1, -1);
    return isIP(name) === 6 ? name : undefined;
  }
  if (!NAME.test(name)) return undefined;
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function isLoopbackIp(ip: string): boolean {
  return (isIP(ip) === 4 && ip.startsWith('127.')) || ip === '::1' || /^::ffff:127\./.test(ip);
}

/**
 * Whether the admin answers a request with this Host. A page from a rebound DNS name reaches
 * the admin's address with its own name in Host, so only names that are this host are served:
 * loopback names (RFC 6761 `localhost`), the admin's own addresses, and configured names.
 * No Host at all (HTTP/1.0 tools) is served: a browser always sends one.
 */
export function hostAllowed(host: string | undefined, rules: HostRules): boolean {
  if (host === undefined) return true;
  const name = hostName(host);
  if (name === undefined) return false;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) !== 0) {
    if (isLoopbackIp(name)) return true;
    const listen = rules.adminIp.toLowerCase();
    if (listen === '0.0.0.0' || listen === '::' || listen === '') return rules.localAddresses().some((a) => a.toLowerCase() === name);
    return name === listen;
  }
  return rules.allowedHosts.some((h) => hostName(h) === name);
}

/**
 * Whether a request is not a cross-origin browser request: no Origin, or the admin's own origin
 * (the dashboard's fetches), and no Sec-Fetch-Site naming another site.
 */
function originAllowed(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = headers.origin;
  if (origin === undefined) return true;
  try {
    const from = new URL(origin);
    if (from.protocol !== 'http:' || origin.toLowerCase() !== `${from.protocol}//${from.host}`) return false;
    return headers.host !== undefined && from.host === new URL(`http://${headers.host}`).host;
  } catch {
    return false; // `null` (opaque origins) and anything that is not an origin
  }
}

/**
 * Whether a request came through a router: the marks hostmesh (and Linkerd 1) add to every
 * request they forward. They lead the forwarded headers, so padding cannot push them out.
 */
function forwardedByRouter(headers: IncomingHttpHeaders): boolean {
  if (headers['l5d-dst-service'] !== undefined || headers['l5d-dst-client'] !== undefined) return true;
  const via = headers.via;
  if (via === undefined) return false;
  return via.split(',').some((entry) => entry.trim().split(/\s+/)[1]?.toLowerCase() === 'hostmesh');
}

/** Refuses what the admin must not serve; undefined when the request may go on. */
export function checkAdminRequest(
  headers: IncomingHttpHeaders,
  rules: HostRules,
  changesState: boolean,
): { reason: AdminRefusal; message: string } | undefined {
  if (!hostAllowed(headers.host, rules)) {
    return { reason: 'host', message: 'the admin server does not answer this Host (loopback names, its own addresses and admin.allowedHosts only)' };
  }
  if (!originAllowed(headers)) return { reason: 'origin', message: 'cross-origin requests to the admin server are refused' };
  if (!changesState) return undefined;
  const marker = headers[ADMIN_HEADER];
  if (typeof marker !== 'string' || marker.trim() === '') {
    return { reason: 'simple', message: `a state change needs the header '${ADMIN_HEADER}: 1' (curl -X POST -H '${ADMIN_HEADER}: 1' ...)` };
  }
  if (forwardedByRouter(headers))
    return { reason: 'forwarded', message: 'state changes are refused on requests sent through a router (Via: hostmesh, l5d-dst-*)' };
  return undefined;
}
