// Linkerd 1's identifiers, table-driven: the name each gives a request, the rewritten target when
// segments are consumed, why one cannot name a request, and lists tried in turn.

import fc from 'fast-check';
import t from 'tap';
import { boundedMapStats } from '../../../../src/core/bounded-map.js';
import { parsePath } from '../../../../src/dtab/parse.js';
import { HostmeshError } from '../../../../src/errors.js';
import { buildIdentifier, buildIdentifiers, type RequestFacts } from '../../../../src/router/stages/identify/identifiers.js';

const SVC = parsePath('/svc');

function facts(over: Partial<RequestFacts> & { headers?: Record<string, string> } = {}): RequestFacts {
  const headers = over.headers ?? {};
  return {
    method: over.method ?? 'GET',
    host: 'host' in over ? over.host : 'world',
    target: over.target ?? '/a/b/c?x=1',
    httpVersion: over.httpVersion ?? '1.1',
    header: (n) => headers[n],
  };
}

const cases: { name: string; cfg: Record<string, unknown>; req: RequestFacts; want: string; target?: string }[] = [
  { name: 'header.token on Host (default)', cfg: { kind: 'io.l5d.header.token' }, req: facts(), want: '/svc/world' },
  { name: 'header.token keeps a non-default port', cfg: { kind: 'io.l5d.header.token' }, req: facts({ host: 'world:8080' }), want: '/svc/world:8080' },
  {
    name: 'header.token on another header',
    cfg: { kind: 'io.l5d.header.token', header: 'X-Service' },
    req: facts({ headers: { 'x-service': 'billing' } }),
    want: '/svc/billing',
  },
  { name: 'methodAndHost', cfg: { kind: 'io.l5d.methodAndHost' }, req: facts({ method: 'POST' }), want: '/svc/1.1/POST/world' },
  {
    name: 'methodAndHost, HTTP/1.0 has no host',
    cfg: { kind: 'io.l5d.methodAndHost' },
    req: facts({ httpVersion: '1.0', host: undefined }),
    want: '/svc/1.0/GET',
  },
  { name: 'methodAndHost with the URI', cfg: { kind: 'io.l5d.methodAndHost', httpUriInDst: true }, req: facts(), want: '/svc/1.1/GET/world/a/b/c' },
  { name: 'path, one segment (default)', cfg: { kind: 'io.l5d.path' }, req: facts(), want: '/svc/a', target: '/a/b/c?x=1' },
  { name: 'path, two segments', cfg: { kind: 'io.l5d.path', segments: 2 }, req: facts(), want: '/svc/a/b', target: '/a/b/c?x=1' },
  { name: 'path, consumed', cfg: { kind: 'io.l5d.path', segments: 2, consume: true }, req: facts(), want: '/svc/a/b', target: '/c?x=1' },
  {
    name: 'path, consuming everything leaves /',
    cfg: { kind: 'io.l5d.path', segments: 1, consume: true },
    req: facts({ target: '/only' }),
    want: '/svc/only',
    target: '/',
  },
  {
    name: 'path, consumed before a query',
    cfg: { kind: 'io.l5d.path', segments: 1, consume: true },
    req: facts({ target: '/api?q=1' }),
    want: '/svc/api',
    target: '/?q=1',
  },
  { name: 'header (a path, default l5d-name)', cfg: { kind: 'io.l5d.header' }, req: facts({ headers: { 'l5d-name': '/books/v2' } }), want: '/svc/books/v2' },
  { name: 'header with its own header', cfg: { kind: 'io.l5d.header', header: 'my-header' }, req: facts({ headers: { 'my-header': '/x' } }), want: '/svc/x' },
  { name: 'static', cfg: { kind: 'io.l5d.static', path: '/always/here' }, req: facts(), want: '/svc/always/here' },
  // Linkerd 1's h2 path identifier: without segments, the whole path (query and a trailing / dropped).
  {
    name: 'header.path, whole path (default)',
    cfg: { kind: 'io.l5d.header.path' },
    req: facts({ target: '/pkg.Greeter/SayHello/?x=1' }),
    want: '/svc/pkg.Greeter/SayHello',
  },
  {
    name: 'header.path, one segment',
    cfg: { kind: 'io.l5d.header.path', segments: 1 },
    req: facts({ target: '/pkg.Greeter/SayHello' }),
    want: '/svc/pkg.Greeter',
  },
  {
    name: 'header.path from another header',
    cfg: { kind: 'io.l5d.header.path', header: 'X-Route', segments: 2 },
    req: facts({ headers: { 'x-route': '/a/b/c' } }),
    want: '/svc/a/b',
  },
  { name: 'an identifier with its own dstPrefix', cfg: { kind: 'io.l5d.header.token', dstPrefix: '/http' }, req: facts(), want: '/http/world' },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = buildIdentifier(c.cfg as { kind: string }, SVC)(c.req);
    t.ok('name' in r, JSON.stringify(r));
    if (!('name' in r)) return;
    t.equal(r.name.show(), c.want);
    t.equal(r.target ?? c.req.target, c.target ?? c.req.target);
  });
}

