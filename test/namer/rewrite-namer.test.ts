// Linkerd 1's io.l5d.rewrite namer (servicemesh.yml's /portNsSvcToK8s): pattern captures, name
// substitutes, the rest of the path follows; no match is neg so the dtab falls through.

import t from 'tap';
import fc from 'fast-check';
import { Dtab } from '../../src/dtab/dtab.js';
import { Path } from '../../src/dtab/path.js';
import { parsePath } from '../../src/dtab/parse.js';
import { showBound } from '../../src/namer/delegate-tree.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { RewriteNamer } from '../../src/namer/rewrite-namer.js';
import { problemsOf } from '../helpers/config-text.js';

const servicemesh = new RewriteNamer({ prefix: '/portNsSvcToK8s', pattern: '/{port}/{ns}/{svc}', name: '/k8s/{ns}/{port}/{svc}' });

t.test('pattern and name as servicemesh.yml uses them', async (t) => {
  t.equal(servicemesh.rewrite(parsePath('/http/default/world'))?.show(), '/k8s/default/http/world');
  t.equal(servicemesh.rewrite(parsePath('/http/default/world/extra'))?.show(), '/k8s/default/http/world/extra', 'the rest follows');
  t.equal(servicemesh.rewrite(parsePath('/http/default')), undefined, 'too short: no match');
  const literal = new RewriteNamer({ prefix: '/r', pattern: '/http/*/{svc}', name: '/s/{svc}' });
  t.equal(literal.rewrite(parsePath('/http/x/web'))?.show(), '/s/web');
  t.equal(literal.rewrite(parsePath('/grpc/x/web')), undefined, 'a literal must match');
});

t.test("captures inside elements, and names built from them (Linkerd 1's PathMatcher)", async (t) => {
  const dotted = new RewriteNamer({ prefix: '/r', pattern: '/{svc}.{ns}', name: '/k8s/{ns}/http/{svc}' });
  t.equal(dotted.rewrite(parsePath('/world.prod'))?.show(), '/k8s/prod/http/world');
  t.equal(dotted.rewrite(parsePath('/world')), undefined, 'no dot: no match');
  const joined = new RewriteNamer({ prefix: '/r', pattern: '/{ns}/{svc}', name: '/svc/{svc}-{ns}' });
  t.equal(joined.rewrite(parsePath('/prod/world'))?.show(), '/svc/world-prod');
  t.throws(() => new RewriteNamer({ prefix: '/r', pattern: '/{a}.x', name: '/s/{b}' }), /\{b\} is not captured/);
});

t.test('through the interpreter: the rewritten path is delegated again; no match falls through', async (t) => {
  const interp = new NameInterpreter({ namers: [servicemesh] });
  const bind = (dtab: string, path: string): string => {
    const b = interp.bind(Dtab.read(dtab), parsePath(path));
    const s = b.state.get();
    b.close();
    return s.kind === 'ok' ? showBound(s.tree) : s.kind;
  };
  t.equal(bind('/k8s=>/$/inet/127.0.0.1/80;/svc=>/#/portNsSvcToK8s', '/svc/http/default/world'), '/$/inet/127.0.0.1/80/default/http/world');
  t.equal(bind('/svc=>/$/inet/127.0.0.1/81;/svc=>/#/portNsSvcToK8s', '/svc/short'), '/$/inet/127.0.0.1/81/short');
});

t.test('config: bad patterns and names are errors naming the key', async (t) => {
  const base = (pattern: string, name: string): string => `
namers: [{kind: io.l5d.rewrite, prefix: /r, pattern: "${pattern}", name: "${name}"}]
routers: [{protocol: http, dtab: "/svc => /#/r;", servers: [{port: 4140}]}]
`;
  t.same(problemsOf(base('/{a}/{b}', '/x/{b}/{a}')), []);
  t.match(problemsOf(base('/{a}', '/x/{c}')).join('\n'), /name: \{c\} is not captured by the pattern/);
  t.match(problemsOf(base('a/b', '/x')).join('\n'), /pattern must be a path/);
  t.match(problemsOf(base('/{a', '/x')).join('\n'), /neither a literal nor a \{variable\}/);
});

t.test('property: a rewrite never throws and keeps every element past the pattern', async (t) => {
  const label = fc.stringMatching(/^[a-z0-9]{1,6}$/);
  fc.assert(
    fc.property(fc.array(label, { maxLength: 6 }), (elems) => {
      const out = servicemesh.rewrite(new Path(elems));
      if (elems.length < 3) return out === undefined;
      return out !== undefined && out.elems.length === elems.length + 1 && out.elems.slice(4).join('/') === elems.slice(3).join('/');
    }),
  );
  t.pass('held');
});
