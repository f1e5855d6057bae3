// Correctness check of the `raw` relay design (raw-relay.ts) before it is measured: two raw hops
// (plaintext in at A, mutual TLS A -> B, plaintext B -> backend), driven by real clients (curl,
// plain sockets for the hostile cases). Not part of the test suite: a bench prototype's check.
// Usage: node dist/test/bench/mesh/raw-check.js [raw|rawc]   (exits non-zero on the first failed check)

import assert from 'node:assert/strict';
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relayPki } from './relay-pki.js';
import { freePorts } from '../../helpers/ports.js';
import { backendConf, startNginx } from './nginx.js';

const DESIGN = process.argv[2] ?? 'raw';
if (DESIGN !== 'raw' && DESIGN !== 'rawc') throw new Error(`raw-check checks raw or rawc, not ${DESIGN}`);
const dir = mkdtempSync(join(tmpdir(), 'hostmesh-raw-check-'));
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', ...args], { encoding: 'latin1', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`curl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** Sends raw bytes, returns everything the peer sent until it closed. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.6', () => s.write(bytes, 'latin1'));
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

const big = randomBytes(8 << 20);
const bigFile = join(dir, 'big.bin');
writeFileSync(bigFile, big);
const upload = join(dir, 'upload.bin');
const body = randomBytes(1 << 20);
writeFileSync(upload, body);

// The echo backend: POST answers "<length> <sha256>" of what arrived; /endless streams until the
// client goes, and reports when its socket closes.
let endlessClosed: (() => void) | undefined;
const endlessGone = new Promise<void>((r) => (endlessClosed = r));
let echoRequests = 0;
const echo = http.createServer((req, res) => {
  echoRequests++;
  if (req.url === '/endless') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(65_536, 7);
    const more = (): void => {
      while (!res.destroyed && res.write(chunk));
    };
    res.on('drain', more);
    res.on('close', () => endlessClosed?.());
    more();
    return;
  }
  const h = createHash('sha256');
  let n = 0;
  req.on('data', (c: Buffer) => {
    n += c.length;
    h.update(c);
  });
  req.on('end', () => res.end(`${n} ${h.digest('hex')} ${req.headers['transfer-encoding'] ?? 'length'} ${req.headers['via'] ?? ''}`));
});

const files = relayPki(dir);

async function hop(role: 'a' | 'b', ip: string, port: number, nextIp: string, nextPort: number): Promise<ChildProcess> {
  const child = fork(join(import.meta.dirname, 'relay-child.js'), [DESIGN, role, ip, String(port), nextIp, String(nextPort), ...files]);
  children.push(child);
  await new Promise((r) => child.once('message', r));
  return child;
}

/** Two raw hops in front of `next`; returns hop A's port. */
async function relay(nextIp: string, nextPort: number): Promise<{ port: number; a: ChildProcess; b: ChildProcess }> {
  const [portA] = (await freePorts('127.0.0.6', 1)) as [number];
  const [portB] = (await freePorts('127.0.0.7', 1)) as [number];
  const b = await hop('b', '127.0.0.7', portB, nextIp, nextPort);
  const a = await hop('a', '127.0.0.6', portA, '127.0.0.7', portB);
  return { port: portA, a, b };
}

