// Memory of one router under load (docs/memory.md, section 2): one router (plaintext, one hop) in
// front of nginx, wrk at N connections; RSS, RssAnon and the router's V8 heap and external memory
// at the RSS peak, 3 s later, and while streaming 64 MiB. Needs `npm run build:all`, nginx and wrk.
// usage: node scripts/memory-load-probe.mjs <connections> <seconds> [node flags for the router...]
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, openSync, ftruncateSync, closeSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const D = ROOT + '/dist/test/bench/mesh/';
const { startNginx, backendConf } = await import(D + 'nginx.js');
const { wrk, download } = await import(D + 'load.js');
const { freePorts } = await import(ROOT + '/dist/test/helpers/ports.js');
const [conns, secs, ...flags] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'pm-probe-')); chmodSync(dir, 0o755);
const big = join(dir, 'big.bin'); const fd = openSync(big, 'w', 0o644); ftruncateSync(fd, 64 * 1048576); closeSync(fd);
const IP = '127.0.0.21';
const [bport, rport, aport] = await freePorts(IP, 3);
const nginx = await startNginx(dir, 'backend', backendConf(dir, IP, bport, big), { ip: IP, port: bport });
const cfg = join(dir, 'r.yaml');
writeFileSync(cfg, `admin: {ip: ${IP}, port: ${aport}}\nrouters:\n- protocol: http\n  label: outgoing\n  dtab: /svc/world => /$/inet/${IP}/${bport};\n  servers: [{ip: ${IP}, port: ${rport}}]\n`);
const r = spawn(process.execPath, [...flags, ROOT + '/dist/src/cli/main.js', 'run', '-c', cfg], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
for (let i = 0; i < 600; i++) { if (await fetch(`http://${IP}:${aport}/ready`).then(x => x.ok, () => false)) break; await new Promise(r => setTimeout(r, 100)); }
const st = () => Object.fromEntries(readFileSync(`/proc/${r.pid}/status`, 'utf8').split('\n').filter(l => /^(VmRSS|RssAnon|RssFile)/.test(l)).map(l => { const [k, v] = l.split(':'); return [k, parseInt(v) / 1024]; }));
const met = async () => { const t = await fetch(`http://${IP}:${aport}/metrics`).then(x => x.text()); const g = (n) => Number(new RegExp(`^${n} (\\S+)$`, 'm').exec(t)?.[1] ?? NaN) / 1048576; return { heapTotal: g('nodejs_heap_size_total_bytes'), heapUsed: g('nodejs_heap_size_used_bytes'), external: g('nodejs_external_memory_bytes'), newSpace: Number(/nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/.exec(t)?.[1]) / 1048576 }; };
const f = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
await new Promise(r => setTimeout(r, 1000));
console.log('idle    ', f({ ...st(), ...(await met()) }));
let peak = { VmRSS: 0 };
const timer = setInterval(async () => { const s = st(); if (s.VmRSS > peak.VmRSS) peak = { ...s, ...(await met().catch(() => ({}))) }; }, 250);
const w = await wrk(`http://${IP}:${rport}/`, Number(conns), Number(secs));
clearInterval(timer);
console.log(`load ${conns}`, f(peak), `| ${w.requestsPerSecond.toFixed(0)} req/s errors ${w.errors}`);
await new Promise(r => setTimeout(r, 3000));
console.log('after 3s', f({ ...st(), ...(await met()) }));
peak = { VmRSS: 0 };
const t2 = setInterval(() => { const s = st(); if (s.VmRSS > peak.VmRSS) peak = s; }, 50);
const d = await download(`http://${IP}:${rport}`, '/big', 'world');
clearInterval(t2);
console.log('stream  ', f(peak), `| ${d.mbPerSecond.toFixed(0)} MB/s`);
r.kill('SIGKILL'); await nginx.stop(); process.exit(0);
