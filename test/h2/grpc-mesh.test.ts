// gRPC through two h2 routers over mTLS, with real grpc-js clients and servers: unary and every
// streaming kind, the caller's identity in metadata, policy per method, deadlines and cancellation
// across hops, router errors as gRPC statuses, and l5d-dtab as metadata rerouting a call.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { greeterClient, startGreeter, unary, type Greeter, type GreeterClient, type HelloReply } from '../helpers/grpc-greeter.js';
import { answerField, rawCall } from '../helpers/grpc-raw.js';
import { B, startH2Mesh, type H2Mesh } from '../helpers/h2-mesh.js';

let mesh: H2Mesh;
let v1: Greeter;
let v2: Greeter;
let client: GreeterClient;

/** Waits until the fs namer has seen `name` (its watcher picks files up within its poll). */
async function routable(c: GreeterClient, md = new grpc.Metadata()): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await unary(c, 'SayHello', { name: 'probe' }, md);
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

t.before(async () => {
  mesh = await startH2Mesh();
  v1 = await startGreeter(B, 'v1');
  v2 = await startGreeter(B, 'v2');
  await mesh.register('helloworld.Greeter', B, v1.port);
  await mesh.register('greeter-v2', B, v2.port);
  client = greeterClient(mesh.target);
  await routable(client);
});

t.teardown(async () => {
  client?.close();
  await v1?.close();
  await v2?.close();
  await mesh?.close();
});

t.test('a unary call goes through both routers; the app reads the calling node in l5d-client-id', async (t) => {
  const reply = await unary(client, 'SayHello', { name: 'ana' });
  t.equal(reply.message, 'hello ana from v1; caller spiffe://hostmesh/node/node-a');
  const md = v1.lastMetadata as grpc.Metadata;
  t.equal(md.get('l5d-dst-service')[0], '/svc/helloworld.Greeter', 'the logical name from :path, segments 1');
  t.ok(String(md.get('via')[0]).includes('hostmesh'), 'Via counts the hops');
});

t.test('metadata named __proto__ or constructor: the call is answered; __proto__ is not carried (as on HTTP/1), constructor is', async (t) => {
  const md = new grpc.Metadata();
  md.add('__proto__', 'a');
  md.add('__proto__', 'b'); // two fields; Node's HTTP/2 server joins them into one value
  md.add('constructor', 'c');
  md.add('x-after', 'd');
  const reply = await unary(client, 'SayHello', { name: 'proto' }, md);
  t.match(reply.message, /^hello proto from v1/);
  const seen = v1.lastMetadata as grpc.Metadata;
  t.same(seen.get('__proto__'), [], 'not carried');
  t.same(seen.get('constructor'), ['c']);
  t.same(seen.get('x-after'), ['d'], 'fields after it still arrive');
  t.equal(seen.get('l5d-dst-service')[0], '/svc/helloworld.Greeter', "the router's own fields are intact");
});

t.test('server streaming: every message arrives, in order, then OK', async (t) => {
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.Lots({ count: 200, size: 100 });
    call.on('data', (r: HelloReply) => got.push(r.message));
    call.on('error', reject);
    call.on('status', (s: grpc.StatusObject) => (s.code === grpc.status.OK ? resolve() : reject(new Error(s.details))));
  });
  t.equal(got.length, 200);
  t.equal(got[199], 'v1 199');
});

t.test('client streaming and bidi streaming', async (t) => {
  const collected = await new Promise<HelloReply>((resolve, reject) => {
    const call = client.Collect(new grpc.Metadata(), {}, (err, reply) => (err ? reject(err) : resolve(reply)));
    for (const n of ['a', 'b', 'c']) call.write({ name: n });
    call.end();
  });
  t.equal(collected.message, 'a,b,c');
  const echoes = await new Promise<string[]>((resolve, reject) => {
    const call = client.Chat();
    const out: string[] = [];
    // Each message waits for its echo: a bidi stream really goes both ways at once.
    call.on('data', (r: HelloReply) => {
      out.push(r.message);
      if (out.length < 5) call.write({ name: String(out.length) });
      else call.end();
    });
    call.on('error', reject);
    call.on('end', () => resolve(out));
    call.write({ name: '0' });
  });
  t.same(echoes, ['echo 0', 'echo 1', 'echo 2', 'echo 3', 'echo 4']);
});

