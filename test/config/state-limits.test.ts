// The state limits of issue 15 (Critical 4) as config keys: Linkerd 1's router bindingCache and
// the namers' idleTtlSecs, maxIdleNames and maxNamespaces are validated and carried, not warned
// about as "accepted, not enforced".

import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const base = (router: string, namers = ''): string => `
namers:
- kind: io.l5d.fs
  rootDir: /tmp/disco${namers}
- kind: io.l5d.k8s
  host: 127.0.0.1
  port: 8001${namers}
routers:
- protocol: http
  dtab: /svc => /#/io.l5d.fs;
  servers: [{port: 4140}]
${router}
`;

t.test('bindingCache and the namer limits are enforced keys', async (t) => {
  const text = base(
    '  bindingCache: {paths: 200, trees: 300, bounds: 1000, clients: 1000, idleTtlSecs: 60, overrides: 20}',
    '\n  idleTtlSecs: 30\n  maxIdleNames: 50',
  ).replace('port: 8001\n  idleTtlSecs: 30', 'port: 8001\n  maxNamespaces: 8\n  idleTtlSecs: 30');
  const { config, warnings } = parseConfig(text, 'l5d.yaml');
  t.same(
    warnings.filter((w) => /bindingCache|idleTtlSecs|maxIdleNames|maxNamespaces/.test(w)),
    [],
    'no "accepted, not enforced" warning',
  );
  t.same(config.routers[0]?.bindingCache, { paths: 200, trees: 300, bounds: 1000, clients: 1000, idleTtlSecs: 60, overrides: 20 });
  t.match(config.namers[0], { kind: 'io.l5d.fs', idleTtlSecs: 30, maxIdleNames: 50 });
  t.match(config.namers[1], { kind: 'io.l5d.k8s', maxNamespaces: 8, idleTtlSecs: 30, maxIdleNames: 50 });
});

t.test('bad values and unknown keys are errors with their position', async (t) => {
  for (const [router, why] of [
    ['  bindingCache: {paths: 0}', /bindingCache\.paths/],
    ['  bindingCache: {idleTtl: 60}', /unknown key 'idleTtl'/],
  ] as const) {
    let message = '';
    try {
      parseConfig(base(router), 'l5d.yaml');
    } catch (err) {
      t.ok(err instanceof ConfigError, `${router}: a ConfigError`);
      message = (err as Error).message;
    }
    t.match(message, why, `${router}: names the key`);
    t.match(message, /l5d\.yaml:\d+:\d+/, `${router}: with its position`);
  }
  t.throws(() => parseConfig(base('', '\n  maxIdleNames: 0'), 'l5d.yaml'), /maxIdleNames/);
});
