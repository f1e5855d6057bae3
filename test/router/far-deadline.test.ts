// An l5d-ctx-deadline further away than Node's timers reach (2^31 - 1 ms, 24.8 days), and
// Finagle's Time.Top (Long.MaxValue nanoseconds), mean no deadline: the request is served, nothing
// is sent on, and no TimeoutOverflowWarning reaches stderr. Near deadlines work as before.

import http from 'node:http';
import t from 'tap';
import fc from 'fast-check';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { effectiveDeadline, MAX_TIMER_MS, timerMs } from '../../src/router/deadline.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { request } from '../helpers/http.js';
import { listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { testRouter } from '../helpers/router-config.js';

const HOST = '127.0.0.1';
const TIME_TOP = '9223372036854775807';
const ns = (ms: number): string => `${BigInt(Math.trunc(ms)) * 1_000_000n}`;
const DAY = 86_400_000;

t.test('effectiveDeadline: past the timer range is no deadline; within it, as before', async (t) => {
  const now = 1_700_000_000_000;
  t.equal(effectiveDeadline(now, `${ns(now)} ${TIME_TOP}`, undefined), undefined, 'Time.Top: no deadline');
  t.equal(effectiveDeadline(now, `${ns(now)} ${ns(now + 25 * DAY)}`, undefined), undefined, '25 days: no deadline');
  t.match(effectiveDeadline(now, `${ns(now)} ${TIME_TOP}`, 500), { at: now + 500, source: 'total' }, 'the router total still applies');
  t.match(effectiveDeadline(now, `${ns(now)} ${ns(now + MAX_TIMER_MS)}`, undefined), { at: now + MAX_TIMER_MS, source: 'header' }, 'the farthest honoured');
  t.match(effectiveDeadline(now, `${ns(now)} ${ns(now + 1000)}, ${ns(now)} ${TIME_TOP}`, undefined), { at: now + 1000 }, 'combined: the earliest');
  fc.assert(
    fc.property(fc.double(), (ms) => {
      const out = timerMs(ms);
      return out >= 0 && out <= MAX_TIMER_MS && !Number.isNaN(out);
    }),
  );
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (deadlineNs) => {
      const d = effectiveDeadline(now, `${ns(now)} ${deadlineNs}`, undefined);
      return d === undefined || d.at - now <= MAX_TIMER_MS;
    }),
  );
});

t.test('a real router: Time.Top and a 30-day deadline are served, no warning, nothing sent on', async (t) => {
  const seen: (string | undefined)[] = [];
  const backend = await listen(
    http.createServer((req, res) => {
      seen.push(req.headers['l5d-ctx-deadline'] as string | undefined);
      req.resume();
      res.end('ok');
    }),
    HOST,
  );
  t.teardown(() => new Promise((r) => backend.close(r)));
  const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers: [testRouter('out', HOST, port, `/svc => /$/inet/${HOST}/${(backend.address() as { port: number }).port};`)],
    shutdownGraceMs: 0,
    baseDir: process.cwd(),
  };
  const hm: Hostmesh = await startHostmesh(config, { logger: silentLogger() });
  t.teardown(() => hm.close(0));
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));

  for (const value of [`${ns(Date.now())} ${TIME_TOP}`, `${ns(Date.now())} ${ns(Date.now() + 30 * DAY)}`]) {
    const r = await request({ host: HOST, port, path: '/', headers: { host: 'web', 'l5d-ctx-deadline': value } });
    t.equal(r.status, 200, `served: ${value}`);
    t.equal(seen.at(-1), undefined, 'no deadline sent on');
  }
  const near = await request({ host: HOST, port, path: '/', headers: { host: 'web', 'l5d-ctx-deadline': `${ns(Date.now())} ${ns(Date.now() + 60_000)}` } });
  t.equal(near.status, 200);
  t.type(seen.at(-1), 'string', 'a near deadline is still sent on');
  const past = await request({
    host: HOST,
    port,
    path: '/',
    headers: { host: 'web', 'l5d-ctx-deadline': `${ns(Date.now() - 2000)} ${ns(Date.now() - 1000)}` },
  });
  t.equal(past.status, 503, 'a past deadline is still a 503');
  await new Promise((r) => setImmediate(r));
  t.same(warnings, [], 'no TimeoutOverflowWarning (nor any other) reached the process');
});
