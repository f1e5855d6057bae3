// gRPC stacks other than grpc-js and HTTP/2 clients other than Node's, through both h2 routers:
// gRPC C-core (Python grpcio) as client and as server (test/fixtures/grpc_interop.py, generic
// handlers, bytes in and out), C-core against grpc-js both ways, and nghttp2's h2load. What is
// asserted is what a user sees: messages intact, statuses, metadata (binary too, and in trailers),
// router errors as statuses with l5d-err, cancellation reaching the app, a pinging channel staying
// usable, nothing left in flight, the routers serving afterwards.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { startGreeter, type Greeter } from '../helpers/grpc-greeter.js';
import { A, B, nodesMayCall, startH2Mesh, type H2Mesh } from '../helpers/h2-mesh.js';
import { answerField, grpcFrame, rawCall } from '../helpers/grpc-raw.js';
import { request } from '../helpers/http.js';
import { repoPath } from '../helpers/paths.js';
import { fileNeeds, findTool, needs } from '../helpers/requires.js';

const FIXTURE = repoPath('test', 'fixtures', 'grpc_interop.py');

/** interop.Echo (the Python app) and helloworld.Greeter (grpc-js) are allowed; interop.Denied, the same app, is not. */
const POLICY = nodesMayCall(['/interop.Echo', '/helloworld.Greeter']);

/** The routers' stream limit per connection: the C-core client runs more calls than this at once. */
const MAX_STREAMS = 64;

/** A ceiling against a hang, not a deadline: every wait ends as soon as its condition holds. */
const SETTLE_MS = 30_000;

const CHECKS = ['unary', 'stream_many', 'stream_large', 'client_stream', 'bidi', 'error', 'gzip', 'unknown', 'concurrent', 'deadline', 'cancel', 'greeter'];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end; one still running at the ceiling is killed (and its run fails the test). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const ceiling = setTimeout(() => child.kill('SIGKILL'), SETTLE_MS);
    child.once('close', (code) => {
      clearTimeout(ceiling);
      resolve({ code, stdout, stderr });
    });
  });
}

