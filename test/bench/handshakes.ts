// `npm run bench:handshakes`: 10,000 unfinished TLS handshakes against a router run as its own
// process (`hostmesh run`, defaults but for the per-source and listener caps, raised so that every
// handshake is accepted): its socket fds and RSS before, during and after the handshake deadline,
// and the latency of normal mTLS requests meanwhile. `-- --pending 20000` lifts the cap on
// unfinished handshakes too (the worst case without it).

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { createCa, issueNodeCertificate } from '../../src/tls/generate.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { anonMb, rssMb } from './mesh/proc.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    // The default deadline (10 s); --deadline shortens or lengthens it for this run.
    deadline: { type: 'string', default: '10000' },
    sources: { type: 'string', default: '20' },
    pending: { type: 'string', default: '512' },
  },
});
const N = Number(values.connections);
const DEADLINE = Number(values.deadline);
const PENDING = Number(values.pending);
const SOURCES = Array.from({ length: Number(values.sources) }, (_, i) => `127.0.1.${i + 1}`);
const IP = '127.0.0.61';

const dir = mkdtempSync(join(tmpdir(), 'hostmesh-bench-handshakes-'));
const ca = createCa({ commonName: 'bench CA', days: 1 });
const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-b', ip: IP }, 1);
const peer = issueNodeCertificate(ca, 'hostmesh', { name: 'node-a' }, 1);
writeFileSync(join(dir, 'ca.pem'), ca.certPem);
writeFileSync(join(dir, 'cert.pem'), node.certPem);
writeFileSync(join(dir, 'key.pem'), node.keyPem);

// A backend for the normal requests, in this process (it is not what is measured).
const backend = net.createServer((s) => {
  s.on('error', () => undefined);
  s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n'));
});
await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
const backendPort = (backend.address() as net.AddressInfo).port;

const [port, admin] = (await freePorts(IP, 2)) as [number, number];
// Caps raised above the attack so every handshake is accepted (the per-source cap would refuse
// all but 1,000 per source, the listener cap all but 10,000: the worst case is what is measured).
writeFileSync(
  join(dir, 'config.yaml'),
  `
admin: {ip: ${IP}, port: ${admin}}
nodeName: node-b
routers:
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/${backendPort};
  servers:
  - port: ${port}
    ip: ${IP}
    maxConnections: ${N + 1000}
    maxConnectionsPerSource: ${N}
    tls: {certPath: cert.pem, keyPath: key.pem, caCertPath: ca.pem, requireClientAuth: true, handshakeTimeoutMs: ${DEADLINE}, maxPendingHandshakes: ${PENDING}}
`,
);
const main = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');
const child = spawn(process.execPath, [main, 'run', '-c', join(dir, 'config.yaml')], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, HOSTMESH_LOG_LEVEL: 'warn' },
});
const pid = child.pid as number;
for (let i = 0; ; i++) {
  const ready = await request({ host: IP, port: admin, path: '/ready' }).then(
    (r) => r.status,
    () => 0,
  );
  if (ready === 200) break;
  if (i > 300) throw new Error('the router did not become ready');
  await sleep(100);
}

function parseRefused(text: string): number {
  const m = /^hostmesh_connections_refused_total\{[^}]*reason="handshake_limit"[^}]*\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function socketFds(): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** One normal mTLS request on a new connection (handshake included); milliseconds or an error. */
function mtlsMs(): Promise<number | string> {
  const started = performance.now();
  return new Promise((resolve) => {
    https
      .get(
        {
          host: IP,
          port,
          path: '/',
          headers: { host: 'world' },
          agent: false,
          ca: ca.certPem,
          cert: peer.certPem,
          key: peer.keyPem,
          servername: 'hostmesh',
          checkServerIdentity: (_h, c) => tls.checkServerIdentity('hostmesh', c),
          timeout: 5000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - started : `status ${res.statusCode}`));
        },
      )
      .on('timeout', function (this: import('node:http').ClientRequest) {
        this.destroy(new Error('no answer in 5 s'));
      })
      .on('error', (e) => resolve(e.message));
  });
}

