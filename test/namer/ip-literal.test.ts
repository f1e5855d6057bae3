// Endpoint addresses from the API are parsed as canonical IP literals only and never resolved;
// ranges no pod can hold are refused. Table of the hostile spellings seen on a real cluster, and
// fast-check properties against Node's own parser (node:net) as the reference.

import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { addressGuard, comparableIp, formatIpv6, parseIpLiteral, parseIpv4, refusedRange } from '../../src/namer/k8s/ip-literal.js';

const guard = addressGuard({ nodeAddresses: () => ['192.168.1.10', 'fd00::10', '::ffff:192.168.1.11'] });

t.test('hostile spellings are refused; canonical pod addresses pass', async (t) => {
  const refused: [string, string][] = [
    ['0177.0.0.1', 'not-canonical'],
    ['0251.254.0251.254', 'not-canonical'],
    ['0x7f.1', 'not-canonical'],
    ['0x7f000001', 'not-canonical'],
    ['127.1', 'not-canonical'],
    ['2130706433', 'not-canonical'],
    ['010.0.0.1', 'not-canonical'],
    ['10.0.0.1 ', 'not-canonical'],
    ['localhost', 'not-canonical'],
    ['metadata.google.internal', 'not-canonical'],
    ['256.1.1.1', 'not-canonical'],
    ['fe80::1%eth0', 'not-canonical'],
    ['FD00::1', 'not-canonical'],
    ['fd00:0:0:0:0:0:0:1', 'not-canonical'],
    ['fd00::01', 'not-canonical'],
    ['', 'not-canonical'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.3', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::127.0.0.1', 'not-canonical'],
    ['::7f00:1', 'reserved'],
    ['192.168.1.10', 'node-address'],
    ['192.168.1.11', 'node-address'],
    ['fd00::10', 'node-address'],
  ];
  for (const [a, reason] of refused) t.same(guard(a), { ok: false, reason }, `${JSON.stringify(a)} refused: ${reason}`);
  for (const a of ['10.0.0.1', '100.64.3.7', '192.168.1.12', '172.16.0.9', 'fd00::1', '2001:db8::7', '::ffff:10.0.0.1', '1.2.3.4']) {
    t.same(guard(a), { ok: true, host: a }, `${a} accepted as written`);
  }
  t.same(guard('10.0.0.1', 'IPv6'), { ok: false, reason: 'not-canonical' }, 'the slice addressType is the family');
  t.same(guard('fd00::1', 'IPv4'), { ok: false, reason: 'not-canonical' });
  t.same(addressGuard({ allowLoopback: true })('127.0.0.2'), { ok: true, host: '127.0.0.2' }, 'allowLoopbackEndpoints lets loopback through');
  t.same(addressGuard({ allowLoopback: true })('169.254.169.254'), { ok: false, reason: 'link-local' }, '... and nothing else');
});

const octet = fc.integer({ min: 0, max: 255 });
const v4 = fc.tuple(octet, octet, octet, octet);
const groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });

t.test('property: every canonical IPv4 parses to its own octets; no other spelling of a number parses', async (t) => {
  fc.assert(
    fc.property(v4, (o) => {
      const s = o.join('.');
      const p = parseIpLiteral(s);
      return p !== undefined && p.family === 4 && p.text === s && JSON.stringify(parseIpv4(s)) === JSON.stringify(o);
    }),
  );
  // Leading zeros, hex and short forms: the spellings a resolver would read differently.
  const spelled = fc.tuple(v4, fc.integer({ min: 0, max: 3 }), fc.constantFrom('zero', 'hex', 'short')).map(([o, i, how]) => {
    const parts = o.map(String);
    if (how === 'zero') parts[i] = `0${parts[i]}`;
    else if (how === 'hex') parts[i] = `0x${o[i]!.toString(16)}`;
    else return parts.slice(0, 3).join('.');
    return parts.join('.');
  });
  fc.assert(fc.property(spelled, (s) => parseIpLiteral(s) === undefined));
  t.pass('checked');
});

t.test('property: the parser accepts a subset of what node:net accepts, and exactly the RFC 5952 spelling of IPv6', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-fA-F:.x%]{0,40}$/)), (s) => {
      const p = parseIpLiteral(s);
      if (p === undefined) return true;
      return p.family === 4 ? isIPv4(s) : isIPv6(s);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(groups, (g) => {
      const text = formatIpv6(g);
      const p = parseIpLiteral(text);
      if (p === undefined || p.family !== 6 || !isIPv6(text)) return false;
      // The reference: node's URL parser prints IPv6 hosts canonically (WHATWG = RFC 5952 compression).
      return new URL(`http://[${text}]/`).hostname === `[${text}]`;
    }),
  );
  // An uppercase or zero-padded spelling of a canonical address is refused.
  fc.assert(
    fc.property(groups, (g) => {
      const text = formatIpv6(g);
      const upper = text.toUpperCase();
      const padded = g.map((n) => n.toString(16).padStart(4, '0')).join(':');
      return (upper === text || parseIpLiteral(upper) === undefined) && (padded === text || parseIpLiteral(padded) === undefined);
    }),
  );
  t.pass('checked');
});

t.test('property: an IPv4-mapped address is judged as its IPv4 address', async (t) => {
  fc.assert(
    fc.property(v4, (o) => {
      const mapped = parseIpLiteral(`::ffff:${o.join('.')}`);
      const plain = parseIpLiteral(o.join('.'));
      return mapped !== undefined && plain !== undefined && refusedRange(mapped) === refusedRange(plain) && comparableIp(mapped.text) === plain.text;
    }),
  );
  t.pass('checked');
});