t.test('what an identifier cannot name', async (t) => {
  const unnamed = (cfg: Record<string, unknown>, req: RequestFacts): string => {
    const r = buildIdentifier(cfg as { kind: string }, SVC)(req);
    return 'unidentified' in r ? r.unidentified : `named ${r.name.show()}`;
  };
  t.match(unnamed({ kind: 'io.l5d.header.token' }, facts({ host: undefined })), /no Host/);
  t.match(unnamed({ kind: 'io.l5d.path', segments: 3 }, facts({ target: '/a/b' })), /fewer than 3 segment/);
  t.match(unnamed({ kind: 'io.l5d.header' }, facts()), /no l5d-name header/);
  t.match(unnamed({ kind: 'io.l5d.header' }, facts({ headers: { 'l5d-name': 'not a path' } })), /l5d-name is not a path/);
  t.match(unnamed({ kind: 'io.l5d.methodAndHost' }, facts({ host: undefined })), /no Host/);
  t.match(unnamed({ kind: 'io.l5d.header.path' }, facts({ target: '/' })), /no destination path in :path/);
  t.match(unnamed({ kind: 'io.l5d.header.path', header: 'x-route' }, facts()), /no destination path in x-route/);
});

t.test('a list is tried in turn; when none names the request it is a 400', async (t) => {
  const id = buildIdentifiers([{ kind: 'io.l5d.header', header: 'l5d-name' }, { kind: 'io.l5d.header.token' }], SVC);
  t.equal(id(facts({ headers: { 'l5d-name': '/pinned' } })).name.show(), '/svc/pinned', 'the first that names it wins');
  t.equal(id(facts()).name.show(), '/svc/world', 'then the next');
  const err = (f: () => unknown): HostmeshError | undefined => {
    try {
      f();
    } catch (e) {
      if (e instanceof HostmeshError) return e;
    }
    return undefined;
  };
  t.equal(err(() => id(facts({ host: undefined })))?.code, 'NO_HOST');
  const pathOnly = buildIdentifiers([{ kind: 'io.l5d.path', segments: 2 }], SVC);
  const e2 = err(() => pathOnly(facts({ target: '/x' })));
  t.equal(e2?.code, 'BAD_REQUEST');
  t.match(e2?.message, /fewer than 2/);
});

t.test('bad identifier config fails at startup', async (t) => {
  t.throws(() => buildIdentifier({ kind: 'io.l5d.nope' }, SVC), /not supported/);
  t.throws(() => buildIdentifier({ kind: 'io.l5d.static', path: 'no-slash' }, SVC), /path/);
});

t.test('header.token keeps the names it made, bounded: a flood of distinct hosts holds 1,000 at most, long ones none', async (t) => {
  const id = buildIdentifier({ kind: 'io.l5d.header.token' }, SVC);
  const cached = (): number => boundedMapStats().find((s) => s.name === 'identifier_names')?.size ?? 0;
  const before = cached();
  for (let i = 0; i < 5000; i++) {
    const r = id(facts({ host: `h${i}.example` }));
    if (!('name' in r) || r.name.show() !== `/svc/h${i}.example`) t.fail(`host ${i} named ${JSON.stringify(r)}`);
  }
  t.ok(cached() - before <= 1000, `at most 1,000 names kept (${cached() - before})`);
  const long = 'x'.repeat(300);
  const a = id(facts({ host: long }));
  const b = id(facts({ host: long }));
  t.ok('name' in a && 'name' in b && a.name !== b.name, 'a value longer than a DNS name is named afresh each time, never kept');
  t.equal('name' in b ? b.name.show() : '', `/svc/${long}`);
});

t.test('property: a cached name is the name the value makes, whatever came before', async (t) => {
  const id = buildIdentifier({ kind: 'io.l5d.header.token' }, SVC);
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[a-z0-9.:-]{1,20}$/), { minLength: 1, maxLength: 40 }), (hosts) => {
      for (const host of hosts) {
        const r = id(facts({ host }));
        if (!('name' in r) || r.name.show() !== SVC.concat(parsePath(`/${host}`)).show()) return false;
      }
      return true;
    }),
  );
});

