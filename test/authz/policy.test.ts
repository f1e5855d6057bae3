import t from 'tap';
import { PolicyError } from '../../src/authz/policy.js';
import { parsePolicy } from '../../src/authz/parse-policy.js';
import { outcome, parseCase } from '../helpers/authz-cases.js';

// Each table: a policy and the decisions it must make.
const tables: { name: string; policy: string; cases: string[] }[] = [
  {
    name: 'deny-by-default namespace with an allow rule (the issue example)',
    policy: `
trustDomain: cluster.local
namespaces:
  payments: deny
  "*": allow
rules:
- name: web-to-payments
  from:
  - {namespace: web, serviceAccount: "frontend-*"}
  - {identity: "*.ops.serviceaccount.identity.hostmesh.cluster.local"}
  - {unauthenticated: true}
  to:
  - {namespace: payments, service: api, ports: [8080, http], methods: [GET, POST], paths: ["/v1/"]}
  - {name: "/#/io.l5d.fs/payments-*"}
`,
    cases: [
      'web/frontend-1 -> payments/api:8080 GET /v1/charges => allow web-to-payments',
      'web/frontend-1 -> payments/api:http POST /v1/x?y=1 => allow web-to-payments',
      'web/frontend-1 -> payments/api:9090 GET /v1/x => deny',
      'web/frontend-1 -> payments/api:8080 DELETE /v1/x => deny',
      'web/frontend-1 -> payments/api:8080 GET /v2/x => deny',
      'web/frontend-1 -> payments/api:8080 GET /v1 => deny',
      'web/backend -> payments/api:8080 GET /v1/x => deny',
      'other/frontend-1 -> payments/api:8080 GET /v1/x => deny',
      'ops/anything -> payments/api:8080 GET /v1/x => allow web-to-payments',
      'id:x.ops.serviceaccount.identity.hostmesh.other.domain -> payments/api:8080 GET /v1/x => deny',
      'unauth -> payments/api:8080 GET /v1/x => allow web-to-payments',
      'web/frontend-1 -> payments/ledger:8080 GET /v1/x => deny',
      'web/frontend-1 -> default/world:http => allow',
      'unauth -> default/world => allow',
      'web/frontend-x -> /#/io.l5d.fs/payments-db => allow web-to-payments',
      'web/x -> /#/io.l5d.fs/ledger => allow',
    ],
  },
  {
    name: 'audit mode allows would-denies and says so',
    policy: `
namespaces: {"*": audit, kube-system: deny}
rules:
- name: a-to-b
  from: [{namespace: a}]
  to: [{namespace: b, service: "*"}]
`,
    cases: ['a/x -> b/svc => allow a-to-b', 'c/x -> b/svc => audit', 'a/x -> kube-system/dns => deny', 'unauth -> /$/inet/1.2.3.4/80 => audit'],
  },
  {
    name: 'globs on namespaces, services, nodes; paths are segment prefixes; ambiguous paths fail closed',
    policy: `
namespaces:
  "team-*": deny
  team-open: allow
  "*": deny
rules:
- name: nodes-probe
  from: [{node: "worker-*"}]
  to: [{namespace: "*", service: "*", paths: [/healthz]}]
- name: team-internal
  from: [{namespace: "team-a"}]
  to: [{namespace: "team-a", service: "*"}]
- name: api-v1
  from: [{namespace: "*"}]
  to: [{namespace: shared, service: "api-*", paths: [/v1]}]
`,
    cases: [
      'node:worker-3 -> team-b/x /healthz => allow nodes-probe',
      'node:worker-3 -> team-b/x /healthz/deep => allow nodes-probe',
      'node:worker-3 -> team-b/x /healthzz => deny',
      'node:master -> team-b/x /healthz => deny',
      'team-a/sa -> team-a/db => allow team-internal',
      'team-a/sa -> team-b/db => deny',
      'team-a/sa -> team-open/db => allow',
      'x/y -> shared/api-users /v1/users => allow api-v1',
      'x/y -> shared/api-users /v1 => allow api-v1',
      'x/y -> shared/api-users /v1/../admin => deny',
      'x/y -> shared/api-users /v1/%2e%2e/admin => deny',
      'x/y -> shared/api-users /v1%2fadmin => deny',
      'x/y -> shared/api-users //v1/x => deny',
      'x/y -> shared/api-users /%76%31/users => allow api-v1',
      'x/y -> shared/api-users http://api-users/v1/users => allow api-v1',
      'x/y -> shared/api-users /v10 => deny',
      'unauth -> shared/api-users /v1 => deny',
    ],
  },
  {
    name: 'the first rule in file order is the one reported',
    policy: `
namespaces: {"*": deny}
rules:
- {name: any-ns, from: [{namespace: "*"}], to: [{namespace: "*"}]}
- {name: exact, from: [{namespace: a}], to: [{namespace: b}]}
`,
    cases: ['a/x -> b/y => allow any-ns', 'unauth -> b/y => deny'],
  },
];

