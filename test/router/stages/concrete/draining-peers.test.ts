// Draining peer marks on an injected clock (router/stages/concrete/draining-peers.ts): expiry, clearing, the cap,
// the balancer filter that skips draining peers unless every endpoint is draining, and the keys.

import { clockWithNow } from '../../../../src/core/clock.js';
import t from 'tap';
import { ConfigError, parseConfig } from '../../../../src/config/load.js';
import { DrainingPeers, hasDrainingMark } from '../../../../src/router/stages/concrete/draining-peers.js';

t.test('a mark holds for the TTL, then expires on the clock', async (t) => {
  let now = 1_000;
  const sizes: number[] = [];
  let marked = 0;
  const p = new DrainingPeers({
    ttlMs: 500,
    clock: clockWithNow(() => now),
    events: { drainingPeerMarked: () => marked++, drainingPeers: (n) => sizes.push(n) },
  });
  t.equal(p.draining('10.0.0.2:4141'), false);
  p.mark('10.0.0.2:4141');
  p.mark('10.0.0.2:4141'); // every answer during the announce carries the mark: counted once
  t.equal(marked, 1);
  t.equal(p.draining('10.0.0.2:4141'), true);
  now = 1_499;
  t.equal(p.draining('10.0.0.2:4141'), true, 'still inside the TTL (from the last mark)');
  now = 1_500;
  t.equal(p.draining('10.0.0.2:4141'), false, 'expired');
  t.equal(p.size, 0, 'an expired mark is dropped');
  t.same(sizes, [1, 1, 0]);
});

t.test('an unmarked answer from the peer clears its mark at once', async (t) => {
  const p = new DrainingPeers({ clock: clockWithNow(() => 0) });
  p.mark('a');
  p.clear('a');
  t.equal(p.draining('a'), false);
  p.clear('never-marked'); // harmless
  t.equal(p.size, 0);
});

t.test('the balancer filter skips draining peers while another is alive, and picks the first to announce when all are', async (t) => {
  let now = 0;
  const p = new DrainingPeers({ clock: clockWithNow(() => now) });
  const endpoints = ['b', 'c', 'd'];
  const same = p.skipDraining(endpoints, (e) => e);
  t.equal(same, endpoints, 'nothing marked: the same array, no copy');
  p.mark('b');
  t.same(
    p.skipDraining(endpoints, (e) => e),
    ['c', 'd'],
  );
  now = 1000;
  p.mark('c');
  p.mark('d');
  t.same(
    p.skipDraining(endpoints, (e) => e),
    ['b'],
    'every endpoint draining: the one that announced first (in a rolling restart, the one back by now), never none',
  );
  now = 2000;
  p.mark('b'); // b announces again: c and d are now the oldest marks
  t.same(
    p.skipDraining(endpoints, (e) => e),
    ['c', 'd'],
  );
});

t.test('the map is capped: past max the oldest mark goes', async (t) => {
  let now = 0;
  const p = new DrainingPeers({ max: 3, ttlMs: 1_000_000, clock: clockWithNow(() => now) });
  for (let i = 0; i < 1000; i++) {
    now = i;
    p.mark(`10.0.${i >> 8}.${i & 255}:4141`);
  }
  t.equal(p.size, 3, 'bounded whatever marks arrive');
  t.equal(p.draining('10.0.3.231:4141'), true, 'the newest is kept');
  t.equal(p.draining('10.0.0.0:4141'), false, 'the oldest went');
});

t.test('hasDrainingMark: present is a mark, absent is not', async (t) => {
  t.equal(hasDrainingMark({ 'l5d-hostmesh-draining': '1' }), true);
  t.equal(hasDrainingMark({ 'content-type': 'text/plain' }), false);
});

t.test('drainAnnounceMs and routers[].drainingPeers load; mistakes are errors', async (t) => {
  const yaml = (top: string, router: string) => `${top}routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - port: 4140\n${router}`;
  const { config, warnings } = parseConfig(yaml('drainAnnounceMs: 5000\n', '  drainingPeers: {ttlMs: 60000, max: 500}\n'), 'l5d.yaml');
  t.equal(config.drainAnnounceMs, 5000);
  t.same(config.routers[0]?.drainingPeers, { ttlMs: 60000, max: 500 });
  t.same(warnings, []);
  const defaults = parseConfig(yaml('', ''), 'l5d.yaml').config;
  t.equal(defaults.drainAnnounceMs, undefined, 'unset: the default (2 s) applies at close');
  t.equal(defaults.routers[0]?.drainingPeers, undefined);
  for (const [top, router, why] of [
    ['drainAnnounceMs: -1\n', '', /drainAnnounceMs/],
    ['drainAnnounceMs: 600000\n', '', /drainAnnounceMs/],
    ['', '  drainingPeers: {ttlMs: 10}\n', /ttlMs/],
    ['', '  drainingPeers: {max: 0}\n', /max/],
    ['', '  drainingPeers: {ttl: 1000}\n', /ttl/],
  ] as const) {
    let err: unknown;
    try {
      parseConfig(yaml(top, router), 'l5d.yaml');
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, `${top}${router}`);
    t.match((err as Error).message, why);
  }
});
