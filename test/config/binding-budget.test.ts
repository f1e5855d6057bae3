// The router's bindingBudget key: validated (an integer 100..1,000,000), shown in the loaded
// config, and enforced: an override over it is a 400, the router's own dtab over it a 502.

import http from 'node:http';
import type net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const yaml = (budget: string): string => `
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1
  bindingBudget: ${budget}
  servers:
  - port: 4140
`;

t.test('bindingBudget is validated and kept', async (t) => {
  t.equal(parseConfig(yaml('500'), 'x.yaml').config.routers[0]?.bindingBudget, 500);
  for (const bad of ['50', '2000000', '1.5', 'lots']) {
    t.throws(() => parseConfig(yaml(bad), 'x.yaml'), ConfigError, `bindingBudget: ${bad}`);
    try {
      parseConfig(yaml(bad), 'x.yaml');
    } catch (err) {
      t.match((err as ConfigError).problems.join('\n'), /bindingBudget/, 'the problem names the key');
    }
  }
  t.equal(parseConfig(yaml('500').replace(/ {2}bindingBudget.*\n/, ''), 'x.yaml').config.routers[0]?.bindingBudget, undefined, 'unset: the default applies');
});

/**
 * `/h0 => /h1&/h1; ...`: 2^(levels+2) - 2 delegation nodes. Unions, since every member is bound
 * (an alternation stops at its first member that binds).
 */
function chain(from: string, levels: number, leaf: string, h = 'h'): string {
  const lines = [`${from}=>/${h}0`];
  for (let i = 0; i < levels; i++) lines.push(`/${h}${i}=>/${h}${i + 1}&/${h}${i + 1}`);
  lines.push(`/${h}${levels}=>${leaf}`);
  return lines.join(';');
}

t.test('a small bindingBudget is enforced on overrides (400) and on the router dtab (502), and counted', async (t) => {
  const HOST = '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-budget-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const backend = http.createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((r) => backend.listen(0, HOST, r));
  t.teardown(() => new Promise<void>((r) => backend.close(() => r())));
  const leaf = `/$/inet/${HOST}/${(backend.address() as net.AddressInfo).port}`;
  const [out, admin] = (await freePorts(HOST, 2)) as [number, number];
  const text = `
admin: {ip: ${HOST}, port: ${admin}}
routers:
- protocol: http
  label: out
  bindingBudget: 200
  dtab: "/svc/ok => ${leaf}; ${chain('/svc/costly', 6, leaf)}"
  servers: [{ip: ${HOST}, port: ${out}}]
`;
  const { config } = parseConfig(text, join(dir, 'c.yaml'));
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  t.teardown(() => mesh.close(0));
  const get = (host: string, headers: http.OutgoingHttpHeaders = {}) => request({ host: HOST, port: out, path: '/', headers: { host, ...headers } });

  t.equal((await get('ok')).status, 200);
  // 5 levels: 126 nodes, within 200; 6 levels: 254, over it.
  t.equal((await get('ok', { 'l5d-dtab': chain('/svc/ok', 5, leaf, 'g') })).status, 200, 'an override within the budget binds');
  const over = await get('ok', { 'l5d-dtab': chain('/svc/ok', 6, leaf, 'g') });
  t.equal(over.status, 400, 'an override over the budget: 400');
  t.match(
    decodeURIComponent(String(over.headers['l5d-err'])),
    /^dtab override rejected: binding \/svc\/ok exceeded the binding budget of 200 delegation nodes/,
  );
  const own = await get('costly');
  t.equal(own.status, 502, "the router's own dtab over the budget: 502");
  t.match(decodeURIComponent(String(own.headers['l5d-err'])), /^binding \/svc\/costly exceeded the binding budget of 200/);
  t.equal((await get('ok')).status, 200, 'normal traffic is unaffected');

  const m = await request({ host: HOST, port: admin, path: '/metrics' });
  const count = (source: string) =>
    parsePrometheus(m.body).find((s) => s.name === 'hostmesh_binding_budget_exceeded_total' && s.labels['router'] === 'out' && s.labels['source'] === source)
      ?.value;
  t.equal(count('override'), 1);
  t.equal(count('dtab'), 1);
  // /delegator.json uses the router's budget too.
  const q = new URLSearchParams({ router: 'out', path: '/svc/costly' });
  const d = await request({ host: HOST, port: admin, path: `/delegator.json?${q}` });
  t.match(JSON.parse(d.body), { type: 'exception', message: /binding budget of 200/ });
});