for (const table of tables) {
  t.test(table.name, async (t) => {
    const policy = parsePolicy(table.policy, 'policy.yaml');
    for (const line of table.cases) {
      const c = parseCase(line, policy.trustDomain);
      t.same(outcome(policy.decide(c.request)), c.expect, line);
    }
  });
}

t.test('a denial names the caller, the destination and the default that decided', async (t) => {
  const policy = parsePolicy('namespaces: {payments: deny}\nrules: []\n', 'p.yaml');
  const d = policy.decide(parseCase('web/frontend -> payments/api:8080 => deny').request);
  t.equal(d.reason, "no rule allows frontend.web.serviceaccount.identity.hostmesh.cluster.local to payments/api:8080; namespace 'payments' defaults to deny");
  t.equal(d.default, 'deny');
  const u = policy.decide({ caller: { authenticated: false }, dest: { namespace: 'payments', service: 'api\r\nx: y' }, method: 'GET', path: '/' });
  t.match(u.reason, /^no rule allows unauthenticated caller to payments\/api\?\?x: y;/, 'request data in a reason is printable ASCII only');
});

t.test('allowDtabOverride is per caller namespace; each setting resolves on its own', async (t) => {
  const policy = parsePolicy(
    `
namespaces:
  tenant-a: {allowDtabOverride: false}
  "tenant-*": {default: deny}
  "*": {default: allow, allowDtabOverride: true}
rules: []
`,
    'p.yaml',
  );
  const caller = (ns: string) => parseCase(`${ns}/sa -> x/y => allow`).request.caller;
  t.equal(policy.dtabOverrideAllowed(caller('tenant-a')), false);
  t.equal(policy.dtabOverrideAllowed(caller('tenant-b')), true);
  t.equal(policy.dtabOverrideAllowed({ authenticated: false }), true);
  t.equal(policy.namespaceDefault('tenant-a'), 'deny', 'tenant-a sets no default: the tenant-* glob does');
  t.equal(policy.namespaceDefault('web'), 'allow');
});

