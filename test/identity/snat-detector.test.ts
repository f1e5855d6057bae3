// A CNI that rewrites pod sources through hostPort is detected: connections from the pod network's
// gateway (read from /proc/net/route) are logged loudly, once an hour, and counted.

import { clockWithNow } from '../../src/core/clock.js';
import fc from 'fast-check';
import t from 'tap';
import { defaultGateways, SnatDetector } from '../../src/identity/snat-detector.js';
import { PodIndex } from '../../src/identity/pod-directory.js';
import { SourceGuard } from '../../src/identity/source-guard.js';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

t.test('the default gateway from /proc/net/route (little-endian hex)', async (t) => {
  t.same(defaultGateways(ROUTE), ['10.244.1.1']);
  t.same(defaultGateways(''), []);
  t.same(defaultGateways('Iface\tDestination\tGateway\nlo\t00000000\tzzzz\n'), [], 'garbage ignored');
});

t.test('property: any IPv4 gateway round-trips through the route table format', async () => {
  fc.assert(
    fc.property(fc.ipV4(), (ip) => {
      const hex = ip
        .split('.')
        .map((o) => Number(o).toString(16).padStart(2, '0'))
        .reverse()
        .join('')
        .toUpperCase();
      const got = defaultGateways(`Iface\tDestination\tGateway\neth0\t00000000\t${hex}\t0003\n`);
      return ip === '0.0.0.0' ? got.length === 0 : got.length === 1 && got[0] === ip;
    }),
  );
});

t.test('sources equal to the gateway are warned about once an hour and counted; others are not', async (t) => {
  let now = 0;
  const warnings: string[] = [];
  let counted = 0;
  const d = new SnatDetector({
    gateways: ['10.244.1.1'],
    warn: (m, s) => warnings.push(`${s}: ${m}`),
    events: { rewrittenSource: () => counted++ },
    clock: clockWithNow(() => now),
  });
  t.notOk(d.observe('10.244.1.7'), 'a pod address');
  t.ok(d.observe('10.244.1.1'));
  t.ok(d.observe('::ffff:10.244.1.1'), 'IPv4-mapped');
  now += 3_599_999;
  d.observe('10.244.1.1');
  t.equal(warnings.length, 1, 'once an hour');
  t.match(warnings[0], /rewrites pod source addresses/);
  now += 1;
  d.observe('10.244.1.1');
  t.equal(warnings.length, 2);
  t.equal(counted, 4, 'every one counted');
});

t.test('the source guard shows every source to the detector', async (t) => {
  const pods = new PodIndex();
  pods.markSynced();
  const seen: string[] = [];
  const guard = new SourceGuard({ nodeName: 'n1', pods, nodeAddresses: () => [], waitMs: 0, observe: (ip) => seen.push(ip) });
  // The detector sees a source when it arrives, before the guard decides on it (an unknown pod's
  // wait runs on an unref'd timer, so the decision itself is not awaited here).
  void guard.admit('10.244.1.1');
  void guard.admit('::ffff:127.0.0.1');
  t.same(seen, ['10.244.1.1', '127.0.0.1']);
});
