// Linkerd 1's rewriting helpers of io.buoyant.http (anyMethod(Pfx), anyHost(Pfx), subdomainOf(Pfx),
// domainToPath(Pfx)) and named ports in hostportPfx/porthostPfx, as dtab tables, as the dtabs of
// its published configs use them; fast-check: a rewrite never throws and never invents elements.

import t from 'tap';
import fc from 'fast-check';
import { Dtab } from '../../src/dtab/dtab.js';
import { NEG } from '../../src/dtab/name-tree.js';
import { Path } from '../../src/dtab/path.js';
import { parsePath } from '../../src/dtab/parse.js';
import type { Addr, BoundName, Lookup, Namer } from '../../src/namer/addr.js';
import { InetAddrs, resolveBuiltin } from '../../src/namer/builtins.js';
import { showBound } from '../../src/namer/delegate-tree.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { Var } from '../../src/namer/var.js';

/** Binds every name under /#/k as itself (so the table shows where a rewrite led). */
const echo: Namer = {
  kind: 'echo',
  prefix: Path.of('k'),
  lookup(path: Path): Var<Lookup> {
    if (path.elems[0] === 'missing') return new Var<Lookup>({ kind: 'ok', tree: NEG });
    const addr = new Var<Addr>({ kind: 'bound', endpoints: [] });
    const bound: BoundName = { id: new Path(['#', 'k', ...path.elems]), residual: Path.empty, addr };
    return new Var<Lookup>({ kind: 'ok', tree: { kind: 'leaf', value: bound } });
  },
};

function bind(dtab: string, path: string): string {
  const interp = new NameInterpreter({ namers: [echo] });
  const b = interp.bind(Dtab.read(dtab), parsePath(path));
  const s = b.state.get();
  b.close();
  if (s.kind === 'ok') return showBound(s.tree);
  return s.kind === 'failed' ? `failed: ${s.error.message}` : 'pending';
}

t.test('the io.buoyant.http rewriting namers (Linkerd 1 semantics)', async (t) => {
  const cases: [string, string, string][] = [
    ['/svc=>/$/io.buoyant.http.anyMethod', '/svc/GET/x/y', '~'],
    ['/svc=>/$/io.buoyant.http.anyMethod;/x=>/#/k/x', '/svc/GET/x/y', '/#/k/x/y'],
    ['/svc=>/$/io.buoyant.http.anyMethod;/x=>/#/k/x', '/svc/get/x', '~'],
    ['/svc=>/$/io.buoyant.http.anyMethodPfx/m;/m=>/#/k', '/svc/POST/world', '/#/k/world'],
    ['/svc=>/$/io.buoyant.http.anyMethodPfx/m;/m=>/#/k', '/svc/1.1/world', '~'],
    ['/svc=>/$/io.buoyant.http.anyHost;/a=>/#/k/a', '/svc/foo.example.com/a/b', '/#/k/a/b'],
    ['/svc=>/$/io.buoyant.http.anyHostPfx/h;/h=>/#/k', '/svc/foo.example.com:8080/world', '/#/k/world'],
    ['/svc=>/$/io.buoyant.http.anyHostPfx/h;/h=>/#/k', '/svc/bad\\x40host/world', '~'],
    ['/svc=>/$/io.buoyant.http.subdomainOf/buoyant.io;/foo=>/#/k/foo', '/svc/foo.buoyant.io/r', '/#/k/foo/r'],
    ['/svc=>/$/io.buoyant.http.subdomainOf/buoyant.io;/foo=>/#/k/foo', '/svc/foo.other.io/r', '~'],
    ['/svc=>/$/io.buoyant.http.subdomainOf/buoyant.io;/foo=>/#/k/foo', '/svc/buoyant.io/r', '~'],
    ['/svc=>/$/io.buoyant.http.subdomainOfPfx/service.consul/c;/c=>/#/k', '/svc/web.service.consul:80', '/#/k/web'],
    ['/svc=>/$/io.buoyant.http.domainToPath;/io=>/#/k', '/svc/foo.buoyant.io/r', '/#/k/buoyant/foo/r'],
    ['/svc=>/$/io.buoyant.http.domainToPathPfx/host;/host=>/#/k', '/svc/world.default', '/#/k/default/world'],
    // Named ports (a Service port name), as servicemesh.yml's porthostPfx and egress dtabs use them.
    ['/svc=>/$/io.buoyant.hostportPfx/hp;/hp=>/#/k', '/svc/world:http', '/#/k/world/http'],
    ['/svc=>/$/io.buoyant.porthostPfx/ph;/ph=>/#/k', '/svc/world:http', '/#/k/http/world'],
    ['/svc=>/$/io.buoyant.porthostPfx/ph;/ph=>/#/k', '/svc/world:8080', '/#/k/8080/world'],
    ['/svc=>/$/io.buoyant.porthostPfx/ph;/ph=>/#/k', '/svc/world:HTTP', '~'],
    ['/svc=>/$/io.buoyant.porthostPfx/ph;/ph=>/#/k', '/svc/world:-x', '~'],
    ['/svc=>/$/io.buoyant.porthostPfx/ph;/ph=>/#/k', '/svc/world', '~'],
    // A rewrite that does not apply is neg, so an alternation falls through to the next dentry.
    ['/svc=>/#/k/fallback;/svc=>/$/io.buoyant.porthostPfx/ph;/ph=>/#/k', '/svc/world', '/#/k/fallback/world'],
  ];
  for (const [dtab, path, want] of cases) t.equal(bind(dtab, path), want, `${dtab} @ ${path}`);
});

