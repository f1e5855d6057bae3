// Options of identifiers, transformers and load balancers are checked per kind: a misspelt option
// or an unsupported kind is an error with file:line:col and the key path, never silently ignored.

import t from 'tap';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import { IDENTIFIER_KINDS, TRANSFORMER_KINDS } from '../../src/config/kinds.js';
import { problemsOf, router } from '../helpers/config-text.js';

const cases: { name: string; yaml: string; want: RegExp }[] = [
  {
    name: 'a misspelt transformer option',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.k8s.daemonset\n    servce: hostmesh'),
    want: /^c\.yaml:7:7: routers\[0\]\.interpreter\.transformers\[0\]\.servce: unknown key 'servce'/,
  },
  {
    name: 'a misspelt transformer namespace',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.k8s.daemonset\n    nmespace: linkerd'),
    want: /transformers\[0\]\.nmespace: unknown key 'nmespace'/,
  },
  {
    name: 'a misspelt identifier option',
    yaml: router('identifier:\n  kind: io.l5d.header\n  hedaer: my-header'),
    want: /^c\.yaml:6:5: routers\[0\]\.identifier\.hedaer: unknown key 'hedaer'/,
  },
  {
    name: 'an unsupported identifier kind names the supported ones',
    yaml: router('identifier:\n  kind: io.l5d.example'),
    want: /identifier kind "io\.l5d\.example" is not supported; supported kinds: io\.l5d\.header\.token, io\.l5d\.methodAndHost.*io\.l5d\.ingress/,
  },
  {
    name: "io.l5d.ingress: Linkerd 1's useCapturingGroups (URI rewriting) is not built, and named",
    yaml: router('identifier:\n  kind: io.l5d.ingress\n  useCapturingGroups: true'),
    want: /useCapturingGroups/,
  },
  {
    name: 'an unsupported transformer kind',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.k8s.nodeport'),
    want: /transformer kind "io\.l5d\.k8s\.nodeport" is not supported; supported kinds: io\.l5d\.k8s\.daemonset/,
  },
  {
    name: 'aperture is refused by name, not silently replaced by p2c',
    yaml: router('client:\n  loadBalancer:\n    kind: aperture'),
    want: /loadBalancer kind "aperture" is not supported; supported kinds: p2c, ewma, roundRobin/,
  },
  {
    // A number written as a string ("4141") is read as Jackson read it (load.test.ts); a port name is not a number.
    name: 'a port transformer with a port name',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.port\n    port: incoming'),
    want: /transformers\[0\]\.port: /,
  },
  {
    name: 'a const transformer address without a port',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.const\n    addrs: [{ip: 10.0.0.1}]'),
    want: /transformers\[0\]\.addrs\[0\]\.port/,
  },
  {
    // The composition root (src/app/transformers.ts) no longer re-checks options: the schema must
    // reject them, at their position.
    name: 'a port transformer with a port out of range, at its position',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.port\n    port: 0'),
    want: /^c\.yaml:7:13: routers\[0\]\.interpreter\.transformers\[0\]\.port: Too small/,
  },
  {
    name: 'a specificHost transformer without a host, at its position',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.specificHost'),
    want: /^c\.yaml:6:7: routers\[0\]\.interpreter\.transformers\[0\]\.host: /,
  },
  {
    name: 'a replace transformer whose path is not a path, at its position',
    yaml: router('interpreter:\n  transformers:\n  - kind: io.l5d.replace\n    path: svc'),
    want: /^c\.yaml:7:13: routers\[0\]\.interpreter\.transformers\[0\]\.path: a path like/,
  },
  {
    name: 'a static identifier without a path',
    yaml: router('identifier:\n  kind: io.l5d.static'),
    want: /identifier\.path/,
  },
  {
    name: 'an identifier without a kind',
    yaml: router('identifier:\n  header: Host'),
    want: /identifier needs a kind; supported kinds/,
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const problems = problemsOf(c.yaml);
    t.equal(problems.length, 1, `one problem: ${problems.join(' | ')}`);
    t.match(problems[0] ?? '', c.want);
  });
}

