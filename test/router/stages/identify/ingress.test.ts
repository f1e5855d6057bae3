// The io.l5d.ingress matcher: which Ingresses are served (class annotation), how host and path
// match (Prefix/Exact as Kubernetes, ImplementationSpecific as Linkerd 1's regex), the order, and
// the bounds on hostile objects. Properties with fast-check beside the examples.

import fc from 'fast-check';
import t from 'tap';
import type { KObject } from '../../../../src/k8s/client.js';
import {
  compileIngress,
  compilePath,
  IngressTable,
  matchHost,
  pathMatches,
  projectIngress,
  safeRegex,
  type CompiledIngress,
} from '../../../../src/router/stages/identify/ingress.js';
import { buildIdentifiers } from '../../../../src/router/stages/identify/identifiers.js';
import { parsePath } from '../../../../src/dtab/parse.js';
import { HostmeshError } from '../../../../src/errors.js';

interface P {
  path?: string;
  pathType?: string;
  service: string;
  port: number | string;
}

function ingress(
  name: string,
  rules: { host?: string; paths: P[] }[],
  opts: { ns?: string; cls?: string; className?: string; fallback?: { service: string; port: number } } = {},
): KObject {
  const backend = (b: { service: string; port: number | string }) => ({
    service: { name: b.service, port: typeof b.port === 'number' ? { number: b.port } : { name: b.port } },
  });
  return {
    kind: 'Ingress',
    metadata: {
      name,
      namespace: opts.ns ?? 'default',
      resourceVersion: '1',
      ...(opts.cls !== undefined ? { annotations: { 'kubernetes.io/ingress.class': opts.cls } } : {}),
    },
    spec: {
      ...(opts.className !== undefined ? { ingressClassName: opts.className } : {}),
      ...(opts.fallback !== undefined ? { defaultBackend: backend(opts.fallback) } : {}),
      rules: rules.map((r) => ({
        ...(r.host !== undefined ? { host: r.host } : {}),
        http: {
          paths: r.paths.map((p) => ({
            ...(p.path !== undefined ? { path: p.path } : {}),
            ...(p.pathType !== undefined ? { pathType: p.pathType } : {}),
            backend: backend(p),
          })),
        },
      })),
    },
  } as KObject;
}

const opts = { cls: 'linkerd', ignoreDefaultBackends: false };

function table(objs: KObject[], o = opts): IngressTable {
  const compiled = objs.map((x) => compileIngress(projectIngress(x, 100), o)).filter((c): c is CompiledIngress => typeof c !== 'string');
  return new IngressTable(compiled);
}

function svc(tb: IngressTable, host: string | undefined, path: string): string | undefined {
  const b = tb.match(host, path);
  return b === undefined ? undefined : `${b.namespace}/${b.port}/${b.service}`;
}

t.test('host and path route to namespace/port/service, as Linkerd 1 named them', async (t) => {
  const tb = table([
    ingress(
      'web',
      [
        {
          host: 'shop.example.com',
          paths: [
            { path: '/api', pathType: 'Prefix', service: 'api', port: 8080 },
            { path: '/', pathType: 'Prefix', service: 'web', port: 'http' },
          ],
        },
        { host: '*.example.com', paths: [{ path: '/', pathType: 'Prefix', service: 'wild', port: 80 }] },
        { paths: [{ path: '/health', pathType: 'Exact', service: 'health', port: 9 }] },
      ],
      { ns: 'shop' },
    ),
  ]);
  t.equal(svc(tb, 'shop.example.com', '/api/v1/items'), 'shop/8080/api');
  t.equal(svc(tb, 'SHOP.example.com:8080', '/api'), 'shop/8080/api', 'host is case-insensitive, its port ignored');
  t.equal(svc(tb, 'shop.example.com', '/apix'), 'shop/http/web', 'Prefix matches whole path elements');
  t.equal(svc(tb, 'other.example.com', '/x'), 'shop/80/wild', '*. wildcard: one label');
  t.equal(svc(tb, 'a.b.example.com', '/health'), 'shop/9/health', 'the wildcard does not cover two labels; the hostless rule does');
  t.equal(svc(tb, 'example.com', '/x'), undefined, 'nor the bare domain');
  t.equal(svc(tb, undefined, '/health/'), undefined, 'Exact is exact');
});

t.test('the class annotation: absent or the configured class is served, another is not', async (t) => {
  const objs = [
    ingress('a', [{ host: 'a', paths: [{ service: 'a', port: 80 }] }]),
    ingress('b', [{ host: 'b', paths: [{ service: 'b', port: 80 }] }], { cls: 'linkerd' }),
    ingress('c', [{ host: 'c', paths: [{ service: 'c', port: 80 }] }], { cls: 'nginx' }),
    ingress('d', [{ host: 'd', paths: [{ service: 'd', port: 80 }] }], { className: 'nginx' }),
  ];
  const tb = table(objs);
  t.same([svc(tb, 'a', '/'), svc(tb, 'b', '/'), svc(tb, 'c', '/'), svc(tb, 'd', '/')], ['default/80/a', 'default/80/b', undefined, undefined]);
  const nginx = table(objs, { cls: 'nginx', ignoreDefaultBackends: false });
  t.same([svc(nginx, 'a', '/'), svc(nginx, 'b', '/'), svc(nginx, 'c', '/')], ['default/80/a', undefined, 'default/80/c']);
});

