// Per-prefix settings (Linkerd 1's io.l5d.static): properties of the merge (every matching prefix
// in order, the last one wins per key), the `{var}` captures, and the bound on cached names.

import t from 'tap';
import fc from 'fast-check';
import { parsePath } from '../../../src/dtab/parse.js';
import { Path } from '../../../src/dtab/path.js';
import { Dtab } from '../../../src/dtab/dtab.js';
import { NameInterpreter } from '../../../src/namer/interpreter.js';
import { configPrefixMatches, parseConfigPrefix, RouterParams, StaticParams } from '../../../src/router/settings/static-params.js';

type Settings = { k1?: number; k2?: number; k3?: number };
const labels = ['a', 'b', 'c'];
const keys = ['k1', 'k2', 'k3'] as const;

const settings = fc.dictionary(fc.constantFrom(...keys), fc.integer({ min: 0, max: 99 }), { maxKeys: 3 });
const prefixText = fc.array(fc.constantFrom(...labels, '*'), { maxLength: 3 }).map((e) => (e.length === 0 ? '/' : `/${e.join('/')}`));
const name = fc.array(fc.constantFrom(...labels), { maxLength: 4 }).map((e) => new Path(e));
const configs = fc.array(fc.tuple(prefixText, settings), { maxLength: 6 }).map((cs) => cs.map(([prefix, s]) => ({ prefix, ...s })));

t.test('a single / prefix config is the global settings with that config laid over them', async (t) => {
  fc.assert(
    fc.property(settings, settings, name, (global, one, n) => {
      const merged = new StaticParams<Settings>(global, [{ prefix: '/', ...one }]).resolve(n);
      t.same(merged, { ...global, ...one });
    }),
  );
  t.same(new StaticParams<Settings>({ k1: 1 }, [{ prefix: '/' }]).resolve(parsePath('/x')), { k1: 1 }, 'an empty / config is the global one');
});

t.test('per key, the last matching config wins; configs that do not match change nothing', async (t) => {
  fc.assert(
    fc.property(settings, configs, name, (global, cs, n) => {
      const got = new StaticParams<Settings>(global, cs).resolve(n);
      for (const k of keys) {
        let want = global[k];
        for (const c of cs) {
          const v = (c as Settings)[k];
          if (v !== undefined && parseConfigPrefix(c.prefix).prefix.matches(n)) want = v;
        }
        if (got[k] !== want) return false;
      }
      return true;
    }),
  );
  t.pass();
});

t.test('resolving twice (cached) gives the same settings', async (t) => {
  fc.assert(
    fc.property(settings, configs, fc.array(name, { maxLength: 8 }), (global, cs, names) => {
      const p = new StaticParams<Settings>(global, cs, { maxCached: 3 });
      const first = names.map((n) => JSON.stringify(p.resolve(n)));
      const again = names.map((n) => JSON.stringify(p.resolve(n)));
      return first.every((f, i) => f === again[i]) && p.cached <= 3;
    }),
  );
  t.pass();
});

t.test('names come from requests: the cache keeps at most maxCached, counting evictions', async (t) => {
  let evicted = 0;
  const p = new StaticParams<Settings>({}, [{ prefix: '/svc', k1: 1 }], { maxCached: 100, onEvicted: () => evicted++ });
  for (let i = 0; i < 10_000; i++) p.resolve(parsePath(`/svc/s${i}`));
  t.equal(p.cached, 100);
  t.equal(evicted, 9_900);
  t.equal(p.resolve(parsePath('/svc/s1')).k1, 1, 'an evicted name is merged again');
});

t.test('wildcards and {var} captures match one element each, as dentry prefixes', async (t) => {
  const p = parseConfigPrefix('/$/inet/{host}/443');
  t.ok(p.prefix.matches(parsePath('/$/inet/api.example.com/443')));
  t.ok(p.prefix.matches(parsePath('/$/inet/api.example.com/443/residual')));
  t.notOk(p.prefix.matches(parsePath('/$/inet/api.example.com/80')));
  t.same(p.captures, [undefined, undefined, 'host', undefined]);
  t.throws(() => parseConfigPrefix('/a b'), { name: 'DtabParseError' });
  t.throws(() => parseConfigPrefix('/{not a var}'), { name: 'DtabParseError' });
});

