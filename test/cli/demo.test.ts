// `hostmesh demo` as a user runs it (`npm start`): a child process that prints the ready line and
// curl lines, routes hello -> world across two routers over mTLS, honours an l5d-dtab override,
// and stops cleanly on Ctrl-C (SIGINT).

import t from 'tap';
import { once } from 'node:events';
import { request } from '../helpers/http.js';
import { spawnCli, waitForOutput } from '../helpers/cli.js';

// Offset from the default ports so the test runs beside a developer's own `npm start`.
const OFFSET = 20_000;
const OUT = 4140 + OFFSET;
const ADMIN = 9990 + OFFSET;

t.test('the demo starts, routes, and stops on SIGINT', async (t) => {
  const child = spawnCli(['demo', '--port-offset', String(OFFSET)]);
  let exited = false;
  child.on('exit', () => (exited = true));
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  const out = await waitForOutput(child, 'Ctrl-C stops the demo', 60_000);
  t.match(out, /^hostmesh demo ready$/m, 'prints the ready line');
  t.match(out, `curl -x http://127.0.0.2:${OUT} http://hello/`, 'prints a curl line for hello');

  const hello = await request({ host: '127.0.0.2', port: OUT, path: 'http://hello/' });
  t.equal(hello.status, 200);
  t.equal(hello.body.trim(), 'Hello from node-a, world says: world (node-b)');

  const v2 = await request({ host: '127.0.0.2', port: OUT, path: 'http://hello/', headers: { 'l5d-dtab': '/svc/world => /svc/world-v2' } });
  t.equal(v2.body.trim(), 'Hello from node-a, world says: world-v2 (node-b)', 'the override travels through hello to its call');

  const neg = await request({ host: '127.0.0.2', port: OUT, path: 'http://nothing-here/' });
  t.equal(neg.status, 502);
  t.ok(neg.headers['l5d-err'], '502 carries l5d-err');

  const ping = await request({ host: '127.0.0.3', port: ADMIN, path: '/admin/ping' });
  t.equal(ping.body, 'pong');

  const stdoutRest = waitForOutput(child, 'hostmesh demo stopped', 30_000);
  child.kill('SIGINT');
  await stdoutRest;
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 0, 'exits 0 after Ctrl-C');
  await t.rejects(request({ host: '127.0.0.2', port: OUT, path: 'http://hello/' }), 'the ports are closed');
});
