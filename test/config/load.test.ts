// The config loader as an operator meets it: a Linkerd 1 DaemonSet config loads as written (with
// one "accepted, not enforced" warning per unenforced key), mistakes are reported with
// file:line:col and the key path, `--set` overrides values, and dtabFile is read relative to the
// config file.

import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { repoPath } from '../helpers/paths.js';

const fixtureText = await readFile(repoPath('test', 'fixtures', 'linkerd1-daemonset-tls.yaml'), 'utf8');

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('a Linkerd 1 DaemonSet TLS config loads as written', async (t) => {
  const { config, warnings } = parseConfig(fixtureText, 'l5d.yaml', { env: { NODE_NAME: 'node-1' } });
  t.same(
    config.routers.map((r) => r.label),
    ['outgoing', 'incoming'],
  );
  t.equal(config.nodeName, 'node-1', 'nodeName comes from NODE_NAME');
  t.equal(config.admin.port, 9990);
  t.equal(config.admin.ip, '0.0.0.0');
  t.same(config.namers[0], { kind: 'io.l5d.k8s', prefix: '/io.l5d.k8s', host: 'localhost', port: 8001 });
  const [out, inc] = config.routers as [(typeof config.routers)[0], (typeof config.routers)[0]];
  t.match(out.dtab, /\/svc\s+=> \/host;/);
  t.same(out.servers, [{ port: 4140, ip: '0.0.0.0' }]);
  t.equal(out.client.tls?.commonName, 'hostmesh-router');
  t.same(out.client.tls?.trustCerts, ['/io.buoyant/linkerd/certs/ca.pem']);
  t.equal(out.client.tls?.clientAuth?.keyPath, '/io.buoyant/linkerd/certs/key.pk8');
  t.equal(out.transformers[0]?.kind, 'io.l5d.k8s.daemonset');
  t.equal((out.transformers[0] as Record<string, unknown> | undefined)?.['service'], 'l5d');
  t.same(out.identifier, [{ kind: 'io.l5d.header.token', header: 'Host' }], 'default identifier is the Host header');
  t.equal(inc.servers[0]?.tls?.requireClientAuth, true);
  t.equal(inc.servers[0]?.tls?.caCertPath, '/io.buoyant/linkerd/certs/ca.pem');
  t.equal(config.shutdownGraceMs, 10_000, 'default shutdownGraceMs');

  // One warning per unenforced key, naming where it is.
  t.same(
    warnings.map((w) => w.replace(/^l5d\.yaml:\d+:\d+: /, '')),
    [
      'usage: accepted, not enforced: nothing is lost: hostmesh sends no usage data anywhere',
      'telemetry[1]: io.l5d.recentRequests: accepted, not enforced: the admin recent requests view is not served',
    ],
  );
  t.same(config.telemetry, { prometheus: { path: '/admin/metrics/prometheus', prefix: '' } }, 'io.l5d.prometheus is enforced');
  t.same(
    out.service,
    { responseClassifier: { kind: 'io.l5d.http.retryableRead5XX' } },
    'service.responseClassifier is enforced (router/stages/forward/classifier.ts)',
  );
  t.match(warnings[0], /^l5d\.yaml:\d+:1: usage:/, 'warnings carry file:line:col');
  t.notOk(
    warnings.some((w) => w.includes('interpreter')),
    'interpreter kind: default is what hostmesh does: no warning',
  );
});

t.test('--set changes addresses, ports and paths (as tests and --check outside the cluster need)', async (t) => {
  const { config } = parseConfig(fixtureText, 'l5d.yaml', {
    set: ['routers.0.servers.0.port=14140', 'routers.0.servers.0.ip=127.0.0.1', 'namers.0.port=18001', 'admin.ip=127.0.0.1', 'nodeName=node-x'],
  });
  t.equal(config.routers[0]?.servers[0]?.port, 14140, 'numbers stay numbers');
  t.equal(config.routers[0]?.servers[0]?.ip, '127.0.0.1');
  t.equal(config.namers[0]?.kind === 'io.l5d.k8s' && config.namers[0].port, 18001);
  t.equal(config.admin.ip, '127.0.0.1');
  t.equal(config.nodeName, 'node-x');
  t.match(problemsOf(() => parseConfig(fixtureText, 'l5d.yaml', { set: ['routers.7.label=x'] }))[0], /routers\[7\] does not exist/);
  t.match(problemsOf(() => parseConfig(fixtureText, 'l5d.yaml', { set: ['nonsense'] }))[0], /expected key\.path=value/);
});