t.test("captures inside an element ({service}:https, {a}.{b}), as Linkerd 1's PathMatcher", async (t) => {
  const p = parseConfigPrefix('/#/io.l5d.fs/{service}-tls/{port}');
  t.ok(configPrefixMatches(p, parsePath('/#/io.l5d.fs/users-tls/443')));
  t.notOk(configPrefixMatches(p, parsePath('/#/io.l5d.fs/users/443')), 'the literal text must be there');
  t.notOk(configPrefixMatches(p, parsePath('/#/io.l5d.fs/users-tls-old/443')), 'the whole label must match');
  const params = new RouterParams(undefined, {
    loadBalancer: { kind: 'p2c' },
    configs: [{ prefix: '/$/inet/{name}.{ns}.svc/443', tls: { commonName: '{name}.{ns}.example.com', trustCerts: ['/ca.pem'] } }],
  });
  t.equal(params.forClient(parsePath('/$/inet/api.prod.svc/443')).tls?.commonName, 'api.prod.example.com');
  t.equal(params.forClient(parsePath('/$/inet/api/443')).tls, undefined, 'a label without the dots is not matched');
  t.throws(() => parseConfigPrefix('/{a} b'), { name: 'DtabParseError' }, 'the literal text must be label characters');
  t.ok(configPrefixMatches(parseConfigPrefix('/#/io.l5d.fs/'), parsePath('/#/io.l5d.fs/web')), "a trailing / is ignored, as Linkerd 1's PathMatcher did");
});

t.test('forClient fills {var} into the TLS commonName; forService matches logical names', async (t) => {
  const params = new RouterParams(
    {
      configs: [
        { prefix: '/svc', totalTimeoutMs: 1000 },
        { prefix: '/svc/users', totalTimeoutMs: 200, responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' } },
      ],
    },
    {
      loadBalancer: { kind: 'p2c' },
      configs: [
        { prefix: '/', requestAttemptTimeoutMs: 50 },
        { prefix: '/$/inet/{host}/443', tls: { commonName: '{host}', trustCerts: ['/ca.pem'] } },
      ],
    },
  );
  t.same(params.forService(parsePath('/svc/users')), { totalTimeoutMs: 200, responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' } });
  t.same(params.forService(parsePath('/svc/world')), { totalTimeoutMs: 1000 });
  t.same(params.forService(parsePath('/other')), {});
  const ext = params.forClient(parsePath('/$/inet/api.example.com/443'));
  t.equal(ext.tls?.commonName, 'api.example.com');
  t.equal(ext.requestAttemptTimeoutMs, 50, 'the earlier / config still applies to keys the later one leaves');
  t.equal(params.forClient(parsePath('/$/inet/127.0.0.1/8080')).tls, undefined, 'no TLS where no prefix asks for it');
});

t.test("servicemesh.yml's egress TLS config applies to the id /$/io.buoyant.rinet binds to", async (t) => {
  const params = new RouterParams(
    { configs: [] },
    { loadBalancer: { kind: 'p2c' }, configs: [{ prefix: '/$/io.buoyant.rinet/443/{service}', tls: { commonName: '{service}' } }] },
  );
  const interp = new NameInterpreter({ namers: [] });
  const b = interp.bind(Dtab.read('/ph=>/$/io.buoyant.rinet;/svc=>/ph/443'), parsePath('/svc/api.example.com'));
  const s = b.state.get();
  b.close();
  t.ok(s.kind === 'ok' && s.tree.kind === 'leaf', 'bound to one address');
  if (s.kind !== 'ok' || s.tree.kind !== 'leaf') return;
  t.equal(s.tree.value.id.show(), '/$/io.buoyant.rinet/443/api.example.com');
  t.equal(params.forClient(s.tree.value.id).tls?.commonName, 'api.example.com');
});
