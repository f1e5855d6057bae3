// CPU per request and peak RSS of one router (plaintext, one hop, nginx behind it) under each set
// of node flags, rounds interleaved with the order rotated (docs/memory.md, section 3). Needs
// `npm run build:all`, nginx and wrk.
// usage: node scripts/memory-flag-cost.mjs <rounds> <seconds> <connections> '' '--max-semi-space-size=2' ...
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, chmodSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const D = ROOT + '/dist/test/bench/mesh/';
const { startNginx, backendConf } = await import(D + 'nginx.js');
const { wrk } = await import(D + 'load.js');
const { freePorts } = await import(ROOT + '/dist/test/helpers/ports.js');
const [rounds, secs, conns, ...sets] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'pm-ab-')); chmodSync(dir, 0o755);
const big = join(dir, 'big.bin'); const fd = openSync(big, 'w', 0o644); ftruncateSync(fd, 1048576); closeSync(fd);
const IP = '127.0.0.23';
const [bport] = await freePorts(IP, 1);
const nginx = await startNginx(dir, 'backend', backendConf(dir, IP, bport, big), { ip: IP, port: bport });
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const rss = (pid) => parseInt(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const res = new Map(sets.map((s) => [s, []]));
for (let r = 0; r < Number(rounds); r++) {
  for (const flags of r % 2 ? [...sets].reverse() : sets) {
    const [rport, aport] = await freePorts(IP, 2);
    const cfg = join(dir, `r.yaml`);
    writeFileSync(cfg, `admin: {ip: ${IP}, port: ${aport}}\nrouters:\n- protocol: http\n  label: outgoing\n  dtab: /svc/world => /$/inet/${IP}/${bport};\n  servers: [{ip: ${IP}, port: ${rport}}]\n`);
    const p = spawn(process.execPath, [...flags.split(' ').filter(Boolean), ROOT + '/dist/src/cli/main.js', 'run', '-c', cfg], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
    for (let i = 0; i < 600; i++) { if (await fetch(`http://${IP}:${aport}/ready`).then(x => x.ok, () => false)) break; await new Promise(r => setTimeout(r, 100)); }
    await wrk(`http://${IP}:${rport}/`, Number(conns), 2); // warm-up
    let peak = 0; const t = setInterval(() => (peak = Math.max(peak, rss(p.pid))), 100);
    const c0 = cpu(p.pid);
    const w = await wrk(`http://${IP}:${rport}/`, Number(conns), Number(secs));
    const c1 = cpu(p.pid); clearInterval(t);
    res.get(flags).push({ us: ((c1 - c0) * 1e6) / w.requests, rps: w.requestsPerSecond, peak, errors: w.errors });
    p.kill('SIGKILL'); await new Promise(r => p.once('exit', r));
  }
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const base = med(res.get(sets[0]).map((x) => x.us));
for (const [flags, xs] of res) console.log(`${(flags || '(none)').padEnd(48)} CPU us/req median ${med(xs.map(x => x.us)).toFixed(0)} (${xs.map(x => x.us.toFixed(0)).join(' ')}) ratio ${(med(xs.map(x => x.us)) / base).toFixed(2)}; peak RSS median ${med(xs.map(x => x.peak)).toFixed(0)} MB; req/s ${xs.map(x => x.rps.toFixed(0)).join(' ')}; errors ${xs.reduce((a, x) => a + x.errors, 0)}`);
await nginx.stop(); process.exit(0);
