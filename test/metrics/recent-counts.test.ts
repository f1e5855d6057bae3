// The last-minute counts behind the dashboard's retry rate, on an injected clock: what falls in the
// minute is summed, what is older drops out, and a bucket reused a minute later starts from zero.

import t from 'tap';
import { RecentCounts, RECENT_WINDOW_MS } from '../../src/metrics/recent-counts.js';

t.test('counts within the last minute, none older', async (t) => {
  let now = 1_000_000;
  const c = new RecentCounts(2, () => now);
  c.add(0);
  c.add(0);
  c.add(1);
  t.same(c.sums(), [2, 1]);
  now += 30_000;
  c.add(0);
  t.same(c.sums(), [3, 1], 'half a minute later both intervals count');
  now += 31_000;
  t.same(c.sums(), [1, 0], 'a minute after the first, only the later one is left');
  now += RECENT_WINDOW_MS;
  t.same(c.sums(), [0, 0]);
  c.add(1);
  t.same(c.sums(), [0, 1], 'a reused bucket starts again from zero');
});