t.test('the built-in rewriters as Linkerd 1 tests them (HostPortTest, HttpTest, RinetTest)', async (t) => {
  // What `/$/<kind>/...` alone turns into: the rewritten path, neg, or the bound id and residual.
  const cases: [string, string][] = [
    ['/$/io.buoyant.hostportPfx/ia/127.1:8080/etc', '/ia/127.1/8080/etc'],
    ['/$/io.buoyant.hostportPfx/ia/google.com:8180/etc', '/ia/google.com/8180/etc'],
    ['/$/io.buoyant.hostportPfx/ia/google.com:8180:abcdef/etc', '~'],
    ['/$/io.buoyant.porthostPfx/ia/127.1:8080/etc', '/ia/8080/127.1/etc'],
    ['/$/io.buoyant.hostportPfx/ia/google.com:http/etc', '/ia/google.com/http/etc'],
    ['/$/io.buoyant.hostportPfx/ia/127.1:http/etc', '/ia/127.1/http/etc'],
    ['/$/io.buoyant.hostportPfx/ia/google.com:http:abcdef/etc', '~'],
    ['/$/io.buoyant.porthostPfx/ia/127.1:http/etc', '/ia/http/127.1/etc'],
    // hostmesh's addition: a bracketed IPv6 literal ([::1]:80).
    ['/$/io.buoyant.hostportPfx/ia/\\x5b\\x3a\\x3a1\\x5d\\x3a80', '/ia/::1/80'],
    ['/$/io.buoyant.http.anyMethod/GET/foo/bar/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.anyMethod/A.B/foo/bar/bah', '~'],
    ['/$/io.buoyant.http.anyMethodPfx/foo/GET/bar/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.anyMethodPfx/foo/A.B/bar/bah', '~'],
    ['/$/io.buoyant.http.anyHost/a.b/foo/bar/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.anyHost/a%b/foo/bar/bah', '~'],
    ['/$/io.buoyant.http.anyHostPfx/foo/a.b/bar/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.anyHostPfx/foo/a%b/bar/bah', '~'],
    ['/$/io.buoyant.http.subdomainOf/a.b/foo.a.b/bar/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.a.b/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar_suffix.a.b/bah', '/foo/bar_suffix/bah'],
    ['/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar-suffix.a.b/bah', '/foo/bar-suffix/bah'],
    ['/$/io.buoyant.http.subdomainOfPfx/a.b/foo/bar.a.b:9090/bah', '/foo/bar/bah'],
    ['/$/io.buoyant.http.domainToPath/foo.buoyant.io', '/io/buoyant/foo'],
    ['/$/io.buoyant.http.domainToPathPfx/pfx/foo.buoyant.io', '/pfx/io/buoyant/foo'],
    // Linkerd 1 splits on `.` only: a port stays on the last label, a trailing dot is dropped.
    ['/$/io.buoyant.http.domainToPathPfx/pfx/foo.buoyant.io:8080/x', '/pfx/io:8080/buoyant/foo/x'],
    ['/$/io.buoyant.http.domainToPathPfx/pfx/foo.buoyant.io./x', '/pfx/io/buoyant/foo/x'],
    ['/$/io.buoyant.http.domainToPathPfx/pfx/a..b', '~'],
    ['/$/io.buoyant.http.domainToPathPfx/pfx/a%b', '~'],
    ['/$/io.buoyant.rinet/12345/localhost/residual', 'bound /$/io.buoyant.rinet/12345/localhost residual /residual'],
    ['/$/io.buoyant.rinet/443/example.com', 'bound /$/io.buoyant.rinet/443/example.com residual /'],
    ['/$/io.buoyant.rinet/443', '~'],
  ];
  for (const [path, want] of cases) {
    const r = resolveBuiltin(parsePath(path), new InetAddrs());
    const got =
      r.kind === 'rewrite'
        ? r.path.show()
        : r.kind === 'bound'
          ? `bound ${r.name.id.show()} residual ${r.name.residual.show()}`
          : r.kind === 'neg'
            ? '~'
            : r.kind;
    t.equal(got, want, path);
  }
  t.equal(bind('/ph=>/$/io.buoyant.rinet;/svc=>/ph/443', '/svc/example.com/x'), '/$/io.buoyant.rinet/443/example.com/x', 'servicemesh.yml egress');
});

t.test('property: the rewriting namers never throw, and only reorder or drop what they were given', async (t) => {
  const kinds = [
    'io.buoyant.http.anyMethod',
    'io.buoyant.http.anyMethodPfx',
    'io.buoyant.http.anyHost',
    'io.buoyant.http.anyHostPfx',
    'io.buoyant.http.subdomainOf',
    'io.buoyant.http.subdomainOfPfx',
    'io.buoyant.http.domainToPath',
    'io.buoyant.http.domainToPathPfx',
    'io.buoyant.hostportPfx',
    'io.buoyant.porthostPfx',
  ];
  const label = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/);
  fc.assert(
    fc.property(fc.constantFrom(...kinds), fc.array(label, { maxLength: 5 }), (kind, rest) => {
      const r = resolveBuiltin(new Path(['$', kind, ...rest]), new InetAddrs());
      if (r.kind === 'neg') return true;
      if (r.kind !== 'rewrite') return false;
      // Every element of the result comes from the input, split on '.' or ':' at most.
      const pieces = new Set(rest.flatMap((e) => [e, ...e.split('.'), ...e.split(':'), ...e.split(':')[0]!.split('.')]));
      return r.path.elems.every((e) => pieces.has(e) || rest.some((x) => x.includes(e)));
    }),
  );
  t.pass('no throw, nothing invented');
});
