// Properties of the policy parser and evaluator (fast-check): the parser throws only PolicyError;
// decide() never throws; the namespace-indexed evaluator decides exactly as a naive linear scan of
// the rules does, on random policies and requests.

import fc from 'fast-check';
import t from 'tap';
import { stringify } from 'yaml';
import { parseNodeIdentity, parseWorkloadIdentity, workloadIdentity } from '../../src/identity/names.js';
import { normalizePath, PolicyError, type AuthzRequest, type PolicyFile } from '../../src/authz/policy.js';
import { parsePolicy, parsePolicyFile } from '../../src/authz/parse-policy.js';

const RUNS = 300;

t.test('the parser throws only PolicyError', async (t) => {
  const fragments = [
    'namespaces:',
    'rules:',
    '- name: r',
    '  from:',
    '  to:',
    '  - {namespace: a}',
    '{',
    '}',
    '[',
    ']',
    '"*"',
    ': ',
    '&a',
    '*a',
    '!!str',
    '- ',
    '  ',
    '\n',
    'deny',
    '80',
    'ports: [',
    'paths: [/v1]',
    '\t',
    '%YAML 1.2',
    '---',
    '~',
    'null',
  ];
  const yamlish = fc.array(fc.constantFrom(...fragments), { maxLength: 30 }).map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish), (text) => {
      try {
        parsePolicy(text, 'p.yaml');
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        for (const p of err.problems) if (!p.startsWith('p.yaml:')) throw new Error(`unpositioned problem: ${p}`);
      }
    }),
    { numRuns: 2000 },
  );
  // yaml's alias budget: a billion-laughs document is a PolicyError, not a hang or a RangeError.
  const laughs = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++)
    laughs.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  t.throws(() => parsePolicy(laughs.join('\n'), 'p.yaml'), PolicyError);
});

// Small alphabets, so random rules and requests often meet.
const ns = fc.constantFrom('a', 'b', 'team-a', 'team-b');
const nsGlob = fc.constantFrom('a', 'b', 'team-a', 'team-*', '*', '*-b');
const sa = fc.constantFrom('default', 'web', 'web.v2');
const saGlob = fc.constantFrom('default', 'web*', '*', 'web.*');
const svc = fc.constantFrom('api', 'db', 'api-v2');
const svcGlob = fc.constantFrom('api', 'api*', '*', 'db');
const portNum = fc.constantFrom(80, 8080);
const portName = fc.constantFrom('http', 'grpc');
const method = fc.constantFrom('GET', 'POST', 'DELETE');
const pathPrefix = fc.constantFrom('/', '/v1', '/v1/', '/admin');
const reqPath = fc.constantFrom('/', '/v1', '/v1/x', '/v10', '/admin?x=1', '/v1/../admin', '/%76%31/x', 'http://h/v1/x', '//v1');

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const caller = fc.oneof(
  fc.constant({ unauthenticated: true as const }),
  fc.record({ namespace: opt(nsGlob), serviceAccount: opt(saGlob) }).filter((c) => c.namespace !== undefined || c.serviceAccount !== undefined),
  fc.record({ identity: fc.constantFrom('*.a.serviceaccount.identity.hostmesh.cluster.local', 'web.*', 'spiffe://mesh/node/*', '*') }),
  fc.record({ node: fc.constantFrom('n1', 'n*') }),
);
const dest = fc
  .record({
    namespace: opt(nsGlob),
    service: opt(svcGlob),
    name: opt(fc.constantFrom('/#/io.l5d.k8s/a/*', '/#/io.l5d.fs/*', '/$/inet/*')),
    ports: opt(fc.array(fc.oneof(portNum, portName), { minLength: 1, maxLength: 2 })),
    methods: opt(fc.array(method, { minLength: 1, maxLength: 2 })),
    paths: opt(fc.array(pathPrefix, { minLength: 1, maxLength: 2 })),
  })
  .filter((d) => d.namespace !== undefined || d.service !== undefined || d.name !== undefined);
const setting = fc.oneof(
  fc.constantFrom('allow', 'deny', 'audit'),
  fc.record({ default: opt(fc.constantFrom('allow', 'deny', 'audit')), allowDtabOverride: opt(fc.boolean()) }),
);
const policyArb = fc.record({
  namespaces: fc.dictionary(nsGlob, setting, { maxKeys: 4 }),
  rules: fc.array(fc.record({ from: fc.array(caller, { minLength: 1, maxLength: 3 }), to: fc.array(dest, { minLength: 1, maxLength: 3 }) }), { maxLength: 12 }),
});

const requestArb: fc.Arbitrary<AuthzRequest> = fc.record({
  caller: fc.oneof(
    fc.constant({ authenticated: false }),
    fc.record({ authenticated: fc.constant(true), identity: fc.tuple(sa, ns).map(([s, n]) => workloadIdentity(s, n)) }),
    fc.record({
      authenticated: fc.constant(true),
      identity: fc.constantFrom('spiffe://mesh/node/n1', 'spiffe://mesh/node/n2', 'web.a.serviceaccount.identity.hostmesh.other'),
    }),
  ),
  dest: fc.record({
    namespace: opt(ns),
    service: opt(svc),
    name: opt(fc.constantFrom('/#/io.l5d.k8s/a/http/api', '/#/io.l5d.fs/x', '/$/inet/1.2.3.4/80')),
    port: opt(fc.oneof(portNum, portName, fc.constant('8080'))),
    portName: opt(portName),
  }),
  method,
  path: reqPath,
});

