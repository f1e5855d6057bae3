// Issue 23 item 5: a Service of 30 slices x 1,000 endpoints edited in bursts must not rebuild
// its endpoint set per event, and other tenants' names keep resolving. The coalescing window runs
// on an injected clock and scheduler (no sleeping for time); the work is counted in rebuilds.

import t from 'tap';
import { Path } from '../../src/dtab/path.js';
import { K8sClient, type KObject } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { silentLogger } from '../../src/log.js';
import type { Addr, Lookup } from '../../src/namer/addr.js';
import { K8sNamer } from '../../src/namer/k8s/k8s-namer.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { service, until } from '../helpers/k8s.js';

function bigSlice(i: number, generation: number): KObject {
  return {
    kind: 'EndpointSlice',
    metadata: { namespace: 'busy', name: `busy-${String(i).padStart(2, '0')}`, labels: { 'kubernetes.io/service-name': 'busy' } },
    addressType: 'IPv4',
    endpoints: Array.from({ length: 1000 }, (_, k) => ({
      addresses: [`10.${i}.${k >> 8}.${k & 255}`],
      conditions: { ready: (k + generation) % 7 !== 0 },
      nodeName: `node-${k % 50}`,
      targetRef: { kind: 'Pod', name: `busy-${i}-${k}` },
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

const addrOf = (l: Lookup): Addr | undefined => (l.kind === 'ok' && l.tree.kind === 'leaf' ? l.tree.value.addr.get() : undefined);
const count = (l: Lookup): number => {
  const a = addrOf(l);
  return a?.kind === 'bound' ? a.endpoints.length : 0;
};

t.test('30 slices x 1,000 endpoints churned: bursts coalesced per Service, endpoints capped, another tenant unaffected', async (t) => {
  const api = await new FakeApiServer().start();
  const timers: (() => void)[] = [];
  let now = 0;
  const namer = new K8sNamer({
    client: new K8sClient(plainConnection('127.0.0.1', api.port)),
    logger: silentLogger(),
    // Still during the burst: only the scheduled window end rebuilds again. The timers kept are the
    // coalescing windows (100 ms); the idle sweeper (1 s and more) is not this test's subject.
    clock: {
      now: () => now,
      schedule: (ms, fn) => {
        if (ms >= 1000) return () => undefined;
        timers.push(fn);
        return () => void timers.splice(timers.indexOf(fn), 1);
      },
    },
  });
  t.teardown(async () => {
    await namer.close();
    await api.close();
  });
  api.apply(service('busy', 'busy'));
  api.apply(service('calm', 'calm'));
  for (let i = 0; i < 30; i++) api.apply(bigSlice(i, 0));
  api.apply({
    kind: 'EndpointSlice',
    metadata: { namespace: 'calm', name: 'calm-1', labels: { 'kubernetes.io/service-name': 'calm' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.200.0.1'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  const busy = namer.lookup(new Path(['busy', 'http', 'busy']));
  const calm = namer.lookup(new Path(['calm', 'http', 'calm']));
  const offs = [busy.subscribe(() => undefined), calm.subscribe(() => undefined)];
  t.teardown(() => offs.forEach((off) => off()));
  t.ok(await until(() => count(busy.get()) > 0 && count(calm.get()) === 1, 20_000), 'both bound');
  while (timers.length > 0) timers.shift()?.();
  t.equal(count(busy.get()), 5000, 'capped at maxEndpointsPerService (5000) of 30,000');
  t.ok(namer.endpointsCapped >= 1, 'the cap is counted (hostmesh_k8s_endpoints_capped_total)');

  const events = (): number => {
    const s = namer.state() as { namespaces: { namespace: string; watches: { path: string; stats: { events: number } }[] }[] };
    const ns = s.namespaces.find((n) => n.namespace === 'busy');
    return ns?.watches.find((w) => w.path.includes('endpointslices'))?.stats.events ?? 0;
  };
  const before = events();
  const rebuildsBefore = namer.rebuilds;
  const EDITS = 270; // ~27 edits/s for 10 s
  let calmBoundThroughout = true;
  const offCalm = calm.subscribe((l) => {
    if (count(l) !== 1) calmBoundThroughout = false;
  });
  for (let e = 1; e <= EDITS; e++) {
    api.apply(bigSlice(e % 30, e));
    if (e % 30 === 0) await new Promise((r) => setImmediate(r));
  }
  t.ok(await until(() => events() - before >= EDITS, 30_000), `all ${EDITS} slice events delivered`);
  const during = namer.rebuilds - rebuildsBefore;
  t.ok(during <= 1, `at most one rebuild at the start of the burst, the rest wait for the window (${during} for ${EDITS} events)`);
  t.equal(timers.length, 1, 'one window end scheduled for the namespace');
  timers.shift()?.();
  t.equal(namer.rebuilds - rebuildsBefore, during + 1, `the window end rebuilds once: ${during + 1} rebuilds for ${EDITS} events`);
  t.equal(count(busy.get()), 5000, 'still capped');
  t.ok(calmBoundThroughout, 'the other tenant stayed bound to its endpoint');
  // The other tenant's own change is applied at once (its window long past), however busy the other Service is.
  now += 1000;
  for (let e = 1; e <= 60; e++) api.apply(bigSlice(e % 30, e));
  api.apply({
    kind: 'EndpointSlice',
    metadata: { namespace: 'calm', name: 'calm-1', labels: { 'kubernetes.io/service-name': 'calm' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.200.0.1'], conditions: { ready: true } },
      { addresses: ['10.200.0.2'], conditions: { ready: true } },
    ],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  offCalm();
  t.ok(await until(() => count(calm.get()) === 2), "another Service's change is not held behind the busy one");
});