// The cases Linkerd 1's identifier tests pin down (PathIdentifierTest, MethodAndHostIdentifierTest,
// HeaderIdentifierTest, HeaderTokenIdentifierConfigTest, h2's HeaderPathIdentifierTest), restated:
// the name, and the target sent on (io.l5d.path with consume), or `unidentified`.
const linkerd1: [string, Record<string, unknown>, Partial<RequestFacts> & { headers?: Record<string, string> }, string, string?][] = [
  ['path 2, exactly 2', { kind: 'io.l5d.path', segments: 2 }, { target: '/mysvc/subsvc' }, '/svc/mysvc/subsvc'],
  ['path 2, more', { kind: 'io.l5d.path', segments: 2 }, { target: '/mysvc/subsvc/some/path?other=stuff' }, '/svc/mysvc/subsvc'],
  ['path 2, fewer', { kind: 'io.l5d.path', segments: 2 }, { target: '/mysvc?other=stuff' }, 'unidentified'],
  ['path 2, the rest is not read', { kind: 'io.l5d.path', segments: 2 }, { target: '/mysvc/subsvc/!' }, '/svc/mysvc/subsvc'],
  ['path 1, / alone', { kind: 'io.l5d.path' }, { target: '/' }, 'unidentified'],
  ['path 1, a trailing / is no segment', { kind: 'io.l5d.path', segments: 2 }, { target: '/a/' }, 'unidentified'],
  ['path 2, an empty segment', { kind: 'io.l5d.path', segments: 2 }, { target: '/a//b' }, 'unidentified'],
  ['path 1, an empty first segment', { kind: 'io.l5d.path' }, { target: '//a' }, 'unidentified'],
  ['path 1, an empty segment past the name', { kind: 'io.l5d.path' }, { target: '/a//b' }, '/svc/a'],
  ['path 1, a label with odd bytes', { kind: 'io.l5d.path' }, { target: '/a~b!/c' }, '/svc/\\x61\\x7e\\x62\\x21'],
  [
    'consume 2',
    { kind: 'io.l5d.path', segments: 2, consume: true },
    { target: '/mysvc/subsvc/some/path?other=stuff' },
    '/svc/mysvc/subsvc',
    '/some/path?other=stuff',
  ],
  ['consume all', { kind: 'io.l5d.path', segments: 2, consume: true }, { target: '/mysvc/subsvc' }, '/svc/mysvc/subsvc', '/'],
  ['consume, a trailing /', { kind: 'io.l5d.path', segments: 2, consume: true }, { target: '/mysvc/subsvc/' }, '/svc/mysvc/subsvc', '/'],
  ['consume, /path1/', { kind: 'io.l5d.path', segments: 2, consume: true }, { target: '/mysvc/subsvc/path1/' }, '/svc/mysvc/subsvc', '/path1/'],
  [
    'consume, /path1/path2/',
    { kind: 'io.l5d.path', segments: 2, consume: true },
    { target: '/mysvc/subsvc/path1/path2/' },
    '/svc/mysvc/subsvc',
    '/path1/path2/',
  ],
  [
    'consume, /path1/?q',
    { kind: 'io.l5d.path', segments: 2, consume: true },
    { target: '/mysvc/subsvc/path1/?foo=bar' },
    '/svc/mysvc/subsvc',
    '/path1/?foo=bar',
  ],
  [
    'consume, /path1?q/',
    { kind: 'io.l5d.path', segments: 2, consume: true },
    { target: '/mysvc/subsvc/path1?foo=bar/' },
    '/svc/mysvc/subsvc',
    '/path1?foo=bar/',
  ],
  ['consume 1, ?q', { kind: 'io.l5d.path', consume: true }, { target: '/mysvc?other=stuff' }, '/svc/mysvc', '/?other=stuff'],
  ['consume 1, /?q', { kind: 'io.l5d.path', consume: true }, { target: '/mysvc/?other=stuff' }, '/svc/mysvc', '/?other=stuff'],
  ['consume 1, an empty segment after', { kind: 'io.l5d.path', consume: true }, { target: '/a//b' }, '/svc/a', '//b'],
  ['no consume keeps /path1/', { kind: 'io.l5d.path', segments: 2 }, { target: '/mysvc/subsvc/path1/' }, '/svc/mysvc/subsvc', '/mysvc/subsvc/path1/'],
  ['methodAndHost, no Host', { kind: 'io.l5d.methodAndHost' }, { host: undefined, target: '/some/path?other=stuff' }, 'unidentified'],
  ['methodAndHost, Host', { kind: 'io.l5d.methodAndHost' }, { host: 'domain', target: '/some/path?other=stuff' }, '/svc/1.1/GET/domain'],
  [
    'methodAndHost, URI',
    { kind: 'io.l5d.methodAndHost', httpUriInDst: true },
    { host: 'domain', target: '/some/path?other=stuff' },
    '/svc/1.1/GET/domain/some/path',
  ],
  ['methodAndHost, 1.0', { kind: 'io.l5d.methodAndHost' }, { httpVersion: '1.0', method: 'POST', target: '/drum/bass' }, '/svc/1.0/POST'],
  ['methodAndHost, 1.0 with a Host', { kind: 'io.l5d.methodAndHost' }, { httpVersion: '1.0', host: 'x', target: '/' }, '/svc/1.0/GET'],
  [
    'methodAndHost, 1.0 URI',
    { kind: 'io.l5d.methodAndHost', httpUriInDst: true },
    { httpVersion: '1.0', method: 'POST', target: '/drum/bass' },
    '/svc/1.0/POST/drum/bass',
  ],
  ['methodAndHost, URI /', { kind: 'io.l5d.methodAndHost', httpUriInDst: true }, { target: '/' }, '/svc/1.1/GET/world'],
  ['methodAndHost, URI with a trailing /', { kind: 'io.l5d.methodAndHost', httpUriInDst: true }, { target: '/a/' }, 'unidentified'],
  ['methodAndHost, URI not a path', { kind: 'io.l5d.methodAndHost', httpUriInDst: true }, { target: '/a~b' }, 'unidentified'],
  ['methodAndHost, URI with //', { kind: 'io.l5d.methodAndHost', httpUriInDst: true }, { target: '/a//b' }, 'unidentified'],
  ['header path', { kind: 'io.l5d.header', header: 'my-header' }, { headers: { 'my-header': '/a/b/c' } }, '/svc/a/b/c'],
  ['header path absent', { kind: 'io.l5d.header', header: 'my-header' }, {}, 'unidentified'],
  ['header path empty', { kind: 'io.l5d.header', header: 'my-header' }, { headers: { 'my-header': '' } }, 'unidentified'],
  ['header.token', { kind: 'io.l5d.header.token', header: 'my-header' }, { headers: { 'my-header': 'foo' } }, '/svc/foo'],
  [
    'header.token keeps the value as one label',
    { kind: 'io.l5d.header.token', header: 'my-header' },
    { headers: { 'my-header': 'a/b' } },
    '/svc/\\x61\\x2f\\x62',
  ],
  ['header.token on Host', { kind: 'io.l5d.header.token' }, { host: 'foo' }, '/svc/foo'],
  ['header.path, whole :path', { kind: 'io.l5d.header.path' }, { target: '/one/two' }, '/svc/one/two'],
  ['header.path, segments 1', { kind: 'io.l5d.header.path', segments: 1 }, { target: '/one/two' }, '/svc/one'],
  ['header.path ignores the query', { kind: 'io.l5d.header.path' }, { target: '/one/two?three=four' }, '/svc/one/two'],
  ['header.path, a trailing / dropped', { kind: 'io.l5d.header.path' }, { target: '/one/two/' }, '/svc/one/two'],
  ['header.path, shorter than segments', { kind: 'io.l5d.header.path', segments: 3 }, { target: '/one/two' }, 'unidentified'],
  ['header.path, another header', { kind: 'io.l5d.header.path', header: 'lolz' }, { headers: { lolz: '/rofl/hah' } }, '/svc/rofl/hah'],
  ['header.path, that header missing', { kind: 'io.l5d.header.path', header: 'lolz' }, {}, 'unidentified'],
  ['header.path, missing with segments', { kind: 'io.l5d.header.path', header: 'lolz', segments: 1 }, {}, 'unidentified'],
  ['header.path, / alone', { kind: 'io.l5d.header.path' }, { target: '/' }, 'unidentified'],
  ['header.path, gRPC', { kind: 'io.l5d.header.path' }, { target: '/helloworld.Greeter/SayHello' }, '/svc/helloworld.Greeter/SayHello'],
  ['header.path, not a path', { kind: 'io.l5d.header.path' }, { target: '/a b' }, 'unidentified'],
];

t.test('identifiers as Linkerd 1 tests them', async (t) => {
  for (const [name, cfg, over, want, target] of linkerd1) {
    const req = facts({ target: '/', ...over });
    const r = buildIdentifier(cfg as { kind: string }, SVC)(req);
    t.equal('name' in r ? r.name.show() : 'unidentified', want, name);
    if (target !== undefined) t.equal('name' in r ? (r.target ?? req.target) : '', target, `${name}: target`);
  }
});
