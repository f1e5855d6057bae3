// A real gRPC greeter (@grpc/grpc-js) for the h2 tests: the helloworld.Greeter of
// test/fixtures/helloworld.proto, with a client maker, served on loopback port 0.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// Beside this file's source; compiled into dist/ (the bench), the repository's copy.
const HERE = join(import.meta.dirname, '..', 'fixtures', 'helloworld.proto');
const PROTO = existsSync(HERE) ? HERE : join(process.cwd(), 'test', 'fixtures', 'helloworld.proto');

export interface HelloRequest {
  name?: string;
  count?: number;
  size?: number;
}
export interface HelloReply {
  message: string;
  payload: Buffer;
}

type UnaryMethod = (
  req: HelloRequest,
  md: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, reply: HelloReply) => void,
) => grpc.ClientUnaryCall;

/** The client class grpc-js builds from the proto at run time, typed by hand. */
export interface GreeterClient extends grpc.Client {
  SayHello: UnaryMethod;
  Secret: UnaryMethod;
  Slow: UnaryMethod;
  Lots(req: HelloRequest, md?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<HelloReply>;
  Collect(
    md: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply: HelloReply) => void,
  ): grpc.ClientWritableStream<HelloRequest>;
  Chat(md?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<HelloRequest, HelloReply>;
}
type Ctor = (new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => GreeterClient) & { service: grpc.ServiceDefinition };

export function greeterDefinition(): { service: grpc.ServiceDefinition; Client: Ctor } {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { helloworld: { Greeter: Ctor } };
  return { service: pkg.helloworld.Greeter.service, Client: pkg.helloworld.Greeter };
}

export interface Greeter {
  readonly port: number;
  readonly server: grpc.Server;
  /** Calls seen, by method name. */
  readonly calls: Map<string, number>;
  /** Slow calls the client cancelled (the app saw its stream cancelled). */
  cancelled: number;
  /** The metadata of the last call. */
  lastMetadata: grpc.Metadata | undefined;
  /**
   * The time the last Slow call had left when its handler ran: its deadline (grpc-js sets it from
   * grpc-timeout as the call arrives) less the app's clock then; Infinity without a grpc-timeout.
   */
  lastTimeLeft: number;
  close(): Promise<void>;
}

export async function startGreeter(host: string, label: string): Promise<Greeter> {
  const { service } = greeterDefinition();
  const server = new grpc.Server();
  const g: Greeter = {
    port: 0,
    server,
    calls: new Map(),
    cancelled: 0,
    lastMetadata: undefined,
    lastTimeLeft: Number.POSITIVE_INFINITY,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
  const seen = (name: string, md: grpc.Metadata): void => {
    g.calls.set(name, (g.calls.get(name) ?? 0) + 1);
    g.lastMetadata = md;
  };
  const id = (md: grpc.Metadata): string => String(md.get('l5d-client-id')[0] ?? '-');
  server.addService(service, {
    SayHello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      seen('SayHello', call.metadata);
      cb(null, { message: `hello ${call.request.name} from ${label}; caller ${id(call.metadata)}`, payload: Buffer.alloc(0) });
    },
    Secret: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      seen('Secret', call.metadata);
      cb(null, { message: 'the secret', payload: Buffer.alloc(0) });
    },
    Slow: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      seen('Slow', call.metadata);
      g.lastTimeLeft = Number(call.getDeadline()) - Date.now();
      const timer = setTimeout(() => cb(null, { message: 'late', payload: Buffer.alloc(0) }), call.request.count ?? 1000);
      call.on('cancelled', () => {
        g.cancelled++;
        clearTimeout(timer);
      });
    },
    Lots: (call: grpc.ServerWritableStream<HelloRequest, HelloReply>) => {
      seen('Lots', call.metadata);
      const total = call.request.count ?? 1;
      const payload = Buffer.alloc(call.request.size ?? 0, 0x61);
      let i = 0;
      let stopped = false;
      call.on('cancelled', () => {
        stopped = true;
        g.cancelled++;
      });
      // Back-pressure: write while the stream takes it, resume on drain.
      const pump = (): void => {
        while (!stopped && i < total) {
          const ok = call.write({ message: `${label} ${i++}`, payload });
          if (!ok) {
            call.once('drain', pump);
            return;
          }
        }
        if (!stopped) call.end();
      };
      pump();
    },
    Collect: (call: grpc.ServerReadableStream<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      seen('Collect', call.metadata);
      const names: string[] = [];
      call.on('data', (r: HelloRequest) => names.push(r.name ?? ''));
      call.on('end', () => cb(null, { message: names.join(','), payload: Buffer.alloc(0) }));
    },
    Chat: (call: grpc.ServerDuplexStream<HelloRequest, HelloReply>) => {
      seen('Chat', call.metadata);
      call.on('data', (r: HelloRequest) => call.write({ message: `echo ${r.name}`, payload: Buffer.alloc(0) }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return Object.assign(g, { port });
}

/** A greeter client dialing `target` (host:port) in plaintext h2c, as an app dials its node's router. */
export function greeterClient(target: string): GreeterClient {
  const { Client } = greeterDefinition();
  return new Client(target, grpc.credentials.createInsecure());
}

/** A unary call as a promise; rejects with the grpc-js ServiceError. */
export function unary(
  client: GreeterClient,
  method: 'SayHello' | 'Secret' | 'Slow',
  req: HelloRequest,
  md = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<HelloReply> {
  return new Promise((resolve, reject) => {
    client[method](req, md, options, (err: grpc.ServiceError | null, reply: HelloReply) => (err ? reject(err) : resolve(reply)));
  });
}

/** A Greeter on `host` whose unary calls all fail with `code` and `details`, counting them, and a client through `target`. */
export interface RefusingGreeter {
  readonly server: grpc.Server;
  readonly client: GreeterClient;
  calls(): number;
  close(): void;
}

/**
 * Starts a refusing Greeter, registers it (`register(name, host, port)`, e.g. H2Mesh.register), and
 * waits until its own answer comes back through `target` (until the namer has the name, the router
 * answers UNAVAILABLE itself).
 */
export async function startRefusingGreeter(
  host: string,
  target: string,
  register: (service: string, host: string, port: number) => Promise<void>,
  refusal: { code: grpc.status; details: string },
): Promise<RefusingGreeter> {
  let calls = 0;
  const server = new grpc.Server();
  const refuse = (_call: unknown, cb: grpc.sendUnaryData<unknown>): void => {
    calls++;
    cb({ code: refusal.code, details: refusal.details });
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
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  await register('helloworld.Greeter', host, port);
  const client = greeterClient(target);
  const until = Date.now() + 10_000;
  for (;;) {
    const err = await unary(client, 'SayHello', { name: 'probe' }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    if (err?.details === refusal.details) break;
    if (Date.now() > until) throw new Error(`the app never answered: ${err?.details}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    server,
    client,
    calls: () => calls,
    close: () => {
      client.close();
      server.forceShutdown();
    },
  };
}