/** Regex for a glob: fine for the short strings of this test (the product avoids regexes). */
const re = (g: string) =>
  new RegExp(
    `^${g
      .split('*')
      .map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
  );
const globOk = (g: string | undefined, v: string | undefined) => g === undefined || (v !== undefined && re(g).test(v));

/** The obvious evaluator: every rule in order, every entry; then the namespace default. */
function naive(file: PolicyFile, req: AuthzRequest): { decision: string; audit: boolean; rule?: string } {
  const c = req.caller;
  const wl = c.authenticated && c.identity !== undefined ? parseWorkloadIdentity(c.identity) : undefined;
  const node = c.authenticated && c.identity !== undefined ? parseNodeIdentity(c.identity) : undefined;
  const path = normalizePath(req.path);
  const port = typeof req.dest.port === 'string' && /^\d+$/.test(req.dest.port) ? Number(req.dest.port) : req.dest.port;
  for (const rule of file.rules) {
    const fromOk = rule.from.some((f) =>
      f.unauthenticated === true
        ? !c.authenticated
        : c.authenticated &&
          globOk(f.identity, c.identity) &&
          globOk(f.namespace, wl?.namespace) &&
          globOk(f.serviceAccount, wl?.serviceAccount) &&
          globOk(f.node, node),
    );
    const toOk = rule.to.some(
      (d) =>
        globOk(d.namespace, req.dest.namespace) &&
        globOk(d.service, req.dest.service) &&
        globOk(d.name, req.dest.name) &&
        (d.ports === undefined || d.ports.includes(port as never) || (req.dest.portName !== undefined && d.ports.includes(req.dest.portName))) &&
        (d.methods === undefined || d.methods.includes(req.method)) &&
        (d.paths === undefined || (path !== undefined && d.paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p || path.startsWith(`${p}/`))))),
    );
    if (fromOk && toOk) return { decision: 'allow', audit: false, rule: rule.name };
  }
  const target = req.dest.namespace ?? '';
  const entries = Object.entries(file.namespaces);
  const own = file.namespaces[target]?.default;
  const fromGlob = entries.find(([k, v]) => k.includes('*') && v.default !== undefined && re(k).test(target))?.[1].default;
  const d = own ?? fromGlob ?? 'allow';
  return { decision: d === 'deny' ? 'deny' : 'allow', audit: d === 'audit' };
}

t.test('the indexed evaluator decides as the naive one does', async (t) => {
  const seen = { rule: 0, allow: 0, deny: 0, audit: 0 };
  fc.assert(
    fc.property(policyArb, fc.array(requestArb, { minLength: 1, maxLength: 20 }), (p, reqs) => {
      const text = stringify({ namespaces: p.namespaces, rules: p.rules.map((r, i) => ({ name: `r${i}`, ...r })) });
      const file = parsePolicyFile(text, 'p.yaml');
      const policy = parsePolicy(text, 'p.yaml');
      for (const req of reqs) {
        const d = policy.decide(req);
        const got = { decision: d.decision, audit: d.audit, ...(d.rule !== undefined ? { rule: d.rule } : {}) };
        const want = naive(file, req);
        seen[d.rule !== undefined ? 'rule' : d.audit ? 'audit' : d.decision]++;
        if (JSON.stringify(got) !== JSON.stringify(want))
          throw new Error(`${JSON.stringify(req)}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}\n${text}`);
      }
    }),
    { numRuns: RUNS },
  );
  // The generators must reach every outcome, or the comparison proves little.
  for (const [k, n] of Object.entries(seen)) t.ok(n > 50, `${k}: ${n} decisions`);
});

t.test('decide() never throws and its reason is printable ASCII', async (t) => {
  const anyString = fc.string({ maxLength: 80, unit: 'binary' });
  const wild: fc.Arbitrary<AuthzRequest> = fc.record({
    caller: fc.record({ authenticated: fc.boolean(), identity: opt(anyString), namespace: opt(anyString), serviceAccount: opt(anyString) }),
    dest: fc.record({
      namespace: opt(anyString),
      service: opt(anyString),
      name: opt(anyString),
      port: opt(fc.oneof(fc.integer(), anyString, fc.double())),
      portName: opt(anyString),
    }),
    method: anyString,
    path: anyString,
  });
  fc.assert(
    fc.property(policyArb, fc.array(wild, { minLength: 1, maxLength: 10 }), (p, reqs) => {
      const policy = parsePolicy(stringify({ namespaces: p.namespaces, rules: p.rules.map((r, i) => ({ name: `r${i}`, ...r })) }), 'p.yaml');
      for (const req of reqs) {
        const d = policy.decide(req);
        if (!/^[\x20-\x7e]*$/.test(d.reason)) throw new Error(`unprintable reason: ${JSON.stringify(d.reason)}`);
        policy.dtabOverrideAllowed(req.caller);
      }
    }),
    { numRuns: RUNS },
  );
  t.pass('no throw');
});
