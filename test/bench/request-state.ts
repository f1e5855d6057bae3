// `npm run bench:request-state` (not a test): the heap of a router after 10,000 distinct
// /$/inet overrides (l5d-dtab on the outgoing port) and 10,000 distinct explanations
// (/delegator.json?dtab=&path= on the admin port), each naming its own address with a long host
// label, as an attacker would: while held, and after the router's idle eviction (its injected
// clock advanced, no sleeping). The /$/inet map is bounded by inet.maxNames (default 1000) and
// inet.idleTtlSecs (60); labels longer than a DNS name are never kept.
//
// Options (environment): BENCH_N (10000), BENCH_LABEL (2000 characters), BENCH_SNAPSHOT (a file:
// a heap snapshot after eviction, to see what is still held).

import { clockWithNow } from '../../src/core/clock.js';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const N = Number(process.env['BENCH_N'] ?? 10_000);
const LABEL = Number(process.env['BENCH_LABEL'] ?? 2_000);
const HOST = '127.0.0.1';
const CONNECTIONS = 16;

function heap(): { heapMb: number; rssMb: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapMb: m.heapUsed / 2 ** 20, rssMb: m.rss / 2 ** 20 };
}

/** `requests` pipelined on one connection; resolves once every one is answered. */
function pipelined(port: number, requests: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    let answered = 0;
    let tail = '';
    const socket = net.connect({ host: HOST, port });
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.write(requests.join('')));
    socket.on('data', (chunk: string) => {
      const text = tail + chunk;
      answered += (text.match(/HTTP\/1\.1 \d{3} /g) ?? []).length;
      tail = text.slice(-16).replace(/.*HTTP\/1\.1 \d{3} /s, '');
      if (answered >= requests.length) socket.end();
    });
    socket.on('close', () => resolve(answered));
    socket.on('error', () => undefined);
  });
}

async function flood(port: number, make: (i: number) => string): Promise<number> {
  const per = Math.ceil(N / CONNECTIONS);
  const answered = await Promise.all(
    Array.from({ length: CONNECTIONS }, (_, c) => {
      const reqs: string[] = [];
      for (let i = c * per; i < Math.min(N, (c + 1) * per); i++) reqs.push(make(i));
      return reqs.length === 0 ? 0 : pipelined(port, reqs);
    }),
  );
  return answered.reduce((a, b) => a + b, 0);
}

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-request-state-'));
const backend = http.createServer((req, res) => {
  req.resume();
  res.end('web');
});
await new Promise<void>((r) => backend.listen(0, HOST, r));
await writeFile(join(dir, 'web'), `${HOST} ${(backend.address() as net.AddressInfo).port}\n`);
const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
let clock = Date.now();
const config: HostmeshConfig = {
  admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
  namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: dir }],
  routers: [
    {
      protocol: 'http',
      label: 'outgoing',
      dtab: '/svc => /#/io.l5d.fs;',
      identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
      transformers: [],
      servers: [{ ip: HOST, port, maxHeaderBytes: 64 * 1024 }],
      client: { loadBalancer: { kind: 'p2c' } },
      maxHops: 64,
    },
  ],
  shutdownGraceMs: 0,
  baseDir: dir,
};
const hm = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => clock) });
const inet = (): number => hm.interpreter.inetStats().entries;
const host = (i: number): string => `h${i}-${'x'.repeat(LABEL)}`;
const row = (what: string, h: { heapMb: number; rssMb: number }): string =>
  `  ${what.padEnd(46)} heap ${h.heapMb.toFixed(0).padStart(5)} MB  RSS ${h.rssMb.toFixed(0).padStart(5)} MB  /$/inet kept ${String(inet()).padStart(6)}`;

// Warm up both paths, then the baseline.
await pipelined(port, [`GET / HTTP/1.1\r\nhost: web\r\nl5d-dtab: /svc/web => /$/inet/w/1\r\n\r\n`]);
await pipelined(admin, [`GET /delegator.json?router=outgoing&path=/svc/w&dtab=/svc/w=>/$/inet/w/1 HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`]);
console.log(`hostmesh defaults (inet.maxNames 1000, inet.idleTtlSecs 60); host labels of ${LABEL} characters, plus short ones`);
console.log(row('idle at start', heap()));
const started = performance.now();
const overrides = await flood(port, (i) => {
  const h = i % 2 === 0 ? host(i) : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return `GET / HTTP/1.1\r\nhost: svc-${i}\r\nl5d-dtab: /svc/svc-${i} => /$/inet/${h}/${1 + (i % 60_000)}\r\n\r\n`;
});
const explanations = await flood(admin, (i) => {
  const h = i % 2 === 0 ? host(i) : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return `GET /delegator.json?router=outgoing&path=/svc/d${i}&dtab=${encodeURIComponent(`/svc/d${i}=>/$/inet/${h}/${1 + (i % 60_000)}`)} HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`;
});
const seconds = (performance.now() - started) / 1000;
console.log(row(`${overrides.toLocaleString('en')} overrides + ${explanations.toLocaleString('en')} explanations, held`, heap()));
const pools = async (): Promise<string> => {
  const g = (hm.metrics as { endpointPools?: { get(): Promise<{ values: { value: number }[] }> } }).endpointPools;
  return g === undefined ? 'n/a' : String((await g.get()).values.reduce((a, v) => a + v.value, 0));
};
console.log(`  endpoint pools open: ${await pools()}`);
clock += 3_600_000;
hm.evictIdle();
clock += 3_600_000;
hm.evictIdle();
// Closed pools let go of their sockets on the next turns of the event loop.
await new Promise((r) => setTimeout(r, 500));
console.log(row('  after idle eviction (clock +2 h)', heap()));
{
  // What is left: the per-service metric rows (capped at 500 services x 16 clients, kept for the
  // process's life; their labels carry bound ids, so long host labels make them heavy).
  const m = hm.metrics.router('outgoing');
  const clients = [...m.requests.services.values()].reduce((a, svc) => a + svc.clients.size, 0);
  console.log(
    `  endpoint pools open ${await pools()}; still held: bindings ${hm.routers[0]?.router.bindingCacheSize ?? 0}, interpreter lookups ${hm.interpreter.lookupCount}, metric service rows ${m.requests.services.size} (clients ${clients})`,
  );
}
if (process.env['BENCH_SNAPSHOT']) (await import('node:v8')).writeHeapSnapshot(process.env['BENCH_SNAPSHOT']);
console.log(`  (${((overrides + explanations) / seconds).toFixed(0)} requests/s on this machine)`);
await hm.close(0);
backend.close();
await rm(dir, { recursive: true, force: true });
