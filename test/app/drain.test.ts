// The drain of the composition root (src/app/drain.ts) waits its announce on the injected Clock:
// a test drives it to the millisecond, and nothing in the drain sleeps on the real clock.

import net from 'node:net';
import t from 'tap';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { ManualClock } from '../helpers/manual-clock.js';

const ANNOUNCE_MS = 60_000;

const CONFIG = [
  'admin: {ip: 127.0.0.1, port: 0}',
  `drainAnnounceMs: ${ANNOUNCE_MS}`,
  'shutdownGraceMs: 0',
  'routers:',
  '- protocol: http',
  '  label: incoming',
  "  dtab: '/svc => /$/inet/127.0.0.1/1;'",
  '  servers:',
  '  - {ip: 127.0.0.1, port: 0, direction: inbound}',
].join('\n');

/** Whether a TCP connection to the port is accepted now. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

t.test('the announce lasts drainAnnounceMs on the injected clock, then the listeners close', async (t) => {
  const clock = new ManualClock();
  const { config } = parseConfig(CONFIG, 'drain.yaml');
  const mesh = await startHostmesh(config, { logger: silentLogger(), clock });
  const port = mesh.routers[0]?.listeners[0]?.address.port as number;
  t.ok(await accepts(port), 'serving before the drain');

  // The mesh runs every timer on this clock (sweeps too): the drain adds exactly one, its announce.
  await clock.advance(0);
  const before = clock.pending;
  let closed = false;
  const closing = mesh.close().then(() => {
    closed = true;
  });
  await clock.advance(0);
  t.equal(mesh.admin.ready, false, 'not ready as soon as the drain starts');
  t.equal(clock.pending, before + 1, 'the announce waits on the injected clock');
  await clock.advance(ANNOUNCE_MS - 1);
  t.ok(await accepts(port), 'the inbound listener serves on while it announces');
  t.equal(closed, false, 'still announcing 1 ms before drainAnnounceMs');
  await clock.advance(1);
  await closing;
  t.equal(closed, true, 'closed once drainAnnounceMs has passed on the clock');
  t.equal(await accepts(port), false, 'the listener is closed');
});