t.test('default backends come after every rule, and ignoreDefaultBackends drops them', async (t) => {
  const objs = [
    ingress('a-catchall', [], { fallback: { service: 'fallback', port: 80 } }),
    ingress('b-rules', [{ host: 'x', paths: [{ path: '/', pathType: 'Prefix', service: 'x', port: 80 }] }]),
  ];
  t.equal(svc(table(objs), 'x', '/'), 'default/80/x', "another ingress's rule beats a default backend");
  t.equal(svc(table(objs), 'y', '/'), 'default/80/fallback');
  t.equal(svc(table(objs, { cls: 'linkerd', ignoreDefaultBackends: true }), 'y', '/'), undefined);
});

t.test('ImplementationSpecific (or no pathType) is a Linkerd 1 regex over the whole path', async (t) => {
  const m = compilePath('/users/[0-9]+', 'ImplementationSpecific');
  t.ok(m && pathMatches(m, '/users/42'));
  t.notOk(m && pathMatches(m, '/users/42/x'), 'anchored at both ends');
  t.ok(pathMatches(compilePath(undefined, undefined) as never, '/anything'), 'no path matches every path');
  t.equal(compilePath('(a)\\1', undefined), undefined, 'a backreference (not linear) is refused');
  t.equal(compilePath('/(x', undefined), undefined, 'a regex that does not compile is refused');
  const tb = table([
    ingress('r', [{ paths: [{ path: '(a)\\1', service: 'evil', port: 1 }] }]),
    ingress('s', [{ paths: [{ path: '/ok.*', service: 'ok', port: 1 }] }]),
  ]);
  t.equal(svc(tb, undefined, '/okay'), 'default/1/ok', 'the ingress with the refused regex is not served, the other is');
  t.equal(svc(tb, undefined, '/aa'), undefined);
  const evil = compilePath('(a+)+b', undefined);
  t.ok(evil, 'a catastrophic shape compiles on the linear engine');
  t.notOk(evil && pathMatches(evil, `${'a'.repeat(2000)}c`), 'and answers at once on its worst subject');
});

t.test('hostile objects: too many paths, oversized strings, junk are refused whole and stay small', async (t) => {
  const many = ingress('many', [{ paths: Array.from({ length: 5000 }, (_, i) => ({ path: `/p${i}`, pathType: 'Prefix', service: 's', port: 80 })) }]);
  const p = projectIngress(many, 100);
  t.equal(p.l5d.refused, 'too_many_rules');
  t.equal(p.l5d.paths.length, 0, 'nothing of it is kept');
  t.equal(compileIngress(p, opts), 'too_many_rules');
  const huge = ingress('huge', [{ host: 'h'.repeat(100_000), paths: [{ service: 's', port: 80 }] }]);
  const hp = projectIngress(huge, 100);
  t.equal(hp.l5d.refused, 'too_large');
  t.ok(JSON.stringify(hp).length < 1000, 'the projection does not keep the huge host');
  const junk = {
    kind: 'Ingress',
    metadata: { name: 'j', namespace: 'n' },
    spec: { rules: [7, null, { http: { paths: 'x' } }, { http: { paths: [{ backend: { resource: {} } }] } }] },
  } as unknown as KObject;
  t.equal(compileIngress(projectIngress(junk, 100), opts), 'no_backend', 'junk fields do not throw');
  const annotated = ingress('ann', [{ paths: [{ service: 's', port: 80 }] }]);
  (annotated.metadata as unknown as Record<string, unknown>)['annotations'] = { big: 'x'.repeat(1_000_000) };
  t.ok(JSON.stringify(projectIngress(annotated, 100)).length < 1000, 'annotations other than the class are not kept');
});

