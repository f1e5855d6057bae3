// Pure: endpoint addresses from the Kubernetes API are hostile input. Only canonical IP literals
// are accepted (IPv4 dotted-decimal without leading zeros, RFC 5952 IPv6), so no string from the
// API ever reaches a resolver, which would read `0177.0.0.1` as 127.0.0.1 or `0x7f.1` as
// 127.0.0.1; and addresses a pod can never hold (loopback, link-local, unspecified, multicast,
// broadcast, the node's own) are refused, so discovery data cannot aim a router at the node.

/** A parsed address: its family and canonical spelling (what the proxy dials). */
export interface IpLiteral {
  readonly family: 4 | 6;
  readonly text: string;
}

const V4 = /^(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})$/;

/** Four octets of a canonical dotted-decimal IPv4 address, or undefined (leading zeros, hex, short forms refused). */
export function parseIpv4(s: string): [number, number, number, number] | undefined {
  if (s.length > 15 || !V4.test(s)) return undefined;
  const parts = s.split('.').map(Number) as [number, number, number, number];
  return parts.every((n) => n <= 255) ? parts : undefined;
}

/** Eight 16-bit groups of an IPv6 literal in any RFC 4291 text form (no zone), or undefined. */
function ipv6Groups(s: string): number[] | undefined {
  if (s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let tail: number[] = [];
  let body = s;
  if (s.includes('.')) {
    const at = s.lastIndexOf(':');
    const v4 = parseIpv4(s.slice(at + 1));
    if (v4 === undefined) return undefined;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    body = s.slice(0, at + 1);
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const group = (g: string): number | undefined => (/^[0-9a-fA-F]{1,4}$/.test(g) ? Number.parseInt(g, 16) : undefined);
  const side = (h: string | undefined): number[] | undefined => {
    if (h === undefined || h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      const n = group(g);
      if (n === undefined) return undefined;
      out.push(n);
    }
    return out;
  };
  const head = side(halves[0]);
  const rest = side(halves[1]);
  if (head === undefined || rest === undefined) return undefined;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1) return known === 8 ? [...head, ...tail] : undefined;
  if (known > 7) return undefined; // '::' stands for at least one group
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
}

/** The RFC 5952 spelling of eight groups: lowercase, no leading zeros, the longest run (>= 2) of zero groups as '::'. */
export function formatIpv6(groups: readonly number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: readonly number[]): string => g.map((n) => n.toString(16)).join(':');
  if (bestAt === -1) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/**
 * The address if `s` is a canonical IP literal of the family (`IPv4`, `IPv6`, or either), else
 * undefined. IPv6 must be written as RFC 5952 prints it, without a zone; IPv4 without leading
 * zeros. Nothing is resolved.
 */
export function parseIpLiteral(s: string, family?: 'IPv4' | 'IPv6'): IpLiteral | undefined {
  if (family !== 'IPv6' && parseIpv4(s) !== undefined) return { family: 4, text: s };
  if (family === 'IPv4') return undefined;
  const groups = ipv6Groups(s);
  if (groups === undefined) return undefined;
  const canonical = formatIpv6(groups);
  // RFC 5952 prints IPv4-mapped addresses with a dotted tail (::ffff:10.0.0.1): accept that spelling too.
  const mapped = isMapped(groups) ? `::ffff:${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}` : undefined;
  return s === canonical || s === mapped ? { family: 6, text: s } : undefined;
}

function isMapped(g: readonly number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/** Why discovery must not deliver to an address, or undefined when a pod may hold it. */
export type RefusedRange = 'loopback' | 'link-local' | 'unspecified' | 'multicast' | 'broadcast' | 'reserved';

export function refusedRange(ip: IpLiteral): RefusedRange | undefined {
  if (ip.family === 4) return refusedV4(parseIpv4(ip.text) as [number, number, number, number]);
  const g = ipv6Groups(ip.text) as number[];
  // IPv4-mapped (::ffff:a.b.c.d) reaches the IPv4 address on a dual-stack socket: judge that.
  if (isMapped(g)) return refusedV4([g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255]);
  const first = g[0] as number;
  if (g.every((n) => n === 0)) return 'unspecified';
  if (g.slice(0, 7).every((n) => n === 0) && g[7] === 1) return 'loopback';
  if ((first & 0xffc0) === 0xfe80) return 'link-local';
  if ((first & 0xff00) === 0xff00) return 'multicast';
  // IPv4-compatible (::a.b.c.d, deprecated by RFC 4291) and the rest of ::/96: no pod holds them.
  if (g.slice(0, 6).every((n) => n === 0)) return 'reserved';
  return undefined;
}

function refusedV4([a, b, c, d]: readonly [number, number, number, number]): RefusedRange | undefined {
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 0) return 'unspecified'; // 0.0.0.0/8, "this network" (RFC 1122)
  if (a >= 224 && a <= 239) return 'multicast';
  if (a === 255 && b === 255 && c === 255 && d === 255) return 'broadcast';
  if (a >= 240) return 'reserved'; // 240.0.0.0/4 (RFC 1112)
  return undefined;
}

/** One spelling per address for comparisons (node addresses from interfaces, pod IPs): IPv4-mapped as IPv4, canonical IPv6. */
export function comparableIp(s: string): string | undefined {
  if (parseIpv4(s) !== undefined) return s;
  const g = ipv6Groups(s.split('%')[0] ?? '');
  if (g === undefined) return undefined;
  if (isMapped(g)) return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return formatIpv6(g);
}

/** What a namer decides about one address from discovery. */
export type AddressVerdict =
  | { readonly ok: true; readonly host: string }
  | { readonly ok: false; readonly reason: RefusedRange | 'not-canonical' | 'node-address' };

export interface AddressGuardOptions {
  /** This node's own addresses (interfaces, HOST_IP), any spelling; read on each call. */
  readonly nodeAddresses?: () => Iterable<string>;
  /** Lets loopback addresses through (a cluster simulated on one machine: tests, the demo); never in a real cluster. */
  readonly allowLoopback?: boolean;
}

/** Judges discovery addresses: canonical literal, not a refused range, not this node's own. */
export function addressGuard(options: AddressGuardOptions = {}): (address: string, family?: 'IPv4' | 'IPv6') => AddressVerdict {
  let nodeSet: Set<string> | undefined;
  let nodeSource: string[] = [];
  const nodeAddress = (host: string): boolean => {
    if (options.nodeAddresses === undefined) return false;
    const now = [...options.nodeAddresses()];
    if (nodeSet === undefined || now.length !== nodeSource.length || now.some((a, i) => a !== nodeSource[i])) {
      nodeSource = now;
      nodeSet = new Set(now.flatMap((a) => comparableIp(a) ?? []));
    }
    return nodeSet.has(comparableIp(host) ?? host);
  };
  return (address, family) => {
    const ip = parseIpLiteral(address, family);
    if (ip === undefined) return { ok: false, reason: 'not-canonical' };
    const range = refusedRange(ip);
    if (range !== undefined && !(range === 'loopback' && options.allowLoopback === true)) return { ok: false, reason: range };
    if (range === undefined && nodeAddress(ip.text)) return { ok: false, reason: 'node-address' };
    return { ok: true, host: ip.text };
  };
}
