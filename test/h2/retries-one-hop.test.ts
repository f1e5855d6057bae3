// One-hop retries on h2 routers (issue 25: the attempt loop is now shared by HTTP/1, HTTP/2 and
// Upgrade): a gRPC app that answers UNAVAILABLE (retryable for io.l5d.h2.grpc.default) is called
// 1 + the outgoing router's maxRetriesPerRequest times over two routers, never (1 + m) x (1 + 10)
// as when the incoming router retried too.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { greeterClient, greeterDefinition, unary, type GreeterClient } from '../helpers/grpc-greeter.js';
import { B, startH2Mesh, type H2Mesh } from '../helpers/h2-mesh.js';

const MAX_RETRIES = 2;
const REFUSAL = 'the app is unavailable';
let mesh: H2Mesh;
let server: grpc.Server;
let client: GreeterClient;
let calls = 0;

t.before(async () => {
  mesh = await startH2Mesh({ service: { retries: { maxRetriesPerRequest: MAX_RETRIES, backoff: { kind: 'constant', ms: 0 } } } });
  server = new grpc.Server();
  const refuse = (_call: unknown, cb: grpc.sendUnaryData<unknown>): void => {
    calls++;
    cb({ code: grpc.status.UNAVAILABLE, details: REFUSAL });
  };
  server.addService(greeterDefinition().service, {
    SayHello: refuse,
    Secret: refuse,
    Slow: refuse,
    Lots: () => undefined,
    Collect: () => undefined,
    Chat: () => undefined,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${B}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  await mesh.register('helloworld.Greeter', B, port);
  client = greeterClient(mesh.target);
  // Until the namer has the name, the router answers UNAVAILABLE itself: wait for the app's answer.
  const until = Date.now() + 10_000;
  for (;;) {
    const err = await unary(client, 'SayHello', { name: 'probe' }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    if (err?.details === REFUSAL) break;
    if (Date.now() > until) throw new Error(`the app never answered: ${err?.details}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

t.teardown(async () => {
  client?.close();
  server?.forceShutdown();
  await mesh?.close();
});

t.test('an UNAVAILABLE answer is retried by the outgoing router only: 1 + maxRetriesPerRequest calls reach the app', async (t) => {
  for (let i = 0; i < 3; i++) {
    const before = calls;
    const err = await unary(client, 'SayHello', { name: `call ${i}` }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    t.equal(err?.code, grpc.status.UNAVAILABLE, 'the caller gets the last answer');
    t.equal(err?.details, REFUSAL, "the app's own message");
    t.equal(calls - before, 1 + MAX_RETRIES, `call ${i}: the app was called ${calls - before} times`);
  }
});