if (fileNeeds(t, 'python3-grpcio', 'gRPC C-core (Python grpcio) through the h2 routers')) {
  const python = findTool('python3-grpcio') as string;
  let mesh: H2Mesh;
  let greeter: Greeter;
  let server: ReturnType<typeof spawn> | undefined;

  t.before(async () => {
    mesh = await startH2Mesh({ policy: POLICY, maxConcurrentStreams: MAX_STREAMS });
    server = spawn(python, [FIXTURE, 'serve', B], { stdio: ['pipe', 'pipe', 'inherit'] });
    const first = await new Promise<string>((resolve) => createInterface({ input: server?.stdout as NodeJS.ReadableStream }).once('line', resolve));
    const port = Number(/^port (\d+)$/.exec(first)?.[1]);
    await mesh.register('interop.Echo', B, port);
    await mesh.register('interop.Denied', B, port);
    greeter = await startGreeter(B, 'js');
    await mesh.register('helloworld.Greeter', B, greeter.port);
    // Routable once the fs namer has seen both names.
    const until = Date.now() + 10_000;
    for (;;) {
      const echo = await rawCall(mesh.target, '/interop.Echo/Unary', Buffer.from('probe'));
      const hello = await rawCall(mesh.target, '/helloworld.Greeter/SayHello', Buffer.alloc(0));
      if (answerField(echo, 'grpc-status') === '0' && answerField(hello, 'grpc-status') === '0') break;
      if (Date.now() > until) throw new Error(`not routable: ${answerField(echo, 'grpc-status')} ${answerField(hello, 'grpc-status')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  t.teardown(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server?.once('exit', r));
      server.stdin?.end();
      await exited;
    }
    await greeter?.close();
    await mesh?.close();
  });

  t.test('a C-core client through both routers to a C-core app, and to a grpc-js app', async (t) => {
    // C-core's keepalive trace says when a ping was answered (the pinging channel's proof it pinged).
    const env = { ...process.env, GRPC_VERBOSITY: 'debug', GRPC_TRACE: 'http_keepalive', grpc_proxy: '', http_proxy: '', https_proxy: '' };
    const r = await run(python, [FIXTURE, 'client', mesh.target, ...CHECKS], env);
    t.equal(r.code, 0, 'the client ran every check');
    const seen = new Map<string, Record<string, unknown>>();
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('{')) {
        const o = JSON.parse(line) as Record<string, unknown>;
        seen.set(o['check'] as string, o);
      }
    }
    const check = (name: string): Record<string, unknown> => seen.get(name) ?? {};
    t.match(
      check('unary'),
      { code: 'OK', reply_intact: true, echoed_text: 'hello', echoed_bin_intact: true, trailer: 'after', trailer_bin_intact: true },
      'unary: reply, metadata (-bin too) both ways, trailers',
    );
    t.match(check('stream_many'), { code: 'OK', received: 2000, damaged: 0 }, 'server stream: 2,000 small messages in order');
    t.match(check('stream_large'), { code: 'OK', received: 6, damaged: 0 }, 'server stream: 4 MiB messages, far over frame size and window');
    t.match(check('client_stream'), { count: 101, sent: 101, hash_matches: true }, 'client stream: every byte reached the app');
    t.match(check('bidi'), { sent: 24, received: 24, intact: true }, 'bidi: every message echoed, sizes 1 B to 1 MiB');
    t.match(
      check('error'),
      { code: 'FAILED_PRECONDITION', details_intact: true, trailer: 'after', trailer_bin_intact: true },
      'an app error: status, non-ASCII message, trailers',
    );
    t.match(check('gzip'), { code: 'OK', reply_intact: true }, 'gzip-compressed messages both ways');
    const unknown = check('unknown') as Record<string, Record<string, unknown>>;
    t.match(
      unknown['unknown_service'],
      { code: 'UNAVAILABLE', l5d_err: /^no%20route%20to%20%2Fsvc%2Finterop.Nowhere/ },
      "no such service: the router's status, l5d-err in the trailers",
    );
    t.match(unknown['denied'], { code: 'PERMISSION_DENIED', l5d_err: /^authorization%20denied/ }, 'denied by policy');
    t.match(unknown['unknown_method'], { code: 'UNIMPLEMENTED' }, "the app's own status for a method it lacks");
    t.match(
      check('concurrent'),
      { calls: 300, intact: 300, failed: {} },
      `300 calls at once on one channel (the routers allow ${MAX_STREAMS} streams per connection)`,
    );
    t.match(check('deadline'), { code: 'DEADLINE_EXCEEDED', app_saw_end: true }, 'a deadline passing at the app: the client and the app both see the call end');
    t.match(check('cancel'), { code: 'CANCELLED', first_intact: true, app_saw_cancel: true }, 'a client cancelling a stream: the app sees it cancelled');
    t.match(check('greeter'), { message: 'hello c-core from js; caller spiffe://hostmesh/node/node-a' }, 'C-core client to a grpc-js server');
    t.match(check('keepalive'), { first: ['OK', 'OK', 'OK'], after: ['OK', 'OK', 'OK'] }, 'a channel pinging all along still serves calls');
    t.ok((r.stderr.match(/Finish keepalive ping/g) ?? []).length >= 1, 'its keepalive pings were answered');
    t.notMatch(r.stderr, /GOAWAY|too_many_pings|keepalive watchdog/i, 'no GOAWAY, no ping complaints');
  });

  t.test('a grpc-js client through both routers to the C-core app', async (t) => {
    const same = (b: Buffer): Buffer => b;
    const method = (name: string, responseStream: boolean) => ({
      path: `/interop.Echo/${name}`,
      requestStream: false,
      responseStream,
      requestSerialize: same,
      requestDeserialize: same,
      responseSerialize: same,
      responseDeserialize: same,
    });
    const Client = grpc.makeGenericClientConstructor({ Unary: method('Unary', false), ServerStream: method('ServerStream', true) }, 'Echo');
    const client = new Client(mesh.target, grpc.credentials.createInsecure());
    t.teardown(() => client.close());
    const md = new grpc.Metadata();
    md.add('x-data-bin', Buffer.from([0, 1, 0xfe, 0xff]));
    const echoed = await new Promise<{ reply: Buffer; bin: unknown }>((resolve, reject) => {
      let bin: unknown;
      const call = (
        client as unknown as { Unary: (r: Buffer, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Buffer) => void) => grpc.ClientUnaryCall }
      ).Unary(Buffer.from('from grpc-js'), md, (err, reply) => (err ? reject(err) : resolve({ reply, bin })));
      call.on('metadata', (m: grpc.Metadata) => (bin = m.get('x-data-bin')[0]));
    });
    t.equal(echoed.reply.toString(), 'from grpc-js');
    t.same(echoed.bin, Buffer.from([0, 1, 0xfe, 0xff]), 'binary metadata echoed intact');
    const sizes = await new Promise<number[]>((resolve, reject) => {
      const got: number[] = [];
      const call = (client as unknown as { ServerStream: (r: Buffer) => grpc.ClientReadableStream<Buffer> }).ServerStream(
        Buffer.from(JSON.stringify({ count: 4, size: 2_000_000 })),
      );
      call.on('data', (m: Buffer) => got.push(m.length));
      call.on('error', reject);
      call.on('status', (s: grpc.StatusObject) => (s.code === grpc.status.OK ? resolve(got) : reject(new Error(s.details))));
    });
    t.same(sizes, [2_000_000, 2_000_000, 2_000_000, 2_000_000], '2 MB messages, all of them');
  });

  t.test('a grpc-timeout passing with no deadline at the client: the client gets DEADLINE_EXCEEDED from the mesh or the app', async (t) => {
    const r = await rawCall(mesh.target, '/interop.Echo/Unary', Buffer.from('x'), { 'grpc-timeout': '300m', 'x-mode': 'sleep' });
    t.equal(Number(r.head[':status']), 200);
    t.equal(answerField(r, 'grpc-status'), '4', 'DEADLINE_EXCEEDED');
    const held = Buffer.from(JSON.stringify({ count: 1, size: 100, hold: true }));
    const s = await rawCall(mesh.target, '/interop.Echo/ServerStream', held, { 'grpc-timeout': '300m' });
    t.equal(s.trailers['grpc-status'], '4', 'a server stream open past it: DEADLINE_EXCEEDED in its trailers, not a reset');
  });

  /** h2load's summary of `n` gRPC-framed POSTs of `body` to `path`, `streams` at once on each of `connections`. */
  const h2load = async (path: string, body: Buffer, n: number, connections: number, streams: number): Promise<string> => {
    const file = join(mesh.dir, `h2load-${n}.bin`);
    await writeFile(file, body);
    const headers = ['-H', 'content-type: application/grpc', '-H', 'te: trailers'];
    const args = ['-n', String(n), '-c', String(connections), '-m', String(streams), '-d', file, ...headers, `http://${mesh.target}${path}`];
    return (await run(findTool('nghttp2') as string, args)).stdout;
  };

  t.test('h2load: many gRPC-framed calls over a few connections', needs(t, 'nghttp2', 'h2load through the h2 routers'), async (t) => {
    const out = await h2load('/interop.Echo/Unary', grpcFrame(Buffer.from('h2load')), 2000, 4, 32);
    t.match(out, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/, out.slice(-600));
  });

  t.test('h2load: uploads the app answers before reading (a method it lacks) all end', needs(t, 'nghttp2', 'h2load through the h2 routers'), async (t) => {
    // C-core answers UNIMPLEMENTED at once and resets the stream (NO_ERROR); the routers must pass
    // that on, or h2load, still uploading, waits on a window that never opens.
    const out = await h2load('/interop.Echo/Nope', Buffer.alloc(1 << 20, 7), 16, 1, 8);
    t.match(out, /requests: 16 total, 16 started, 16 done, 16 succeeded, 0 failed, 0 errored, 0 timeout/, out.slice(-600));
  });

  t.test('afterwards: nothing in flight at either router, and both still serve', async (t) => {
    const inFlight = async (ip: string, router: string): Promise<number> => {
      const m = await request({ host: ip, port: mesh.ports.admin, path: '/metrics' });
      const line = m.body.split('\n').find((l) => l.startsWith(`hostmesh_requests_in_flight{router="${router}"}`));
      return Number(line?.split(' ')[1] ?? Number.NaN);
    };
    const until = Date.now() + SETTLE_MS;
    let now: number[] = [];
    for (;;) {
      now = [await inFlight(A, 'h2-outgoing'), await inFlight(B, 'h2-incoming')];
      if ((now[0] === 0 && now[1] === 0) || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    t.same(now, [0, 0], 'requests in flight: outgoing, incoming');
    const m = await request({ host: A, port: mesh.ports.admin, path: '/metrics' });
    t.match(
      m.body,
      /hostmesh_grpc_responses_total\{router="h2-outgoing",service="\/svc\/interop.Echo",grpc_status="CANCELLED"\} [1-9]/,
      'cancelled calls counted CANCELLED',
    );
    t.notMatch(m.body, /grpc_status="UNKNOWN"/, 'none counted UNKNOWN (a stream the client cancelled is CANCELLED)');
    const again = await rawCall(mesh.target, '/interop.Echo/Unary', Buffer.from('again'));
    t.equal(answerField(again, 'grpc-status'), '0', 'a call after all of it is served');
  });
}
