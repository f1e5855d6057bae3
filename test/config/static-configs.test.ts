// Linkerd 1's per-prefix `io.l5d.static` service and client configs: loaded as typed prefix
// configs (never stripped with a warning, which made a per-prefix client TLS config plaintext).

import t from 'tap';
import { parseConfig, type Loaded } from '../../src/config/load.js';
import { PER_PREFIX_ENFORCED } from '../../src/config/kinds.js';
import { problemsOf, router } from '../helpers/config-text.js';

function load(text: string): Loaded {
  return parseConfig(text, 'c.yaml', { env: { NODE_NAME: 'n1' } });
}

const staticTls = router(
  [
    'client:',
    '  kind: io.l5d.static',
    '  configs:',
    '  - prefix: "/$/inet/*/443"',
    '    tls:',
    '      commonName: api.example.com',
    '      trustCerts: [ca.pem]',
  ].join('\n'),
);

t.test('a per-prefix client TLS config is never stripped into plaintext', async (t) => {
  if (!PER_PREFIX_ENFORCED.client.includes('tls')) {
    t.match(problemsOf(staticTls), [/^c\.yaml:9:9: routers\[0\]\.client\.configs\[0\]\.tls: not enforced per prefix yet/]);
    return;
  }
  const { config, warnings } = load(staticTls);
  t.same(
    warnings.filter((w) => /configs|kind/.test(w)),
    [],
    'no "accepted, not enforced" for client.kind or client.configs',
  );
  const configs = config.routers[0]?.client.configs ?? [];
  t.equal(configs.length, 1);
  t.equal(configs[0]?.prefix, '/$/inet/*/443');
  t.equal(configs[0]?.tls?.commonName, 'api.example.com');
  t.match(configs[0]?.tls?.trustCerts?.[0], /\/ca\.pem$/, 'trustCerts resolved against the config directory');
  t.equal(config.routers[0]?.client.tls, undefined, 'no TLS for clients the prefix does not match');
});

const serviceStatic = router(
  [
    'service:',
    '  kind: io.l5d.static',
    '  configs:',
    '  - prefix: /svc',
    '    totalTimeoutMs: 5000',
    '  - prefix: /svc/users',
    '    responseClassifier: {kind: io.l5d.http.retryableRead5XX}',
    '    retries: {budget: {percentCanRetry: 0.5}}',
  ].join('\n'),
);

t.test('per-prefix service configs are loaded in order, or refused key by key until enforced', async (t) => {
  const missing = ['totalTimeoutMs', 'responseClassifier', 'retries'].filter((k) => !PER_PREFIX_ENFORCED.service.includes(k));
  if (missing.length > 0) {
    const problems = problemsOf(serviceStatic);
    for (const k of missing)
      t.ok(
        problems.some((p) => p.includes(`.${k}: not enforced per prefix yet`)),
        k,
      );
    return;
  }
  const { config, warnings } = load(serviceStatic);
  t.same(
    warnings.filter((w) => /service/.test(w)),
    [],
  );
  const configs = config.routers[0]?.service?.configs ?? [];
  t.same(
    configs.map((c) => c.prefix),
    ['/svc', '/svc/users'],
  );
  t.equal(configs[1]?.responseClassifier?.kind, 'io.l5d.http.retryableRead5XX');
  t.equal(configs[0]?.totalTimeoutMs, 5000);
});

t.test('io.l5d.global is the default kind and may be named', async (t) => {
  const { config } = load(router('service:\n  kind: io.l5d.global\n  totalTimeoutMs: 700\nclient:\n  kind: io.l5d.global\n  requestAttemptTimeoutMs: 300'));
  t.equal(config.routers[0]?.service?.totalTimeoutMs, 700);
  t.equal(config.routers[0]?.client.requestAttemptTimeoutMs, 300);
  t.equal(config.routers[0]?.client.configs, undefined);
});

