// Linkerd 1's clearContext on a server, and the `authz` config key: a server with clearContext
// drops l5d-dtab and l5d-ctx-* before routing (an override cannot steer it, a forged context is
// not passed on), its neighbour without it honours them; authz keys load, resolve and validate;
// without an authz key nothing is decided or counted.

import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';

const HOST = '127.0.0.1';

t.test('config: clearContext is enforced (no longer "accepted, not enforced"); authz loads relative to the config file', async (t) => {
  const text = `authz:
  policyFile: policies/p.yaml
  pollMs: 500
  parserMemoryMb: 128
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 4140
    clearContext: true
`;
  const { config: c, warnings } = parseConfig(text, '/etc/hm/config.yaml');
  t.equal(c.routers[0]?.servers[0]?.clearContext, true);
  t.same(warnings, [], 'no "accepted, not enforced" warning');
  t.same(c.authz, { policyFile: '/etc/hm/policies/p.yaml', pollMs: 500, parserMemoryMb: 128 });
  const { config: none } = parseConfig(text.replace(/^authz:\n( {2}.*\n)+/, ''), '/etc/hm/config.yaml');
  t.equal(none.authz, undefined, 'absent: no policy (allow all)');
  for (const [what, bad, where] of [
    ['a misspelt key', 'authz:\n  policyfile: p.yaml\n', /config\.yaml:2:3: .*policyfile/],
    ['no policyFile', 'authz:\n  pollMs: 500\n', /config\.yaml:\d+:\d+: .*authz\.policyFile/],
    ['a poll under 100 ms', 'authz:\n  policyFile: p.yaml\n  pollMs: 5\n', /config\.yaml:3:11: .*pollMs/],
    ['a tiny parser heap', 'authz:\n  policyFile: p.yaml\n  parserMemoryMb: 1\n', /config\.yaml:3:19: .*parserMemoryMb/],
    ['clearContext not a boolean', text.replace('clearContext: true', 'clearContext: yes please'), /clearContext/],
  ] as const) {
    const input = what === 'clearContext not a boolean' ? bad : bad + text.replace(/^authz:\n( {2}.*\n)+/, '');
    let problems = '';
    try {
      parseConfig(input, '/etc/hm/config.yaml');
    } catch (err) {
      if (err instanceof ConfigError) problems = err.problems.join('\n');
    }
    t.match(problems, where, what);
  }
});

t.test('a server with clearContext: true drops l5d-dtab and l5d-ctx-*; one without honours them', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const backend = http.createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    res.end('backend');
  });
  await new Promise<void>((r) => backend.listen(0, HOST, r));
  t.teardown(() => new Promise((r) => backend.close(r)));
  const [cleared, plain, admin] = (await freePorts(HOST, 3)) as [number, number, number];
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-clear-'));
  await writeFile(join(dir, 'unused'), '');
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: `/svc => /$/inet/${HOST}/${(backend.address() as { port: number }).port};`,
        identifier: [],
        transformers: [],
        servers: [
          { ip: HOST, port: cleared, clearContext: true },
          { ip: HOST, port: plain },
        ],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 0,
    baseDir: dir,
  };
  const mesh: Hostmesh = await startHostmesh(config, { logger: silentLogger() });
  t.teardown(async () => {
    await mesh.close(0);
    await rm(dir, { recursive: true, force: true });
  });
  // The override would send the request to a closed port (a 502); the context headers are forged.
  const headers = {
    'l5d-dtab': `/svc/app => /$/inet/${HOST}/1`,
    'l5d-ctx-dtab': `/svc/app => /$/inet/${HOST}/2`,
    'l5d-ctx-trace': 'forged',
    // A deadline a minute ahead (Finagle's `<timestamp ns> <deadline ns>`): honoured where context is kept.
    'l5d-ctx-deadline': `${BigInt(Date.now()) * 1_000_000n} ${BigInt(Date.now() + 60_000) * 1_000_000n}`,
    'x-app': 'kept',
  };
  const r = await request({ host: HOST, port: cleared, path: 'http://app/', headers });
  t.equal(r.status, 200, 'the override was not applied');
  t.equal(r.body, 'backend');
  const got = seen.at(-1) ?? {};
  t.same(
    Object.keys(got).filter((k) => k.startsWith('l5d-ctx-') || k === 'l5d-dtab'),
    [],
    'no l5d-ctx-* or l5d-dtab reaches the next hop',
  );
  t.equal(got['x-app'], 'kept', "the app's own headers pass");

  const honoured = await request({ host: HOST, port: plain, path: 'http://app/', headers });
  t.equal(honoured.status, 502, 'without clearContext the override applies (to a closed port here)');
  const before = seen.length;
  const ctxOnly = await request({ host: HOST, port: plain, path: 'http://app/', headers: { 'l5d-ctx-trace': 't1' } });
  t.equal(ctxOnly.status, 200);
  t.equal(seen.length, before + 1);
  t.equal(seen.at(-1)?.['l5d-ctx-trace'], 't1', 'and passes the context on');

  // No authz key: every call allowed, as before, and no authorization metric series at all.
  const authz = (await mesh.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'hostmesh_authz_total');
  t.same(authz?.values, [], 'no policy, no hostmesh_authz_total series');
  t.equal(mesh.policy, undefined);
  const callers = await request({ host: HOST, port: admin, path: '/authz/callers.json' });
  t.equal((JSON.parse(callers.body) as { policy: boolean }).policy, false);
});
