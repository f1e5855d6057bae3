import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import t from 'tap';
import { appendVia, endToEnd, h2cAsHttp11, isCredentialLike, tooManyHeaders, viaHops } from '../../src/router/headers.js';

t.test('hop-by-hop headers and the ones Connection names are stripped', async (t) => {
  const out = endToEnd(
    {
      connection: 'keep-alive, x-secret',
      'keep-alive': 'timeout=5',
      'x-secret': '1',
      'proxy-authorization': 'Basic x',
      te: 'trailers',
      upgrade: 'websocket',
      'transfer-encoding': 'chunked',
      'x-keep': 'yes',
      'l5d-client-id': 'forged',
    },
    new Set(['l5d-client-id']),
  );
  t.same(out, { 'x-keep': 'yes' });
});

t.test('Via counts and appends hops', async (t) => {
  t.equal(viaHops(undefined), 0);
  t.equal(viaHops('1.1 a, 1.1 b'), 2);
  t.equal(viaHops(['1.1 a', '1.1 b, 1.0 c']), 3);
  t.equal(appendVia(undefined), '1.1 hostmesh');
  t.equal(appendVia('1.1 x'), '1.1 x, 1.1 hostmesh');
});

t.test('endToEnd appends after what the hop put first, so its own headers lead', async (t) => {
  const out = endToEnd({ 'x-pad-1': '1', via: 'forged', 'x-pad-2': '2' }, new Set(['via']), { host: 'world', via: '1.1 hostmesh' });
  t.same(Object.keys(out), ['host', 'via', 'x-pad-1', 'x-pad-2']);
  t.equal(out.via, '1.1 hostmesh');
});

t.test('header count: over the limit only when more fields than it arrived', async (t) => {
  const raw = (n: number): string[] => Array.from({ length: n }, (_, i) => [`x-${i}`, 'v']).flat();
  t.notOk(tooManyHeaders(raw(500), 500));
  t.ok(tooManyHeaders(raw(501), 500));
});

t.test('credential-like names are recognised, ordinary ones are not', async (t) => {
  for (const name of [
    'Authorization',
    'X-Api-Key',
    'apikey',
    'X-Auth-Token',
    'X-Session-Id',
    'X-Client-Secret',
    'X-Passwd',
    'X-CSRF-Token',
    'X-Forwarded-Client-Cert',
    'Cookie',
    'Set-Cookie',
    'X-Jwt-Assertion',
    'X-Signature',
  ]) {
    t.ok(isCredentialLike(name), name);
  }
  for (const name of ['Host', 'Accept', 'User-Agent', 'X-Probe', 'Max-Forwards', 'Content-Type', 'l5d-reqid', 'Via']) t.notOk(isCredentialLike(name), name);
});

t.test('an h2c-only upgrade is rewritten as a plain HTTP/1.1 request head', async (t) => {
  const req = (headers: [string, string][], url = '/x'): IncomingMessage =>
    ({
      method: 'POST',
      url,
      httpVersion: '1.1',
      rawHeaders: headers.flat(),
      headers: Object.fromEntries(headers.map(([k, v]) => [k.toLowerCase(), v])),
    }) as unknown as IncomingMessage;
  const plain = h2cAsHttp11(
    req([
      ['Host', 'world'],
      ['Connection', 'Upgrade, HTTP2-Settings, keep-alive'],
      ['Upgrade', 'h2c'],
      ['HTTP2-Settings', 'AAMA'],
      ['Content-Length', '5'],
    ]),
  );
  t.equal(plain?.toString('latin1'), 'POST /x HTTP/1.1\r\nHost: world\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n');
  const bare = h2cAsHttp11(
    req(
      [
        ['Host', 'world'],
        ['Connection', 'upgrade'],
        ['Upgrade', 'H2C'],
      ],
      'http://world/y',
    ),
  );
  t.equal(bare?.toString('latin1'), 'POST http://world/y HTTP/1.1\r\nHost: world\r\n\r\n', 'absolute-form kept; a Connection left empty is dropped');
  t.equal(
    h2cAsHttp11(
      req([
        ['Host', 'w'],
        ['Connection', 'Upgrade'],
        ['Upgrade', 'websocket'],
      ]),
    ),
    undefined,
    'WebSocket is not touched',
  );
  t.equal(
    h2cAsHttp11(
      req([
        ['Host', 'w'],
        ['Connection', 'Upgrade'],
        ['Upgrade', 'h2c, websocket'],
      ]),
    ),
    undefined,
    'a mixed offer is tunnelled as before',
  );
});

t.test('property: endToEnd drops exactly the hop-by-hop fields and those Connection names, whatever its case and spacing', async (t) => {
  const HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings'];
  const name = fc.constantFrom('keep-alive', 'close', 'x-a', 'x-b', 'te', 'upgrade', 'close-me');
  const casing = (s: string): fc.Arbitrary<string> => fc.constantFrom(s, s.toUpperCase(), s[0]?.toUpperCase() + s.slice(1));
  fc.assert(
    fc.property(
      fc.array(name.chain(casing), { maxLength: 4 }),
      fc.constantFrom(', ', ',', ' , '),
      fc.subarray(['x-a', 'x-b', 'close', 'keep-alive', 'close-me', 'x-c']),
      (tokens, sep, present) => {
        const headers: Record<string, string> = { connection: tokens.join(sep) };
        for (const p of present) headers[p] = 'v';
        const out = endToEnd(headers, new Set());
        const named = new Set(tokens.map((x) => x.trim().toLowerCase()));
        for (const p of present) {
          const dropped = HOP.includes(p) || named.has(p);
          if ((out[p] === undefined) !== dropped) return false;
        }
        return out['connection'] === undefined;
      },
    ),
  );
});

t.test('property: viaHops counts the non-blank comma-separated entries of every line', async (t) => {
  const reference = (via: string | string[]): number =>
    (Array.isArray(via) ? via : [via]).reduce((n, line) => n + line.split(',').filter((p) => p.trim() !== '').length, 0);
  const text = fc.string({ unit: fc.constantFrom(',', ' ', '\t', 'a', '1', '.', '/', '\u00a0', '\u00e9', '\u000b'), maxLength: 30 });
  fc.assert(fc.property(fc.oneof(text, fc.array(text, { maxLength: 4 })), (via) => viaHops(via) === reference(via)));
  t.equal(viaHops(' , 1.1 a ,, ,1.1 b ,'), 2);
  t.equal(viaHops('\u00a0,1.1 a'), 1, 'a no-break space is blank, as trim says');
});