const errors: { name: string; yaml: string; want: RegExp }[] = [
  {
    name: 'a misspelt key inside a client prefix config',
    yaml: router('client:\n  kind: io.l5d.static\n  configs:\n  - prefix: /$/inet\n    tsl: {commonName: x}'),
    want: /^c\.yaml:8:7: routers\[0\]\.client\.configs\[0\]\.tsl: unknown key 'tsl'/,
  },
  {
    name: 'a bad value inside a service prefix config is checked like the global one',
    yaml: router('service:\n  kind: io.l5d.static\n  configs:\n  - prefix: /svc\n    responseClassifier: {kind: io.l5d.http.sometimes}'),
    want: /^c\.yaml:8:\d+: routers\[0\]\.service\.configs\[0\]\.responseClassifier\.kind: /,
  },
  {
    name: 'an unknown client kind names the supported ones',
    yaml: router('client:\n  kind: io.l5d.dynamic\n  configs: []'),
    want: /client kind "io\.l5d\.dynamic" is not supported; supported kinds: io\.l5d\.global, io\.l5d\.static/,
  },
  {
    name: 'an unknown service kind names the supported ones',
    yaml: router('service:\n  kind: io.l5d.fancy'),
    want: /service kind "io\.l5d\.fancy" is not supported; supported kinds: io\.l5d\.global, io\.l5d\.static/,
  },
  {
    name: 'static configs without a prefix',
    yaml: router('client:\n  kind: io.l5d.static\n  configs:\n  - requestAttemptTimeoutMs: 5'),
    want: /routers\[0\]\.client\.configs\[0\]\.prefix: /,
  },
  {
    name: 'a prefix that is not a dtab prefix',
    yaml: router('client:\n  kind: io.l5d.static\n  configs:\n  - prefix: "/$/inet/a b"'),
    want: /routers\[0\]\.client\.configs\[0\]\.prefix: end of input expected but 'b' found/,
  },
  {
    name: 'global keys beside static configs (Linkerd 1 has only configs there)',
    yaml: router('client:\n  kind: io.l5d.static\n  requestAttemptTimeoutMs: 5\n  configs:\n  - prefix: /'),
    want: /routers\[0\]\.client\.requestAttemptTimeoutMs: with kind: io\.l5d\.static every client key goes inside a configs entry \(prefix: \/ applies to every name\)/,
  },
  {
    name: 'configs under the global kind',
    yaml: router('service:\n  configs:\n  - prefix: /svc'),
    want: /routers\[0\]\.service\.configs: unknown key/,
  },
  {
    name: 'a load balancer per prefix is refused by name',
    yaml: router('client:\n  kind: io.l5d.static\n  configs:\n  - prefix: /#/io.l5d.k8s\n    loadBalancer: {kind: ewma}'),
    want: /routers\[0\]\.client\.configs\[0\]\.loadBalancer: not supported per prefix/,
  },
  {
    name: 'a Linkerd 1 key hostmesh does not enforce is refused inside a prefix (no warning to miss)',
    yaml: router('client:\n  kind: io.l5d.static\n  configs:\n  - prefix: /#/io.l5d.k8s\n    clientSession: {idleTimeMs: 100}'),
    want: /routers\[0\]\.client\.configs\[0\]\.clientSession: not supported per prefix: a Linkerd 1 key hostmesh does not enforce/,
  },
  {
    name: 'failure accrual per prefix is validated like the global one',
    yaml: router('client:\n  kind: io.l5d.static\n  configs:\n  - prefix: /#/io.l5d.k8s\n    failureAccrual: {kind: io.l5d.sometimes}'),
    want: /routers\[0\]\.client\.configs\[0\]\.failureAccrual\.kind: /,
  },
];

t.test('disableValidation in a prefix TLS config loads with a warning naming the prefix', async (t) => {
  const { warnings } = load(router('client:\n  kind: io.l5d.static\n  configs:\n  - prefix: "/$/inet/*/443"\n    tls: {disableValidation: true}'));
  t.match(warnings, [/^c\.yaml:8:\d+: routers\[0\]\.client\.configs\[0\]\.tls\.disableValidation: servers under \/\$\/inet\/\*\/443 are not verified/]);
});

for (const c of errors) {
  t.test(c.name, async (t) => {
    const problems = problemsOf(c.yaml);
    t.ok(
      problems.some((p) => c.want.test(p)),
      `${c.want} in:\n${problems.join('\n')}`,
    );
  });
}
