// Request target normalization before identification: Host validated and lowercased (`:80` dropped so
// `world` and `world:80` name one service), absolute-form targets (http_proxy clients) made origin-form.

import { HostmeshError } from '../../../errors.js';

// RFC 3986 reg-name / IPv4 characters, or a bracketed IPv6 literal, then an optional port.
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::([0-9]{1,5}))?$/;

/** Validates a Host value; returns it lowercased with a default `:80` dropped. */
export function normalizeHost(raw: string): string {
  const m = HOST.exec(raw);
  if (m === null) throw new HostmeshError('BAD_REQUEST', `invalid Host '${raw.replace(/[^\x20-\x7e]/g, '?')}'`);
  if (m[1] !== undefined && Number(m[1]) > 65535) throw new HostmeshError('BAD_REQUEST', `invalid port in Host '${raw}'`);
  const host = raw.toLowerCase();
  return host.endsWith(':80') ? host.slice(0, -3) : host;
}

export interface Normalized {
  /** Normalized Host, or undefined when the request has none. */
  readonly host: string | undefined;
  /** The origin-form request target. */
  readonly target: string;
}

/**
 * Normalizes a request target: absolute-form (RFC 9112 3.2.2, what http_proxy clients send) is
 * rewritten to origin-form and its authority replaces Host. Bad hosts, ports and schemes are 400s.
 */
export function normalizeTarget(url: string, hostHeader: string | undefined): Normalized {
  let host = hostHeader;
  let target = url;
  if (url.length > 0 && url[0] !== '/' && url !== '*') {
    const colon = url.indexOf('://');
    if (colon <= 0) throw new HostmeshError('BAD_REQUEST', `unsupported request target '${url.slice(0, 100)}'`);
    const scheme = url.slice(0, colon).toLowerCase();
    if (scheme !== 'http') throw new HostmeshError('BAD_REQUEST', `unsupported scheme '${scheme}' in absolute-form target`);
    const rest = url.slice(colon + 3);
    const slash = rest.search(/[/?#]/);
    const authority = slash === -1 ? rest : rest.slice(0, slash);
    if (authority.includes('@')) throw new HostmeshError('BAD_REQUEST', 'userinfo is not allowed in the request target');
    if (authority === '') throw new HostmeshError('BAD_REQUEST', 'empty authority in absolute-form target');
    host = authority;
    target = slash === -1 ? '/' : rest[slash] === '/' ? rest.slice(slash) : '/' + rest.slice(slash);
  }
  return { host: host === undefined || host === '' ? undefined : normalizeHost(host), target };
}