t.test('a key Linkerd 1 never had is an error naming the key path and its line:col', async (t) => {
  const text = [
    'routers:',
    '- protocol: http',
    '  label: out',
    '  servers:',
    '  - port: 4140',
    '    tls:',
    '      certPath: a.pem',
    '      keyPath: a.key',
    '      colour: blue',
    '',
  ].join('\n');
  const problems = problemsOf(() => parseConfig(text, 'bad.yaml'));
  t.equal(problems.length, 1);
  t.match(problems[0], /^bad\.yaml:9:7: routers\[0\]\.servers\[0\]\.tls\.colour: unknown key 'colour'/);
});

t.test('wrong types and missing keys name the path', async (t) => {
  const text = ['admin:', '  port: "ninety"', 'routers:', '- protocol: gopher', '  servers: []', ''].join('\n');
  const problems = problemsOf(() => parseConfig(text, 'c.yaml'));
  t.ok(
    problems.some((p) => /^c\.yaml:2:9: admin\.port: /.test(p)),
    `admin.port is located: ${problems.join(' | ')}`,
  );
  t.ok(
    problems.some((p) => /^c\.yaml:4:13: routers\[0\]\.protocol: /.test(p)),
    'protocol is located',
  );
  t.ok(
    problems.some((p) => /routers\[0\]\.servers: /.test(p)),
    'empty servers list is refused',
  );
  t.match(problemsOf(() => parseConfig('{}', 'e.yaml'))[0], /routers/, 'a config without routers is refused');
  t.match(problemsOf(() => parseConfig('- a\n- b\n', 'l.yaml'))[0], /^l\.yaml:1:1: the config must be a YAML mapping/);
});

t.test('YAML syntax errors and duplicate keys carry line:col', async (t) => {
  t.match(problemsOf(() => parseConfig('routers:\n  - protocol: http\n   label: [x\n', 'y.yaml'))[0], /^y\.yaml:\d+:\d+: /);
  t.match(problemsOf(() => parseConfig('admin:\n  port: 1\n  port: 2\nrouters: []\n', 'd.yaml'))[0], /^d\.yaml:3:3: .*[Uu]nique|[Dd]uplicate/);
});

t.test('an inline dtab that does not parse is reported at the dtab key', async (t) => {
  const text = ['routers:', '- protocol: http', '  dtab: /svc => /foo^bar', '  servers:', '  - port: 1', ''].join('\n');
  const [p] = problemsOf(() => parseConfig(text, 'x.yaml'));
  t.match(p, /^x\.yaml:3:9: routers\[0\]\.dtab: .*found at '\/svc => \/foo\[\^\]bar'/);
});

t.test('dtabFile is relative to the config directory; a bad one is reported as file:line:col', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'good.dtab'), '# shipped dtab\n/svc => /#/io.l5d.fs;\n');
  await writeFile(join(dir, 'bad.dtab'), '/svc => /#/io.l5d.fs;\n/host => /a b;\n');
  const cfg = (dtabFile: string): string => ['routers:', '- protocol: http', `  dtabFile: ${dtabFile}`, '  servers:', '  - port: 4140', ''].join('\n');
  await writeFile(join(dir, 'good.yaml'), cfg('good.dtab'));
  await writeFile(join(dir, 'bad.yaml'), cfg('bad.dtab'));
  await writeFile(join(dir, 'missing.yaml'), cfg('nope.dtab'));

  const { config } = await loadConfig(join(dir, 'good.yaml'));
  t.equal(config.routers[0]?.dtabFile, join(dir, 'good.dtab'));
  t.match(config.routers[0]?.dtab, '/svc => /#/io.l5d.fs;');
  t.equal(config.routers[0]?.servers[0]?.ip, '127.0.0.1', 'servers default to loopback as in Linkerd 1');

  const bad = await loadConfig(join(dir, 'bad.yaml')).then(
    () => [] as string[],
    (e: ConfigError) => [...e.problems],
  );
  t.match(bad[0], new RegExp(`^${join(dir, 'bad.dtab').replace(/[.]/g, '\\.')}:2:\\d+: `), 'names the dtab file, line and column');

  const missing = await loadConfig(join(dir, 'missing.yaml')).then(
    () => [] as string[],
    (e: ConfigError) => [...e.problems],
  );
  t.match(missing[0], /missing\.yaml:3:\d+: routers\[0\]\.dtabFile: cannot read/);

  const unreadable = await loadConfig(join(dir, 'none.yaml')).then(
    () => [] as string[],
    (e: ConfigError) => [...e.problems],
  );
  t.match(unreadable[0], /none\.yaml: cannot read config/);
});
