// The bookkeeping behind the listener caps, without sockets: which handshake the pending cap
// closes (the largest source's oldest), and which address a per-source cap counts under.

import t from 'tap';
import type { Socket } from 'node:net';
import { PendingHandshakes } from '../../src/server/pending-handshakes.js';
import { sourceKey } from '../../src/server/connections.js';

const sock = (name: string): Socket => ({ name }) as unknown as Socket;

t.test('the largest source loses its oldest handshake first', async (t) => {
  const p = new PendingHandshakes();
  const peer = sock('peer');
  p.add('10.0.0.9', 'a', peer);
  const flood = Array.from({ length: 5 }, (_, i) => sock(`flood${i}`));
  flood.forEach((s, i) => p.add('10.0.0.1', `f${i}`, s));
  t.equal(p.size, 6);
  t.equal(p.takeFromLargest(), flood[0]);
  t.equal(p.takeFromLargest(), flood[1]);
  t.equal(p.size, 4);
  // Down to one each: either may go, but never a source with fewer than another.
  p.remove('10.0.0.1', 'f2');
  p.remove('10.0.0.1', 'f3');
  t.equal(p.size, 2);
  const next = p.takeFromLargest();
  t.ok(next === peer || next === flood[4]);
  t.equal(p.size, 1);
  p.takeFromLargest();
  t.equal(p.size, 0);
  t.equal(p.takeFromLargest(), undefined);
});

t.test('remove checks the socket, so a reused remote end is not forgotten by the old one', async (t) => {
  const p = new PendingHandshakes();
  const old = sock('old');
  const reused = sock('reused');
  p.add('s', 'x', old);
  p.remove('s', 'x', old);
  p.add('s', 'x', reused);
  p.remove('s', 'x', old); // the old socket's late close
  t.ok(p.has('s', 'x', reused));
  t.equal(p.size, 1);
});

t.test('a source is an IPv4 address, or an IPv6 /64', async (t) => {
  t.equal(sourceKey('10.1.2.3'), '10.1.2.3');
  t.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(sourceKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
  t.equal(sourceKey('2001:db8:0:1:aaaa:bbbb:cccc:dddd'), '2001:db8:0:1::/64');
  t.equal(sourceKey('2001:0db8::1'), '2001:db8:0:0::/64');
  t.equal(sourceKey('::1'), '0:0:0:0::/64');
  t.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(sourceKey(undefined), '-');
});