const [nginxPort, dead] = (await freePorts('127.0.0.4', 2)) as [number, number];
const [echoPort] = (await freePorts('127.0.0.5', 1)) as [number];
const nginx = await startNginx(dir, 'backend', backendConf(dir, '127.0.0.4', nginxPort, bigFile), { ip: '127.0.0.4', port: nginxPort });
await new Promise<void>((r) => echo.listen(echoPort, '127.0.0.5', r));
let failed = false;
try {
  const toNginx = await relay('127.0.0.4', nginxPort);
  const toEcho = await relay('127.0.0.5', echoPort);
  const toNothing = await relay('127.0.0.4', dead);
  const n = `http://127.0.0.6:${toNginx.port}`;
  const e = `http://127.0.0.6:${toEcho.port}`;
  const step = (name: string): void => console.log(`ok  ${name}`);

  assert.equal(await curl(['-H', 'Host: world', `${n}/`]), 'hello world\n');
  const head = await curl(['-i', '-H', 'Host: world', `${n}/`]);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal((head.match(/^Via: 1\.1 hostmesh\r$/gm) ?? []).length, 2, head);
  step("curl through both hops gets nginx's body, with one Via per hop");

  assert.equal(sha(Buffer.from(await curl([`${n}/big`]), 'latin1')), sha(big));
  step('an 8 MiB response (Content-Length) arrives intact');

  assert.match(await curl(['-I', `${n}/`]), /^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 12\r\n/);
  step('HEAD: the head only, Content-Length kept');

  const viaLength = await curl(['--data-binary', `@${upload}`, '-H', 'Expect:', `${e}/`]);
  assert.equal(viaLength, `${body.length} ${sha(body)} length 1.1 hostmesh, 1.1 hostmesh`);
  const viaChunked = await curl(['--data-binary', `@${upload}`, '-H', 'Transfer-Encoding: chunked', '-H', 'Expect: 100-continue', `${e}/`]);
  assert.equal(viaChunked, `${body.length} ${sha(body)} chunked 1.1 hostmesh, 1.1 hostmesh`);
  step('a 1 MiB POST arrives intact, Content-Length and chunked (with Expect: 100-continue)');

  const many = await curl(['-w', '%{http_code} %{num_connects}\\n', ...Array.from({ length: 200 }, () => ['-o', '/dev/null', `${n}/`]).flat()]);
  const lines = many.trim().split('\n');
  assert.equal(lines.length, 200);
  assert.equal(lines[0], '200 1');
  assert.ok(
    lines.slice(1).every((l) => l === '200 0'),
    many,
  );
  step('200 keep-alive requests on one client connection all succeed (one connect)');

  const conflict = await exchange(toNginx.port, 'POST / HTTP/1.1\r\nHost: world\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(conflict, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.equal(conflict.match(/HTTP\/1\.1/g)?.length, 1, conflict);
  const garbage = await exchange(toNginx.port, 'HELLO\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/);
  const badHeader = await exchange(toNginx.port, 'GET / HTTP/1.1\r\nHost: world\r\nX: a\rb\r\n\r\n');
  assert.match(badHeader, /^HTTP\/1\.1 400 Bad Request\r\n/);
  step('parse errors (Content-Length with chunked, garbage, a bare CR in a value): 400, then close');

  // Request smuggling and hostile framing: llhttp's strict mode (kLenientNone) rejects each of
  // these, and the hop answers 400 without forwarding anything.
  const hostile: Record<string, string> = {
    'two different Content-Length': 'POST / HTTP/1.1\r\nHost: world\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'the same Content-Length twice': 'POST / HTTP/1.1\r\nHost: world\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
    'Content-Length: 3, 3': 'POST / HTTP/1.1\r\nHost: world\r\nContent-Length: 3, 3\r\n\r\nabc',
    'Content-Length: +3': 'POST / HTTP/1.1\r\nHost: world\r\nContent-Length: +3\r\n\r\nabc',
    'Transfer-Encoding: chunked then x': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n',
    'Transfer-Encoding: xchunked': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    'Transfer-Encoding: chunked, identity': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    'space before the colon': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'obs-fold': 'GET / HTTP/1.1\r\nHost: world\r\nX: a\r\n b\r\n\r\n',
    'bare LF line ends': 'GET / HTTP/1.1\nHost: world\n\n',
    'NUL in a value': 'GET / HTTP/1.1\r\nHost: world\r\nX: a\0b\r\n\r\n',
    'chunk size 0x3': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n',
    'chunk size overflow': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n',
    'LF alone after chunk data': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n',
    'space after the chunk size': 'POST / HTTP/1.1\r\nHost: world\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n',
    'HTTP/1.2': 'GET / HTTP/1.2\r\nHost: world\r\n\r\n',
    'a 20 KiB header (over 16 KiB)': `GET / HTTP/1.1\r\nHost: world\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`,
    // Left to the server by llhttp; the raw hop checks them itself.
    'no Host in HTTP/1.1': 'GET / HTTP/1.1\r\n\r\n',
    'two Host headers': 'GET / HTTP/1.1\r\nHost: world\r\nHost: other\r\n\r\n',
  };
  const before = echoRequests;
  for (const [name, bytes] of Object.entries(hostile)) {
    const got = await exchange(toEcho.port, bytes);
    assert.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/, `${name}: ${got.slice(0, 80)}`);
    assert.equal(got.match(/HTTP\/1\.1/g)?.length, 1, `${name}: ${got}`);
  }
  assert.match(await exchange(toEcho.port, 'GET / HTTP/2.0\r\nHost: world\r\n\r\n'), /^HTTP\/1\.1 505 /);
  // One good request on the same path after them: the only one the backend may have seen.
  assert.match(await curl([`${e}/`]), /^0 /);
  assert.equal(echoRequests, before + 1);
  step(`${Object.keys(hostile).length} smuggling and hostile-framing requests: 400 each, nothing forwarded; HTTP/2.0 in text: 505`);

  const pipelined = await exchange(toNginx.port, 'GET / HTTP/1.1\r\nHost: world\r\n\r\nGET / HTTP/1.1\r\nHost: world\r\n\r\n');
  assert.equal(pipelined.match(/HTTP\/1\.1 200/g)?.length, 1, pipelined);
  assert.match(pipelined, /hello world\n$/);
  step('a pipelined request is refused: the first is answered, then the connection closes');

  const upgrade = await exchange(toNginx.port, 'GET / HTTP/1.1\r\nHost: world\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
  assert.match(upgrade, /^HTTP\/1\.1 501 /);
  step('Upgrade: 501 (no tunnels in the prototype)');

  const gateway = await curl(['-i', `http://127.0.0.6:${toNothing.port}/`]);
  assert.match(gateway, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  step('nothing listening behind hop B: 502 through hop A');

  // The client reads the head of an endless response and goes: each hop must drop its upstream
  // connection (not pool it), so the backend sees its socket close.
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(toEcho.port, '127.0.0.6', () => s.write('GET /endless HTTP/1.1\r\nHost: world\r\n\r\n'));
    s.once('data', () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
  // A script, not a suite test: a bound so that a kept connection fails instead of hanging.
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error("the backend's connection stayed open after the client went")), 20_000)),
  );
  await Promise.race([endlessGone, stuck]);
  clearTimeout(timer);
  step('client gone mid-response: the upstream connection is destroyed (the backend sees it close)');

  assert.equal(await curl(['-H', 'Host: world', `${n}/`]), 'hello world\n');
  for (const c of [toNginx, toEcho, toNothing]) assert.ok(c.a.exitCode === null && c.b.exitCode === null, 'a hop exited');
  step('every hop is still up and answering');
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  for (const c of children) c.kill();
  echo.close();
  echo.closeAllConnections();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
