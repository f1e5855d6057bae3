// The router's two HTTP/1.1 server engines alone (servers[].engine): Node's http.Server and the
// lean one (src/server/h1-server.ts), each in its own process answering every request with 12
// bytes, driven by wrk (one thread, kept-alive connections), plaintext and TLS. CPU per request
// is the server process's own (user + system), so wrk's cost is not in it. Rounds alternate the
// engines; the ratio lean/node is per round, then the median.
//
// Usage: npm run bench:servers -- [--rounds N (6)] [--seconds S (2)] [--connections C (32)]

import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { LeanServer } from '../../src/server/h1-server.js';
import { wrk } from './mesh/load.js';
import { cpuSeconds } from './mesh/proc.js';
import { relayPki } from './mesh/relay-pki.js';

const BODY = 'hello world\n';

if (process.argv[2] === 'server') {
  const [, , , engine, secure, certFile, keyFile] = process.argv;
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  };
  const tlsOptions = secure === 'tls' ? { cert: readFileSync(certFile as string), key: readFileSync(keyFile as string) } : undefined;
  let server: net.Server;
  if (engine === 'lean') {
    server = tlsOptions ? tls.createServer({ ...tlsOptions, noDelay: true }) : net.createServer({ noDelay: true });
    new LeanServer(server, tlsOptions !== undefined, { maxHeaderSize: 16384, headersTimeoutMs: 20_000, keepAliveTimeoutMs: 30_000, idleTimeoutMs: 300_000 });
    server.on('request', answer);
  } else {
    // As the router's listener sets Node's server up (listener.ts): its timeouts included.
    const common: http.ServerOptions = { keepAliveTimeout: 30_000, headersTimeout: 20_000, requestTimeout: 0, connectionsCheckingInterval: 5000 };
    server = tlsOptions ? https.createServer({ ...common, ...tlsOptions }, answer) : http.createServer(common, answer);
    (server as http.Server).setTimeout(300_000);
  }
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
} else {
  await main();
}

interface Row {
  readonly usPerRequest: number;
  readonly rps: number;
}

async function measure(engine: string, secure: boolean, files: readonly string[], seconds: number, connections: number): Promise<Row> {
  const child = fork(process.argv[1] as string, ['server', engine, secure ? 'tls' : 'plain', ...files], { stdio: 'inherit' });
  try {
    const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
    const url = `${secure ? 'https' : 'http'}://127.0.0.1:${port}/`;
    await wrk(url, connections, 1); // warm-up
    const pid = child.pid as number;
    const before = cpuSeconds([pid]);
    const r = await wrk(url, connections, seconds);
    const cpu = cpuSeconds([pid]) - before;
    if (r.errors > 0) throw new Error(`${engine}: ${r.errors} errors`);
    return { usPerRequest: (cpu * 1e6) / r.requests, rps: r.requestsPerSecond };
  } finally {
    child.kill();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '6' }, seconds: { type: 'string', default: '2' }, connections: { type: 'string', default: '32' } },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const [, cert, key] = relayPki(mkdtempSync(join(tmpdir(), 'bench-servers-')));
  const files = [cert, key];
  console.log(`| transport | round | node us/req | lean us/req | lean / node | node req/s | lean req/s |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const secure of [false, true]) {
    const ratios: number[] = [];
    const leans: number[] = [];
    const nodes: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['node', 'lean'] : ['lean', 'node'];
      const got: Record<string, Row> = {};
      for (const engine of order) got[engine] = await measure(engine, secure, files, seconds, connections);
      const n = got['node'] as Row;
      const l = got['lean'] as Row;
      ratios.push(l.usPerRequest / n.usPerRequest);
      leans.push(l.usPerRequest);
      nodes.push(n.usPerRequest);
      console.log(
        `| ${secure ? 'TLS' : 'plaintext'} | ${i + 1} | ${n.usPerRequest.toFixed(1)} | ${l.usPerRequest.toFixed(1)} | ${(l.usPerRequest / n.usPerRequest).toFixed(2)} | ${n.rps.toFixed(0)} | ${l.rps.toFixed(0)} |`,
      );
    }
    console.log(`| ${secure ? 'TLS' : 'plaintext'} | median | ${median(nodes).toFixed(1)} | ${median(leans).toFixed(1)} | ${median(ratios).toFixed(2)} | | |`);
  }
}
