// Issue 23 item 1: an EndpointSlice is written by a tenant. Spellings a resolver reads as loopback
// or the metadata service (0177.0.0.1, 127.1, 0x7f.1, 0251.254.0251.254) are never dialled, and
// ranges no pod holds (loopback, link-local, unspecified, multicast) are refused from discovery;
// refused addresses are counted and logged once per slice, not per request. Real sockets: a stand-in
// for the `kubectl proxy` beside the router listens on loopback and must never be reached.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { request } from '../helpers/http.js';
import { endpointSlice, service } from '../helpers/k8s.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const HOST = '127.0.0.1';

async function setup(t: Test, allowLoopbackEndpoints: boolean) {
  const api = await new FakeApiServer().start();
  let hits = 0;
  const proxy = http.createServer((_req, res) => {
    hits++;
    res.end('kubectl proxy: you have the node credentials');
  });
  await new Promise<void>((r) => proxy.listen(0, HOST, r));
  const proxyPort = (proxy.address() as AddressInfo).port;
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const hm = await startHostmesh(
    {
      admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
      namers: [{ kind: 'io.l5d.k8s', prefix: '/io.l5d.k8s', host: HOST, port: api.port, allowLoopbackEndpoints }],
      routers: [
        {
          protocol: 'http',
          label: 'outgoing',
          dtab: '/svc => /#/io.l5d.k8s/default/http;',
          identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
          transformers: [],
          servers: [{ ip: HOST, port }],
          client: { loadBalancer: { kind: 'roundRobin' } },
          maxHops: 64,
        },
      ],
      shutdownGraceMs: 100,
      baseDir: process.cwd(),
    },
    { logger: pino({ level: 'warn' }, sink), k8sBackoff: { baseMs: 20, capMs: 200 } },
  );
  t.teardown(async () => {
    await hm.close(100);
    await api.close();
    proxy.close();
  });
  const call = async (svc: string): Promise<number> => (await request({ host: HOST, port, path: '/', headers: { host: svc } })).status;
  const metric = async (name: string): Promise<number> => {
    const samples = parsePrometheus((await request({ host: HOST, port: admin, path: '/metrics' })).body);
    return samples.find((s) => s.name === name && s.labels['namer'] === 'io.l5d.k8s')?.value ?? 0;
  };
  return { api, proxyPort, hits: () => hits, lines, call, metric };
}

const HOSTILE = ['0177.0.0.1', '127.1', '0x7f.1', '0177.1', '2130706433', 'localhost', '0251.254.0251.254', '169.254.169.254', '0.0.0.0', '224.0.0.1'];

t.test('non-canonical spellings of loopback never reach the node-local proxy; canonical endpoints do', async (t) => {
  // Loopback allowed (a cluster on one machine), so a canonical 127.0.0.1 endpoint shows delivery works.
  const { api, proxyPort, hits, lines, call, metric } = await setup(t, true);
  api.apply(service('default', 'evil', [{ name: 'http', port: 80 }]));
  api.apply(service('default', 'good', [{ name: 'http', port: 80 }]));
  api.apply(
    endpointSlice(
      'default',
      'evil-1',
      'evil',
      HOSTILE.map((ip) => ({ ip })),
      [{ name: 'http', port: proxyPort }],
    ),
  );
  api.apply(endpointSlice('default', 'good-1', 'good', [{ ip: HOST }], [{ name: 'http', port: proxyPort }]));
  let good = 0;
  for (let i = 0; i < 100 && good !== 200; i++) {
    good = await call('good');
    if (good !== 200) await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(good, 200, 'a canonical endpoint is delivered to');
  const before = hits();
  const statuses = new Set<number>();
  for (let i = 0; i < 20; i++) statuses.add(await call('evil'));
  t.same([...statuses], [502], 'every hostile spelling refused: the name has no endpoint (502)');
  t.equal(hits(), before, 'the node-local proxy was never reached');
  t.equal(await metric('hostmesh_k8s_endpoint_addresses_refused_total'), HOSTILE.length, 'each refused address counted once');
  const logged = lines.filter((l) => l['object'] === 'evil-1');
  t.equal(logged.length, 1, 'logged once for the slice, not per request');
  t.match(JSON.stringify(logged[0]), /0177\.0\.0\.1.*not-canonical/, 'the log names the address and why');
});

t.test('by default loopback and the node own addresses are not delivered to from discovery', async (t) => {
  const { api, proxyPort, hits, call, metric } = await setup(t, false);
  api.apply(service('default', 'loop', [{ name: 'http', port: 80 }]));
  api.apply(endpointSlice('default', 'loop-1', 'loop', [{ ip: HOST }, { ip: '::ffff:127.0.0.1' }], [{ name: 'http', port: proxyPort }]));
  api.apply({
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name: 'loop-2', labels: { 'kubernetes.io/service-name': 'loop' } },
    addressType: 'IPv6',
    endpoints: [{ addresses: ['::1'], conditions: { ready: true } }, { addresses: ['fe80::1'] }],
    ports: [{ name: 'http', port: proxyPort, protocol: 'TCP' }],
  });
  t.equal(await call('loop'), 502, 'no endpoint left: 502');
  let refused = 0;
  for (let i = 0; i < 100 && refused < 4; i++) {
    refused = await metric('hostmesh_k8s_endpoint_addresses_refused_total');
    if (refused < 4) await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(refused, 4, '127.0.0.1, ::ffff:127.0.0.1, ::1 and fe80::1 refused');
  t.equal(await call('loop'), 502, 'no endpoint left: 502');
  t.equal(hits(), 0, 'the node-local proxy was never reached');
});
