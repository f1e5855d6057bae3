// An idle router's memory, taken apart (docs/memory.md, session 7): runs `npm run bench`'s set-up
// (the shipped config for routers A and B, the test API server, `hostmesh identity`) with only the
// `direct` row, so the routers see no traffic, and SECONDS after they are ready reads each router's
// /proc/<pid>/status, its anonymous memory by mapping (/proc/<pid>/smaps: V8's 256 KB pages,
// glibc's main arena and thread arenas, code), the node binary's resident file pages, and its
// V8 heap from /metrics. Needs `npm run build:all`, nginx and wrk (as the bench).
// usage: node scripts/memory-idle-probe.mjs [SECONDS (30)] [ROUNDS (1)]
//   BENCH_MAIN=<other dist>/src/cli/main.js: another build; BENCH_ROUTER_ENV='MALLOC_ARENA_MAX=1': router env
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const [secs = '30', rounds = '1'] = process.argv.slice(2);

/** Anonymous resident memory of `pid` by kind of mapping, in MB. */
export function anonByKind(pid) {
  const maps = [];
  let cur;
  for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) {
      cur = { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perm: m[3], name: m[4], anon: 0, rss: 0 };
      maps.push(cur);
    } else if (l.startsWith('Anonymous:')) cur.anon = Number.parseInt(l.slice(10));
    else if (l.startsWith('Rss:')) cur.rss = Number.parseInt(l.slice(4));
  }
  const kinds = {};
  const add = (k, kb) => (kinds[k] = (kinds[k] ?? 0) + kb / 1024);
  for (const m of maps) {
    if (m.name.endsWith('/node') && m.rss > 0) add(`node binary (file) ${m.perm}`, m.rss);
    if (m.anon === 0) continue;
    const kb = Number(m.end - m.start) / 1024;
    if (m.name === '[heap]') add('glibc main arena', m.anon);
    else if (m.name.startsWith('/') || m.name === '[stack]') add('other', m.anon);
    else if (m.perm.includes('x')) add('V8 code (executable)', m.anon);
    else if ((m.start & 0x3ffffffn) === 0n && m.start > 0x7f0000000000n) add('glibc thread arenas', m.anon);
    else if (kb === 256) add('V8 heap pages', m.anon);
    else add('other', m.anon);
  }
  return kinds;
}

const status = (pid) =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((l) => /^(VmRSS|RssAnon|RssFile)/.test(l))
      .map((l) => [l.split(':')[0], Number.parseInt(l.split(':')[1]) / 1024]),
  );
const arg = (pid, key) =>
  readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .find((x) => x.startsWith(`${key}=`))
    ?.slice(key.length + 1);
async function heap(pid) {
  const text = await fetch(`http://${arg(pid, 'admin.ip')}:${arg(pid, 'admin.port')}/metrics`).then((r) => r.text());
  const g = (n) => Number(new RegExp(`^${n} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 1048576;
  return { 'V8 heap total': g('nodejs_heap_size_total_bytes'), 'V8 heap used': g('nodejs_heap_size_used_bytes'), external: g('nodejs_external_memory_bytes') };
}
const f = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');

for (let r = 0; r < Number(rounds); r++) {
  const bench = spawn(
    process.execPath,
    ['dist/test/bench/run.js', '--rows', 'direct', '--runs', '1', '--duration', '1', '--latency-seconds', '1', '--soak', '0', '--stream-mib', '1', '--idle-seconds', String(Number(secs) + 5)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  bench.stdout.on('data', (d) => (out += d));
  bench.stderr.on('data', (d) => (out += d));
  let pids = [];
  for (let i = 0; i < 600 && pids.length < 2; i++) {
    await new Promise((res) => setTimeout(res, 500));
    try {
      pids = execFileSync('pgrep', ['-f', `${ROOT}/k8s/base/config/config.yaml`]).toString().trim().split('\n').map(Number);
    } catch {}
  }
  // Ready: the admin port answers /ready.
  for (let i = 0; i < 600; i++) {
    const ok = await Promise.all(pids.map((p) => fetch(`http://${arg(p, 'admin.ip')}:${arg(p, 'admin.port')}/ready`).then((x) => x.ok, () => false)));
    if (ok.every(Boolean)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  await new Promise((res) => setTimeout(res, Number(secs) * 1000));
  for (const [i, pid] of pids.entries()) {
    console.log(`round ${r + 1} router ${'AB'[i]} after ${secs} s idle: ${f(status(pid))}; ${f(await heap(pid))}`);
    console.log(`   ${f(anonByKind(pid))}`);
  }
  await new Promise((res) => bench.once('exit', res));
  const idle = /idle RSS .*/.exec(out)?.[0];
  if (idle) console.log(`   bench: ${idle}`);
}