t.test('bad files: file:line:col, key path, no file content beyond the key', async (t) => {
  const bad: [string, string][] = [
    ['namespaces: {}\nrules:\n- name: r\n  form: [{namespace: a}]\n  to: [{namespace: b}]\n', 'p.yaml:4:3: rules[0].form: unknown key'],
    ['namespaces: {payments: denny}\nrules: []\n', 'p.yaml:1:24: namespaces.payments.default: Invalid option'],
    [
      'namespaces: {}\nrules:\n- name: r\n  from: [{unauthenticated: true, namespace: a}]\n  to: [{namespace: b}]\n',
      'p.yaml:4:28: rules[0].from[0].unauthenticated: unauthenticated: true stands alone',
    ],
    [
      'namespaces: {}\nrules:\n- name: r\n  from: [{namespace: a}]\n  to: [{ports: [80]}]\n',
      'p.yaml:5:8: rules[0].to[0]: a destination needs namespace, service or name',
    ],
    ['namespaces: {}\nrules:\n- name: r\n  from: [{namespace: a}]\n  to: [{namespace: b, ports: [70000]}]\n', 'p.yaml:5:31: rules[0].to[0].ports[0]: Too big'],
    [
      'namespaces: {}\nrules:\n- name: r\n  from: [{namespace: Web}]\n  to: [{namespace: b}]\n',
      'p.yaml:4:22: rules[0].from[0].namespace: expected a Kubernetes name',
    ],
    [
      'namespaces: {}\nrules:\n- name: r\n  from: [{namespace: a}]\n  to: [{namespace: b, paths: [/v1/../admin]}]\n',
      'p.yaml:5:31: rules[0].to[0].paths[0]: a path prefix has no . or .. segment',
    ],
    [
      'namespaces: {}\nrules:\n- {name: r, from: [{namespace: a}], to: [{namespace: b}]}\n- {name: r, from: [{namespace: a}], to: [{namespace: b}]}\n',
      "p.yaml:4:10: rules[1].name: rule name 'r' is used twice",
    ],
    ['rules: []\n', 'p.yaml:1:1: namespaces: required key missing'],
    ['', 'p.yaml:1:1: the policy is empty'],
    ['namespaces: {}\nnamespaces: {}\nrules: []\n', 'p.yaml:2:1: Map keys must be unique'],
    ['- a\n', 'p.yaml:1:1: the policy must be a YAML mapping'],
  ];
  for (const [text, expected] of bad) {
    const err = (() => {
      try {
        parsePolicy(text, 'p.yaml');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.ok(err instanceof PolicyError, `rejected: ${JSON.stringify(text)}`);
    const first = (err as PolicyError).problems[0] ?? '';
    t.ok(first.startsWith(expected), `${first}\n  starts with ${expected}`);
  }
  // A secret pasted by mistake must not reach logs through an error message.
  const err = (() => {
    try {
      parsePolicy('namespaces: {payments: "s3cr3t-token-value"}\nrules: []\n', 'p.yaml');
    } catch (e) {
      return e as PolicyError;
    }
    return undefined;
  })();
  t.notMatch(err?.message ?? '', /s3cr3t/);
});

t.test('the sample policy for the hello-world example is valid and denies world-v2', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const policy = parsePolicy(await readFile('k8s/examples/policy.yaml', 'utf8'), 'k8s/examples/policy.yaml');
  t.same(outcome(policy.decide(parseCase('default/default -> default/world:http GET / => allow').request)).decision, 'allow');
  t.same(outcome(policy.decide(parseCase('default/default -> default/world-v2:http GET / => deny').request)).decision, 'deny');
});

t.test('normalizePath: the query goes, unreserved escapes decode, ambiguous paths are undefined', async (t) => {
  const { normalizePath } = await import('../../src/authz/policy.js');
  const table: [string, string | undefined][] = [
    ['/', '/'],
    ['/a/b?x=/../', '/a/b'],
    ['/a#frag', '/a'],
    ['http://host:80/a/b?q', '/a/b'],
    ['http://host', '/'],
    ['/%61%2D%7e', '/a-~'],
    ['/a%20b', '/a%20b'],
    ['/a/', '/a/'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/..b', '/a/..b'],
    ['/a/.', undefined],
    ['/a/./b', undefined],
    ['/a/..', undefined],
    ['/a/../b', undefined],
    ['/a//b', undefined],
    ['/a%2fb', undefined],
    ['/a%5Cb', undefined],
    ['/a\\b', undefined],
    ['/a%2e%2e/b', '/a../b'],
    ['/a/%2e%2e/b', undefined],
    ['/a%zz', undefined],
    ['*', undefined],
    ['host:443', undefined],
  ];
  for (const [input, want] of table) t.equal(normalizePath(input), want, input);
});
