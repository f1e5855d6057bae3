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
