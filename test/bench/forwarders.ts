// `npm run bench:forwarders`: which way of forwarding HTTP/1.1 in Node costs least CPU per
// request (the router's choice between undici and node's http client). Each
// forwarder runs alone in a child process in front of the same nginx backend; wrk drives it at
// 32 connections; CPU comes from /proc. Medians of --runs (default 3), rows interleaved.

import { fork } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts } from '../helpers/ports.js';
import { wrk } from './mesh/load.js';
import { backendConf, startNginx } from './mesh/nginx.js';
import { cpuSeconds } from './mesh/proc.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' } } });
const KINDS = ['undici-request', 'undici-dispatch', 'node-http'];
const dir = mkdtempSync(join(tmpdir(), 'hostmesh-fwd-'));
chmodSync(dir, 0o755);
const [backendPort] = (await freePorts('127.0.0.4', 1)) as [number];
const backend = await startNginx(dir, 'backend', backendConf(dir, '127.0.0.4', backendPort, '/dev/null'), { ip: '127.0.0.4', port: backendPort });
const results = new Map<string, { rps: number[]; us: number[] }>(KINDS.map((k) => [k, { rps: [], us: [] }]));
const children = [];
const ports = new Map<string, number>();
for (const kind of KINDS) {
  const [port] = (await freePorts('127.0.0.6', 1)) as [number];
  const child = fork(join(import.meta.dirname, 'mesh', 'forwarder-child.js'), [kind, String(port), String(backendPort)], {
    execArgv: ['--max-semi-space-size=4'],
  });
  await new Promise((r) => child.once('message', r));
  children.push(child);
  ports.set(kind, port);
  await wrk(`http://127.0.0.6:${port}/`, 32, 2); // warm-up
}
for (let run = 0; run < Number(values.runs); run++) {
  for (const [i, kind] of KINDS.entries()) {
    const pid = children[i]?.pid ?? 0;
    const c0 = cpuSeconds([pid]);
    const r = await wrk(`http://127.0.0.6:${ports.get(kind)}/`, 32, Number(values.duration));
    const us = ((cpuSeconds([pid]) - c0) * 1e6) / r.requests;
    results.get(kind)?.rps.push(r.requestsPerSecond);
    results.get(kind)?.us.push(us);
    console.error(`${kind}: ${r.requestsPerSecond.toFixed(0)} req/s, ${us.toFixed(1)} us/req`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
console.log('| forwarder | req/s @32 | CPU us/req |\n|---|---|---|');
for (const [kind, r] of results) console.log(`| ${kind} | ${median(r.rps).toFixed(0)} | ${median(r.us).toFixed(1)} |`);
for (const c of children) c.kill();
await backend.stop();
rmSync(dir, { recursive: true, force: true });