const rows: string[] = [];
const row = (phase: string, fds = socketFds(), rss = rssMb(pid), anon = anonMb(pid)): void => {
  rows.push(`| ${phase} | ${fds} | ${rss.toFixed(0)} | ${anon.toFixed(0)} |`);
};
const idleFds = socketFds();
row('idle', idleFds);
const idleLatency: number[] = [];
for (let i = 0; i < 20; i++) {
  const r = await mtlsMs();
  if (typeof r === 'number') idleLatency.push(r);
}

// The attack: half send nothing, half the first bytes of a ClientHello, none ever finishes.
const attackers: net.Socket[] = [];
const opened = performance.now();
const during: number[] = [];
const failures: string[] = [];
let probing = true;
const probe = (async () => {
  while (probing) {
    const r = await mtlsMs();
    if (typeof r === 'number') during.push(r);
    else failures.push(r);
    await sleep(100);
  }
})();
for (let i = 0; i < N; i++) {
  const s = net.connect({ port, host: IP, localAddress: SOURCES[i % SOURCES.length] as string });
  s.on('error', () => undefined);
  if (i % 2 === 1) s.once('connect', () => s.write(Buffer.from('1603010200010001fc0303', 'hex')));
  s.resume();
  attackers.push(s);
  if (i % 500 === 499) await sleep(10); // let the accept loop run; still ~10,000 in about a second
}
const openMs = performance.now() - opened;
// Sample until the router holds no more sockets than when idle (every handshake past its
// deadline or evicted), with a ceiling well past the deadline.
let peakFds = 0;
let peakRss = 0;
let peakAnon = 0;
let backAt = 0;
const ceiling = performance.now() + DEADLINE + 15_000;
while (performance.now() < ceiling) {
  const fds = socketFds();
  peakFds = Math.max(peakFds, fds);
  peakRss = Math.max(peakRss, rssMb(pid));
  peakAnon = Math.max(peakAnon, anonMb(pid));
  if (performance.now() - opened > openMs + 500 && fds <= idleFds + 2) {
    backAt = performance.now();
    break;
  }
  await sleep(250);
}
probing = false;
await probe;
row(`peak while ${N} handshakes were opened (in ${(openMs / 1000).toFixed(1)} s)`, peakFds, peakRss, peakAnon);
const closedByRouter = attackers.filter((s) => s.destroyed || s.readableEnded).length;
row(`${backAt > 0 ? `${((backAt - opened) / 1000).toFixed(1)} s after the attack began` : 'at the ceiling'}: ${closedByRouter} of ${N} closed by the router`);
attackers.forEach((s) => s.destroy());
await sleep(500);
row('attackers gone');

const q = (xs: number[], p: number): string => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? '-' : (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number).toFixed(1);
};
console.log(`\n## ${N} unfinished TLS handshakes (handshakeTimeoutMs ${DEADLINE}, maxPendingHandshakes ${PENDING}, ${SOURCES.length} sources)\n`);
console.log('| phase | router socket fds | router RSS MB | router private (RssAnon) MB |\n|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(`\nnormal mTLS request (new connection each) idle: p50 ${q(idleLatency, 0.5)} ms, max ${q(idleLatency, 1)} ms`);
console.log(
  `during the attack: ${during.length} requests, p50 ${q(during, 0.5)} ms, p99 ${q(during, 0.99)} ms, max ${q(during, 1)} ms, ${failures.length} failed${failures.length > 0 ? ` (${[...new Set(failures)].join('; ')})` : ''}`,
);
const exposition = await request({ host: IP, port: admin, path: '/metrics' }).then((r) => r.body);
console.log(`hostmesh_connections_refused_total{reason="handshake_limit"} ${parseRefused(exposition)}`);
// Whether what RSS kept after the attack is live memory (a leak) or pages the allocators keep.
const heapUsed = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(exposition)?.[1];
const external = /^nodejs_external_memory_bytes (\S+)$/m.exec(exposition)?.[1];
console.log(`after the attack: V8 heap used ${(Number(heapUsed) / 2 ** 20).toFixed(0)} MB, external ${(Number(external) / 2 ** 20).toFixed(0)} MB`);
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
backend.close();
rmSync(dir, { recursive: true, force: true });