t.test('a method the policy denies is PERMISSION_DENIED, and the app never sees it', async (t) => {
  const before = v1.calls.get('Secret') ?? 0;
  const err = (await unary(client, 'Secret', { name: 'x' }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
  t.equal(err.code, grpc.status.PERMISSION_DENIED);
  t.match(err.details, /authorization denied/);
  t.ok(err.metadata.get('l5d-err')[0], 'l5d-err rides along');
  t.equal(v1.calls.get('Secret') ?? 0, before);
});

t.test('a :path with a fragment is refused, as on HTTP/1: the app never sees it', async (t) => {
  // Policy paths end at '#'; an app reading it as a path character would see another path.
  const before = v1.calls.get('SayHello') ?? 0;
  const r = await rawCall(mesh.target, '/helloworld.Greeter/SayHello#/../Secret', Buffer.alloc(0));
  t.not(answerField(r, 'grpc-status'), '0');
  t.match(decodeURIComponent(answerField(r, 'l5d-err') ?? ''), /fragment/);
  t.equal(v1.calls.get('SayHello') ?? 0, before);
});

t.test('a service that does not bind is UNAVAILABLE with l5d-err', async (t) => {
  const c = new grpc.Client(mesh.target, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    c.makeUnaryRequest(
      '/nowhere.Service/Call',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (e) => resolve(e as grpc.ServiceError),
    );
  });
  c.close();
  t.equal(err.code, grpc.status.UNAVAILABLE);
  t.match(decodeURIComponent(String(err.metadata.get('l5d-err')[0])), /nowhere\.Service/);
});

t.test('l5d-dtab as metadata reroutes the call', async (t) => {
  const md = new grpc.Metadata();
  md.set('l5d-dtab', '/svc/helloworld.Greeter => /#/io.l5d.fs/greeter-v2');
  const reply = await unary(client, 'SayHello', { name: 'bo' }, md);
  t.match(reply.message, /from v2/);
});

t.test('a deadline reaches the app as grpc-timeout and ends the call with DEADLINE_EXCEEDED', async (t) => {
  const before = v1.cancelled;
  const started = Date.now();
  const err = (await unary(client, 'Slow', { count: 5000 }, new grpc.Metadata(), { deadline: Date.now() + 300 }).catch(
    (e: grpc.ServiceError) => e,
  )) as grpc.ServiceError;
  t.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
  t.ok(Date.now() - started < 4000, 'well before the app would have answered');
  // grpc-timeout is relative: each hop counts it from when the field arrives, so the time a frame
  // waits in transit (on a busy machine, tens of ms) is not subtracted, and the app's deadline on
  // the wall clock could pass the caller's by that much. What no transit can excuse is more time
  // than the caller set: at most 300 ms, counted from the app's arrival (routers subtract theirs).
  t.ok(v1.lastTimeLeft <= 300, `the app got the time left as grpc-timeout, never more than the caller set (${v1.lastTimeLeft} ms)`);
  // The app's stream is cancelled (its own deadline, or the routers' reset): it stops working.
  const until = Date.now() + 5000;
  while (v1.cancelled === before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.ok(v1.cancelled > before, 'the app saw its call cancelled');
});

t.test('a cancelled call cancels the app stream two hops away', async (t) => {
  const before = v1.cancelled;
  const reached = v1.calls.get('Slow') ?? 0;
  const call = client.Slow({ count: 10_000 }, new grpc.Metadata(), {}, () => undefined);
  // Cancel once the call has reached the app (it counts calls as they arrive).
  const until = Date.now() + 5000;
  while ((v1.calls.get('Slow') ?? 0) === reached && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.ok((v1.calls.get('Slow') ?? 0) > reached, 'the call reached the app');
  call.cancel();
  while (v1.cancelled === before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.ok(v1.cancelled > before, 'RST_STREAM travelled to the app');
});

t.test('many concurrent calls share the sessions', async (t) => {
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => unary(client, 'SayHello', { name: `n${i}` })));
  t.equal(replies.length, 200);
  t.equal(replies[150]?.message.startsWith('hello n150 from v1'), true);
});
