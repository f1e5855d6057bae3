// Bench: gRPC unary calls/s and CPU per call, in one run: the greeter called directly, through a
// plain Node http2 two-hop relay (h2c -> h2c -> app: the floor any HTTP/2 proxy pair pays), and
// through two hostmesh h2 routers (h2c -> mTLS h2 -> h2c, every stage). Closed loop, `CONCURRENCY`
// calls in flight from one grpc-js channel. CPU is the whole process's (client, app and relays or
// routers share it), so "extra CPU per call" against direct is what the hops cost.
// Run: npm run build, then node dist/test/bench/grpc.js  (BENCH_SECONDS, BENCH_CONCURRENCY)

import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { greeterClient, startGreeter, unary, type GreeterClient } from '../helpers/grpc-greeter.js';
import { B, startH2Mesh } from '../helpers/h2-mesh.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? '5');
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? '32');

/** A plain HTTP/2 relay: each stream piped to one session to `next`, trailers passed on. */
async function relay(host: string, next: string): Promise<{ port: number; close: () => void }> {
  const upstream = http2.connect(`http://${next}`);
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const h: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (k !== ':scheme' && k !== ':authority' && v !== undefined) h[k] = v;
    const up = upstream.request(h);
    stream.pipe(up);
    up.on('response', (rh) => {
      const end = (rh as { [k: string]: unknown })['grpc-status'] !== undefined && up.endAfterHeaders;
      const out: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(rh)) if (v !== undefined && (!k.startsWith(':') || k === ':status')) out[k] = v;
      if (end) {
        stream.respond(out, { endStream: true });
        return;
      }
      stream.respond(out, { waitForTrailers: true });
      let trailers: http2.OutgoingHttpHeaders = {};
      up.on('trailers', (t) => (trailers = t as http2.OutgoingHttpHeaders));
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      up.pipe(stream);
    });
    up.on('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.on('error', () => up.close(http2.constants.NGHTTP2_CANCEL));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      upstream.close();
      server.close();
    },
  };
}

async function measure(name: string, client: GreeterClient): Promise<{ name: string; callsPerSec: number; cpuUsPerCall: number }> {
  for (let i = 0; i < 200; i++) await unary(client, 'SayHello', { name: 'warm' });
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await unary(client, 'SayHello', { name: 'bench' });
        calls++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { name, callsPerSec: Math.round(calls / SECONDS), cpuUsPerCall: Math.round((cpu.user + cpu.system) / calls) };
}

const app = await startGreeter(B, 'bench');
const mesh = await startH2Mesh();
await mesh.register('helloworld.Greeter', B, app.port);
const hop2 = await relay('127.0.0.3', `${B}:${app.port}`);
const hop1 = await relay('127.0.0.2', `127.0.0.3:${hop2.port}`);
const direct = greeterClient(`${B}:${app.port}`);
const relayed = greeterClient(`127.0.0.2:${hop1.port}`);
const meshed = greeterClient(mesh.target);
for (let i = 0; ; i++) {
  try {
    await unary(meshed, 'SayHello', { name: 'probe' });
    break;
  } catch (err) {
    if (i > 200) throw err;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const rows = [await measure('direct', direct), await measure('node http2 relay x2', relayed), await measure('hostmesh h2 routers x2 (mTLS)', meshed)];
const base = rows[0] as { cpuUsPerCall: number };
console.log(`gRPC unary, ${CONCURRENCY} in flight, ${SECONDS} s each (one process: client + app + hops)`);
console.log('| path | calls/s | CPU µs/call | extra CPU µs/call vs direct |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.callsPerSec} | ${r.cpuUsPerCall} | ${r.cpuUsPerCall - base.cpuUsPerCall} |`);
for (const c of [direct, relayed, meshed]) c.close();
hop1.close();
hop2.close();
await mesh.close();
await app.close();
process.exit(0);
