// The router's two HTTP/1.1 clients to endpoints, alone: hostmesh's lean pool (src/core/h1-pool.ts,
// client.engine: lean) and undici's Pool (client.engine: undici), each driven through the same
// dispatch handler the router uses (UpstreamAnswer's shape: head, then body chunks), against one
// backend process, in plaintext (a router to its pods) and over mutual TLS (a router to a peer).
// CPU per request is this process's own (user + system), so the backend's cost is not in it.
// Rounds alternate the clients; the ratio lean/undici is per round, then the median.
//
// Usage: npm run bench:clients -- [--rounds N (6)] [--seconds S (2)] [--concurrency C (32)]

import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Dispatcher } from 'undici';
import { H1Pool } from '../../src/core/h1-pool.js';
import { Pool } from '../../src/core/undici.js';
import { relayPki } from './mesh/relay-pki.js';

const BODY = 'hello world\n';

if (process.argv[2] === 'backend') {
  // The backend: answers every request with 12 bytes, kept alive, on a plaintext and a TLS port.
  const [ca, cert, key] = [process.argv[3], process.argv[4], process.argv[5]].map((f) => readFileSync(f as string));
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  };
  const plain = http.createServer({ keepAliveTimeout: 60_000 }, answer);
  const tls = https.createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 }, answer);
  plain.listen(0, '127.0.0.1', () =>
    tls.listen(0, '127.0.0.1', () => process.send?.({ plain: (plain.address() as AddressInfo).port, tls: (tls.address() as AddressInfo).port })),
  );
} else {
  await main();
}

/** The router's way to take an answer: the head, then chunks counted, then the end (no Readable). */
function once(pool: Dispatcher, opts: Dispatcher.DispatchOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    pool.dispatch(opts, {
      onConnect: () => undefined,
      onHeaders: () => true,
      onData: (chunk: Buffer) => {
        bytes += chunk.length;
        return true;
      },
      onComplete: () => (bytes === BODY.length ? resolve() : reject(new Error(`short body: ${bytes}`))),
      onError: reject,
    } as Dispatcher.DispatchHandler);
  });
}

async function drive(pool: Dispatcher, secure: boolean, seconds: number, concurrency: number): Promise<{ requests: number; cpuUs: number }> {
  // As the router sends: the service's Host, and over TLS the peer's name given apart (undici would take Host for SNI).
  const opts: Dispatcher.DispatchOptions & { servername?: string } = {
    method: 'GET',
    path: '/',
    headers: { host: 'world', 'l5d-dst-service': '/svc/world', via: '1.1 hostmesh' },
    ...(secure ? { servername: 'hostmesh' } : {}),
  };
  // Warm: connections open, code compiled.
  await Promise.all(Array.from({ length: concurrency }, () => once(pool, opts)));
  let requests = 0;
  const until = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await once(pool, opts);
        requests++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { requests, cpuUs: cpu.user + cpu.system };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '6' }, seconds: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '32' } },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const [caFile, certFile, keyFile] = relayPki(mkdtempSync(join(tmpdir(), 'hostmesh-clients-')));
  const child = fork(new URL(import.meta.url).pathname, ['backend', caFile, certFile, keyFile]);
  const ports = await new Promise<{ plain: number; tls: number }>((resolve) => child.once('message', (m) => resolve(m as { plain: number; tls: number })));
  const ca = readFileSync(caFile);
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const settings = { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 60_000 };
  const make = (client: 'lean' | 'undici', secure: boolean): Dispatcher => {
    const origin = secure ? `https://127.0.0.1:${ports.tls}` : `http://127.0.0.1:${ports.plain}`;
    const connect = secure ? { ca, cert, key, servername: 'hostmesh', timeout: 10_000 } : { timeout: 10_000 };
    return client === 'lean'
      ? new H1Pool(origin, { connections: 64, ...settings, connect })
      : new Pool(origin, { connections: 64, ...settings, connect: connect as never });
  };
  console.log(`lean pool vs undici Pool, ${concurrency} requests in flight, ${seconds} s per point, ${rounds} rounds; CPU of the client process only`);
  for (const secure of [false, true]) {
    const ratios: number[] = [];
    const per: Record<'lean' | 'undici', number[]> = { lean: [], undici: [] };
    for (let r = 0; r < rounds; r++) {
      const order: ('lean' | 'undici')[] = r % 2 === 0 ? ['lean', 'undici'] : ['undici', 'lean'];
      const us: Partial<Record<'lean' | 'undici', number>> = {};
      for (const client of order) {
        const pool = make(client, secure);
        const m = await drive(pool, secure, seconds, concurrency);
        await pool.close();
        us[client] = m.cpuUs / m.requests;
        per[client].push(us[client]);
      }
      ratios.push((us.lean as number) / (us.undici as number));
      console.log(
        `  ${secure ? 'mTLS' : 'plaintext'} round ${r + 1}: lean ${us.lean?.toFixed(1)} us/req, undici ${us.undici?.toFixed(1)} us/req, lean/undici ${ratios.at(-1)?.toFixed(2)}`,
      );
    }
    const med = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      const m = Math.floor(s.length / 2);
      return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
    };
    console.log(
      `${secure ? 'mTLS' : 'plaintext'}: medians lean ${med(per.lean).toFixed(1)} us/req, undici ${med(per.undici).toFixed(1)} us/req, lean/undici ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
    );
  }
  child.kill();
}