t.test('valid options of each kind load, with their values', async (t) => {
  const { config, warnings } = parseConfig(
    router(
      [
        'identifier:',
        '- {kind: io.l5d.path, segments: 2, consume: true}',
        '- {kind: io.l5d.header.token, header: x-svc}',
        '- {kind: io.l5d.header.path, header: x-path}',
        'interpreter:',
        '  transformers:',
        '  - {kind: io.l5d.k8s.daemonset, namespace: linkerd, port: incoming, service: l5d, hostNetwork: true}',
        '  - {kind: io.l5d.const, addrs: [{ip: 10.0.0.1, port: 80}]}',
        'client:',
        '  loadBalancer: {kind: ewma, maxEffort: 3, decayTimeMs: 5000}',
      ].join('\n'),
    ),
    'c.yaml',
    { env: { NODE_NAME: 'n1' } },
  );
  const r = config.routers[0];
  t.same(r?.identifier, [
    { kind: 'io.l5d.path', segments: 2, consume: true },
    { kind: 'io.l5d.header.token', header: 'x-svc' },
    { kind: 'io.l5d.header.path', header: 'x-path' },
  ]);
  t.same(r?.transformers[0], { kind: 'io.l5d.k8s.daemonset', namespace: 'linkerd', port: 'incoming', service: 'l5d', hostNetwork: true });
  t.equal(r?.client.loadBalancer.kind, 'ewma');
  t.same(
    warnings.filter((w) => w.includes('loadBalancer')).map((w) => w.replace(/^c\.yaml:\d+:\d+: /, '')),
    [
      'routers[0].client.loadBalancer.maxEffort: accepted, not enforced: the balancer picks among live endpoints only, so there is nothing to retry',
      "routers[0].client.loadBalancer.decayTimeMs: accepted, not enforced: ewma's decay window is fixed",
    ],
    'Linkerd 1 balancer tuning keys warn once each',
  );
});

t.test('property: any kind outside the lists is an error naming the supported kinds', async () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-z][a-z0-9.]{0,20}$/).filter((k) => !IDENTIFIER_KINDS.includes(k as never) && !TRANSFORMER_KINDS.includes(k as never)),
      (kind) => {
        const a = problemsOf(router(`identifier:\n  kind: ${kind}`));
        const b = problemsOf(router(`interpreter:\n  transformers:\n  - kind: ${kind}`));
        return (
          a.length === 1 &&
          /supported kinds: io\.l5d\.header\.token/.test(a[0] ?? '') &&
          b.length === 1 &&
          /supported kinds: io\.l5d\.k8s\.daemonset/.test(b[0] ?? '')
        );
      },
    ),
    { numRuns: 200 },
  );
});

t.test("a transformer's Linkerd 1 prefix loads with a warning (bound ids are not prefixed)", async (t) => {
  const { config, warnings } = parseConfig(
    router(['interpreter:', '  transformers:', '  - {kind: io.l5d.port, port: 4141, prefix: /pfx}', '  - {kind: io.l5d.localhost, prefix: /lh}'].join('\n')),
    'c.yaml',
    { env: { NODE_NAME: 'n1' } },
  );
  t.same(config.routers[0]?.transformers, [{ kind: 'io.l5d.port', port: 4141 }, { kind: 'io.l5d.localhost' }]);
  t.same(
    warnings.filter((w) => w.includes('prefix')).map((w) => w.replace(/^c\.yaml:\d+:\d+: /, '')),
    [0, 1].map(
      (i) =>
        `routers[0].interpreter.transformers[${i}].prefix: accepted, not enforced: bound ids keep the namer's form: Linkerd 1 put /%/<prefix> in front of a transformed id, so l5d-dst-client values, rt:client labels and client.configs prefixes written for /%/ ids differ`,
    ),
  );
});

t.test("io.l5d.const takes Linkerd 1's path, or addrs", async (t) => {
  const load = (line: string) => parseConfig(router(['interpreter:', '  transformers:', `  - ${line}`].join('\n')), 'c.yaml', { env: { NODE_NAME: 'n1' } });
  t.same(load('{kind: io.l5d.const, path: /$/inet/127.0.0.1/4141}').config.routers[0]?.transformers, [
    { kind: 'io.l5d.const', path: '/$/inet/127.0.0.1/4141' },
  ]);
  t.same(problemsOf(router('interpreter:\n  transformers:\n  - {kind: io.l5d.const, path: not-a-path}')).length, 1, 'a path that is not one');
  t.match(
    problemsOf(router('interpreter:\n  transformers:\n  - {kind: io.l5d.const}')).join('\n'),
    /io\.l5d\.const needs either path \(as Linkerd 1\) or addrs/,
  );
});
