// The pure part of the Kubernetes namer: which endpoints a Service port resolves to, following
// the EndpointSlice and Service semantics of the Kubernetes API reference.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { endpointsEndpoints, parsePortRef, pickPort, projectSlice, sliceEndpoints, type EndpointSliceObject } from '../../src/namer/k8s/endpoints.js';

const slice = (o: Partial<EndpointSliceObject>): EndpointSliceObject => ({
  addressType: 'IPv4',
  metadata: { name: 's' },
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  ...o,
});
const hosts = (eps: { host: string; port: number }[]): string[] => eps.map((e) => `${e.host}:${e.port}`);

t.test('ready endpoints, nil ready counts as ready, unready ones are dropped', async (t) => {
  const s = slice({
    endpoints: [
      { addresses: ['10.0.0.1'], conditions: { ready: true }, nodeName: 'n1', zone: 'z1', targetRef: { name: 'pod-1' } },
      { addresses: ['10.0.0.2'], conditions: {} },
      { addresses: ['10.0.0.3'], conditions: { ready: false } },
      { addresses: ['10.0.0.4'] },
    ],
  });
  const eps = sliceEndpoints([s], { byName: 'http' });
  t.same(hosts(eps), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.4:8080']);
  t.same(eps[0]?.meta, { nodeName: 'n1', zone: 'z1', pod: 'pod-1' }, 'node, zone and pod carried');
});

t.test('serving-but-terminating endpoints only when nothing is ready', async (t) => {
  const terminating = { addresses: ['10.0.0.9'], conditions: { ready: false, serving: true, terminating: true } };
  t.same(hosts(sliceEndpoints([slice({ endpoints: [terminating, { addresses: ['10.0.0.1'], conditions: { ready: true } }] })], { byName: 'http' })), [
    '10.0.0.1:8080',
  ]);
  t.same(hosts(sliceEndpoints([slice({ endpoints: [terminating] })], { byName: 'http' })), ['10.0.0.9:8080'], 'fallback');
  t.same(
    sliceEndpoints([slice({ endpoints: [{ addresses: ['10.0.0.8'], conditions: { ready: false, serving: false, terminating: true } }] })], { byName: 'http' }),
    [],
    'not serving: never',
  );
});

t.test('several slices merge; IPv6 kept; FQDN skipped; null endpoints; duplicates once', async (t) => {
  const eps = sliceEndpoints(
    [
      slice({ endpoints: [{ addresses: ['10.0.0.1'] }] }),
      slice({ addressType: 'IPv6', endpoints: [{ addresses: ['fd00::1'] }] }),
      slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] }),
      slice({ endpoints: null }),
      slice({ endpoints: [{ addresses: ['10.0.0.1'] }] }),
    ],
    { byName: 'http' },
  );
  t.same(hosts(eps), ['10.0.0.1:8080', 'fd00::1:8080']);
});

t.test('ports: by name (case-insensitive), missing name, UDP and "all ports" are not usable', async (t) => {
  const s = slice({
    ports: [
      { name: 'HTTP', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'any', port: null },
    ],
    endpoints: [{ addresses: ['10.0.0.1'] }],
  });
  t.same(hosts(sliceEndpoints([s], { byName: 'http' })), ['10.0.0.1:8080']);
  t.same(sliceEndpoints([s], { byName: 'dns' }), []);
  t.same(sliceEndpoints([s], { byName: 'any' }), []);
  t.same(sliceEndpoints([s], { byName: 'grpc' }), []);
  t.same(hosts(sliceEndpoints([s], { number: 9000 })), ['10.0.0.1:9000'], 'a fixed target number');
});