t.test('the identifier names <dstPrefix>/<ns>/<port>/<svc>; no match is 404 NO_INGRESS_RULE; unlisted is 503', async (t) => {
  const tb = table([ingress('w', [{ host: 'w', paths: [{ service: 'world', port: 'http' }] }])]);
  let synced = false;
  const id = buildIdentifiers([{ kind: 'io.l5d.ingress' }], parsePath('/svc'), {
    ingress: () => (host, path) => {
      if (!synced) return { unidentified: 'not listed', notSynced: true };
      const b = tb.match(host, path);
      return b === undefined ? { unidentified: 'no rule' } : { backend: b };
    },
  });
  const req = (host: string, target: string) => ({ method: 'GET', host, target, httpVersion: '1.1', header: () => undefined });
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return e instanceof HostmeshError ? e.code : String(e);
    }
  };
  t.equal(
    code(() => id(req('w', '/'))),
    'INGRESS_NOT_READY',
  );
  synced = true;
  t.equal(id(req('w', '/x?y=1')).name.show(), '/svc/default/http/world');
  t.equal(id(req('w', '/x?y=1')).target, '/x?y=1', 'the request target is kept');
  t.equal(
    code(() => id(req('nope', '/'))),
    'NO_INGRESS_RULE',
  );
});

// --- properties --------------------------------------------------------------------------------

const seg = fc.stringMatching(/^[a-z0-9]{1,4}$/);
const pathArb = fc.array(seg, { maxLength: 5 }).map((s) => `/${s.join('/')}`);

t.test('property: Prefix matches exactly when the rule elements start the request elements', async () => {
  fc.assert(
    fc.property(pathArb, pathArb, fc.boolean(), (rule, req, slash) => {
      const m = compilePath(slash ? `${rule}/` : rule, 'Prefix') as NonNullable<ReturnType<typeof compilePath>>;
      const r = rule.split('/').filter(Boolean);
      const q = req.split('/').filter(Boolean);
      const expected = r.every((e, i) => q[i] === e);
      return pathMatches(m, req) === expected && pathMatches(m, `${rule}/more`);
    }),
  );
});

t.test('property: a request takes the longest matching Prefix (exact host, wildcard, any host; ties in order), else the fallback', async () => {
  const ruleArb = fc.record({ host: fc.option(fc.constantFrom('a', 'b', '*.z'), { nil: undefined }), path: pathArb, service: seg });
  fc.assert(
    fc.property(fc.array(ruleArb, { maxLength: 8 }), fc.constantFrom('a', 'b', 'q.z', 'c'), pathArb, (rules, host, path) => {
      const tb = table([
        ingress(
          'i',
          rules.map((r) => ({
            ...(r.host !== undefined ? { host: r.host } : {}),
            paths: [{ path: r.path, pathType: 'Prefix', service: r.service, port: 80 }],
          })),
          { fallback: { service: 'fb', port: 1 } },
        ),
      ]);
      const matches = (r: (typeof rules)[number]) => pathMatches(compilePath(r.path, 'Prefix') as never, path);
      // Longest matching prefix within a host class; ties in order.
      const len = (r: (typeof rules)[number]) => r.path.split('/').filter(Boolean).length;
      const best = (xs: typeof rules) => xs.reduce<(typeof rules)[number] | undefined>((b, r) => (b === undefined || len(r) > len(b) ? r : b), undefined);
      const exact = best(rules.filter((r) => r.host === host && matches(r)));
      const wild = best(rules.filter((r) => r.host === '*.z' && host.endsWith('.z') && matches(r)));
      const any = best(rules.filter((r) => r.host === undefined && matches(r)));
      const want = exact ?? wild ?? any;
      return svc(tb, host, path) === (want === undefined ? 'default/1/fb' : `default/80/${want.service}`);
    }),
  );
});

t.test('property: matchHost drops a port and lowercases, never throws', async () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), (h) => {
      const m = matchHost(h);
      return h === '' ? m === undefined : typeof m === 'string' && m === m.toLowerCase();
    }),
  );
  fc.assert(fc.property(seg, fc.integer({ min: 1, max: 65535 }), (h, p) => matchHost(`${h.toUpperCase()}:${p}`) === h));
});

t.test('property: any regex a tenant writes runs in linear time (or is refused)', async () => {
  const atom = fc.constantFrom('a', '.', '[a-z]', '\\d', '(a)', '(ab)', '(a|b)', '(a*)', '(a+)', '(a|a)', '\\1', '(?=a)');
  const quant = fc.constantFrom('', '*', '+', '?', '{1,3}');
  const re = fc
    .array(
      fc.tuple(atom, quant).map(([a, q]) => a + q),
      { minLength: 1, maxLength: 8 },
    )
    .map((xs) => xs.join(''));
  const subject = `/${'a'.repeat(2000)}!`;
  fc.assert(
    fc.property(re, (src) => {
      const m = compilePath(src, undefined);
      // An exponential or high-degree regex on this subject would not finish inside tap's timeout.
      if (m !== undefined) pathMatches(m, subject);
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('safeRegex (the fallback without the linear engine) refuses the catastrophic shapes', async (t) => {
  for (const bad of ['(a+)+', '(a|a)*', '((ab)*)+', '(a)\\1', '(x*){2,}']) t.notOk(safeRegex(bad), bad);
  for (const ok of ['/users/[0-9]+', '/(api|web)/.*', '/a?b', '[(*)]+']) t.ok(safeRegex(ok), ok);
});
