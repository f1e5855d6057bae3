// Groups a `perf record -g -p PID` profile of one relay hop by where the CPU goes: the kernel
// (system calls, loopback TCP, wake-ups), JavaScript (JIT code, V8 builtins and interpreter), the
// V8 runtime (the C++ <-> JS boundary), OpenSSL, Node's C++ stream plumbing and libuv, libc, llhttp,
// GC. The V8 profile (`--cpu-prof`) cannot say this: it charges a write's kernel and TLS work to the
// JS write call and does not see reads made by libuv outside JS. Shares of all samples.
// Usage: node dist/test/bench/mesh/raw-perf.js perf.data...
// (perf record -F 999 -g -o perf.data -p PID -- sleep 12, as root, during a bench round)

import { execFileSync } from 'node:child_process';

function area(dso: string, kind: string, sym: string): string {
  if (kind === 'k') return 'kernel';
  if (dso.startsWith('[JIT]')) return 'JS: JIT-compiled';
  if (dso === 'libc.so.6') return /malloc|free|_int_|unlink_chunk|consolidate|tcache/.test(sym) ? 'libc malloc/free' : 'libc other (syscall wrappers, memcpy)';
  if (dso === 'node') {
    if (sym.startsWith('Builtins_')) return 'JS: V8 builtins and interpreter';
    if (/Scaveng|Sweep|Marking|Evacuat|MarkCompact|ArrayBufferSweeper|Heap::/.test(sym)) return 'V8 GC';
    if (/^(v8::|Runtime_)/.test(sym)) return 'V8 runtime and API (C++ <-> JS calls)';
    if (/^llhttp|Parser::/.test(sym)) return 'llhttp and its Node binding';
    if (
      /^(ssl|SSL|tls|aes|AES|gcm|GCM|EVP|ossl|OSSL|CRYPTO|BIO|sha|SHA|bn_|BN_|RSA|rsa|ERR_|OPENSSL|ASN1|PACKET|WPACKET)/.test(sym) ||
      /crypto::(NodeBIO|TLSWrap)/.test(sym)
    )
      return 'OpenSSL and TLSWrap';
    if (/^uv_|^uv__/.test(sym)) return 'libuv';
    if (sym.startsWith('node::')) return "Node's C++ (StreamBase, wraps, callbacks)";
    return 'node binary, other';
  }
  if (/libcrypto|libssl/.test(dso)) return 'OpenSSL and TLSWrap';
  return dso;
}

for (const file of process.argv.slice(2)) {
  const out = execFileSync('perf', ['report', '-i', file, '--no-children', '--sort', 'dso,sym', '-g', 'none', '--stdio'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const areas = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\[JIT\] tid \d+|\S+)\s+\[(.)\]\s+(.*)$/.exec(line);
    if (m === null) continue;
    const a = area(m[2] ?? '', m[3] ?? '', m[4] ?? '');
    areas.set(a, (areas.get(a) ?? 0) + Number(m[1]));
  }
  console.log(`\n## ${file}\n\n| share of samples | where |\n|---|---|`);
  for (const [a, v] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`| ${v.toFixed(1)}% | ${a} |`);
}