t.test('port numbers go through the Service: port -> targetPort (number, name, or absent)', async (t) => {
  const svc = {
    spec: {
      ports: [
        { name: 'web', port: 80, targetPort: 'HTTP' },
        { name: 'raw', port: 81, targetPort: 9001 },
        { name: 'same', port: 82 },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
      ],
    },
  };
  t.same(parsePortRef('80'), { kind: 'number', port: 80 });
  t.same(parsePortRef('Http'), { kind: 'name', name: 'http' });
  t.same(pickPort(parsePortRef('80'), svc), { byName: 'http' });
  t.same(pickPort(parsePortRef('81'), svc), { number: 9001 });
  t.same(pickPort(parsePortRef('82'), svc), { number: 82 });
  t.equal(pickPort(parsePortRef('53'), svc), undefined, 'UDP ports are not proxied');
  t.equal(pickPort(parsePortRef('99'), svc), undefined, 'no such Service port');
  t.same(pickPort(parsePortRef('http'), {}), { byName: 'http' }, 'a name needs no Service port');
});

t.test('v1 Endpoints: ready addresses only; a missing subsets key is empty', async (t) => {
  const obj = {
    subsets: [
      { addresses: [{ ip: '10.1.0.1', nodeName: 'n1', targetRef: { name: 'p1' } }], ports: [{ name: 'http', port: 8080 }] },
      { addresses: [{ ip: '10.1.0.2' }], ports: [{ name: 'admin', port: 9990 }] },
    ],
  };
  const eps = endpointsEndpoints(obj, { byName: 'http' });
  t.same(hosts(eps), ['10.1.0.1:8080']);
  t.same(eps[0]?.meta, { nodeName: 'n1', pod: 'p1' });
  t.same(endpointsEndpoints({}, { byName: 'http' }), []);
  t.same(endpointsEndpoints(undefined, { byName: 'http' }), []);
});

t.test('projections keep what binding reads at its size: 5,000 endpoints under 400 bytes each (was ~480-510)', async (t) => {
  // A projected slice lives in the informer's cache for as long as the Service: arrays built by
  // push() would keep 17 slots for one address, and each endpoint its own conditions object.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const raws = Array.from({ length: 1000 }, (_, s) => ({
    metadata: { name: `svc-${s}-abc`, namespace: 'default', resourceVersion: String(s), labels: { 'kubernetes.io/service-name': `svc-${s}` } },
    addressType: 'IPv4',
    endpoints: Array.from({ length: 5 }, (_, i) => ({
      addresses: [`10.1.${s & 255}.${i + 1}`],
      conditions: { ready: i !== 4, serving: true, terminating: i === 4 },
      nodeName: `node-${i}`,
      targetRef: { name: `pod-${s}-${i}` },
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  }));
  const check = (text: string) => ({ ok: true as const, host: text });
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = raws.map((r) => projectSlice(r, check, ['kubernetes.io/service-name']).slice);
  gc();
  gc();
  const per = (process.memoryUsage().heapUsed - before) / 5000;
  t.ok(per < 400, `${per.toFixed(0)} bytes per endpoint`);
  const first = kept[7]?.endpoints;
  t.same(first?.[0], {
    addresses: ['10.1.7.1'],
    conditions: { ready: true, serving: true, terminating: false },
    nodeName: 'node-0',
    targetRef: { name: 'pod-7-0' },
  });
  t.same(first?.[4]?.conditions, { ready: false, serving: true, terminating: true });
  t.equal(first?.[0]?.conditions, kept[9]?.endpoints?.[1]?.conditions, 'equal conditions are one shared object');
  t.ok(Object.isFrozen(first?.[0]?.conditions), 'which nobody can change for the others');
  t.same(
    projectSlice(
      { metadata: { name: 'x' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1', 'bad', '10.0.0.2'], conditions: { ready: 'yes' } }] },
      (text) => (text === 'bad' ? { ok: false as const, reason: 'not an IP' } : { ok: true as const, host: text }),
      [],
    ),
    {
      slice: {
        metadata: { name: 'x' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.0.0.1', '10.0.0.2'], conditions: { ready: null, serving: null, terminating: null } }],
        ports: [],
      },
      refused: [{ address: 'bad', reason: 'not an IP' }],
    },
    'refused addresses left out and reported; a condition that is not a boolean is null',
  );
});
