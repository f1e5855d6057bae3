// `hostmesh demo` as a user runs it (`npm start`): a child process that prints the ready line and
// curl lines, routes hello -> world across two routers over mTLS, honours an l5d-dtab override,
// and stops cleanly on Ctrl-C (SIGINT).

import t from 'tap';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { protoField1, protoString1 } from '../../src/demo/apps.js';
import { request } from '../helpers/http.js';
import { spawnCli, waitForOutput } from '../helpers/cli.js';

// Offset from the default ports so the test runs beside a developer's own `npm start`.
const OFFSET = 20_000;
const OUT = 4140 + OFFSET;
const ADMIN = 9990 + OFFSET;
const H2_OUT = 4240 + OFFSET;

/** helloworld.Greeter/SayHello with @grpc/grpc-js through `target` (messages: one string field, encoded by hand). */
function sayHello(target: string, name: string): Promise<string> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      '/helloworld.Greeter/SayHello',
      (s: string) => protoString1(s),
      (b: Buffer) => protoField1(b),
      name,
      { deadline: Date.now() + 10_000 },
      (err, reply) => (err ? reject(err) : resolve(reply as string)),
    );
  }).finally(() => client.close());
}

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

  // gRPC: the greeter on node-b, called through node-a's h2 router (h2c in, h2 over mTLS between routers).
  const greeting = await sayHello(`127.0.0.2:${H2_OUT}`, 'tap');
  t.match(greeting, /^Hello tap, from the greeter on node-b \(called by spiffe:\/\/hostmesh\/node\/node-a\)$/, 'the greeter answers through the h2 routers');
  // The printed gRPC line works as pasted.
  const line = out.split('\n').find((l) => l.trim().startsWith('node -e'));
  t.ok(line, 'prints a gRPC call line');
  const pasted = await promisify(execFile)('sh', ['-c', (line ?? '').trim()], { timeout: 20_000 });
  t.match(pasted.stdout, /^Hello mesh, from the greeter on node-b .*\ngrpc-status 0$/m, 'the printed gRPC line gets the greeting');

  const ping = await request({ host: '127.0.0.3', port: ADMIN, path: '/admin/ping' });
  t.equal(ping.body, 'pong');

  const stdoutRest = waitForOutput(child, 'hostmesh demo stopped', 30_000);
  child.kill('SIGINT');
  await stdoutRest;
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 0, 'exits 0 after Ctrl-C');
  await t.rejects(request({ host: '127.0.0.2', port: OUT, path: 'http://hello/' }), 'the ports are closed');
});
