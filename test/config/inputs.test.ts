// Hostile config inputs through the CLI's commands (`hostmesh run --check`, `hostmesh dtab check`,
// `hostmesh certs inspect`): files that are secrets, FIFOs, devices or huge; keys with terminal
// escapes; inputs that used to throw. `run --check` and `certs inspect` run in-process (runCheck,
// what the binary's action calls, and the certs command's definition; their binary runs are in
// test/cli/); `dtab check` runs through the binary, its one child run in the suite.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createCa, issueNodeCertificate } from '../../src/tls/generate.js';
import { runCertsInProcess, runCli, runInProcess, type CliResult } from '../helpers/cli.js';
import { runCheck } from '../../src/cli/run.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-inputs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

// What a pod's filesystem holds that must never reach a log: a service-account token, a shadow line.
const TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldC1rZXktaWQifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl';
const SHADOW = 'root:$6$saltsalt$SECRETHASHSECRETHASH:19000:0:99999:7:::';
await writeFile(join(dir, 'token'), TOKEN);
await writeFile(join(dir, 'shadow'), `${SHADOW}\ndaemon:*:19000:0:99999:7:::\n`);
await writeFile(join(dir, 'typo.dtab'), '/svc => /#/io.l5d.fs;\n/host =>> /svc;\n');
await writeFile(join(dir, 'huge.dtab'), '/svc => /#/io.l5d.fs;\n'.repeat(60_000)); // 1.3 MB, parses
await mkdir(join(dir, 'a-directory'));
execFileSync('mkfifo', [join(dir, 'fifo')]);
execFileSync('mkfifo', [join(dir, 'config-fifo.yaml')]);

const ca = createCa({ commonName: 'test CA', days: 1 });
const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-1', ip: '127.0.0.1' }, 1);
await writeFile(join(dir, 'ca.pem'), ca.certPem);
await writeFile(join(dir, 'cert.pem'), node.certPem);
await writeFile(join(dir, 'open.key'), node.keyPem);
await chmod(join(dir, 'open.key'), 0o644);
await writeFile(join(dir, 'closed.key'), node.keyPem);
await chmod(join(dir, 'closed.key'), 0o600);

async function config(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

const router = (label: string, dtabFile: string, port: number): string => `
- protocol: http
  label: ${label}
  dtabFile: ${dtabFile}
  servers: [{port: ${port}}]`;
const inputFiles = await config(
  'files.yaml',
  `routers:${[
    ['token', 'token'],
    ['shadow', 'shadow'],
    ['fifo', 'fifo'],
    ['zero', '/dev/zero'],
    ['huge', 'huge.dtab'],
    ['dir', 'a-directory'],
    ['typo', 'typo.dtab'],
  ]
    .map(([label, file], i) => router(label as string, file as string, 4140 + i))
    .join('')}\n`,
);
const escapes = await config(
  'escapes.yaml',
  `routers:
- protocol: http
  "\\e[31mred\\e[0m": 1
  servers:
  - port: 4141
    tls:
      certPath: cert.pem
      keyPath: closed.key
      protocols: [TLSv1.2, TLSv9]
      ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, NOT_A_CIPHER]
`,
);
const linkerd1Tls = await config(
  'linkerd1-tls.yaml',
  `routers:
- protocol: http
  servers:
  - port: 4141
    tls:
      certPath: cert.pem
      keyPath: open.key
      caCertPath: ca.pem
      requireClientAuth: true
      protocols: [TLSv1.1, TLSv1.2]
      ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA]
  client:
    tls:
      commonName: hostmesh
      trustCerts: [ca.pem]
      clientAuth: {certPath: cert.pem, keyPath: closed.key}
      protocols: [TLSv1.3]
`,
);
// A YAML alias bomb: the yaml library refuses it by throwing while building the value.
let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
for (let i = 1; i < 12; i++)
  bomb += `a${i}: &a${i} [${Array(9)
    .fill(`*a${i - 1}`)
    .join(', ')}]\n`;
const aliasBomb = await config('bomb.yaml', `${bomb}routers:\n- protocol: http\n  servers: [{port: 4140}]\n`);

// Every command at once (the one child, `dtab check`, started with them).
const dtabInputs = [join(dir, 'fifo'), '/dev/zero', join(dir, 'token'), join(dir, 'typo.dtab'), join(dir, 'huge.dtab')];
const check = (file: string): Promise<CliResult> => runInProcess((io) => runCheck(file, [], io), 40_000);
const [files, esc, l1, thrown, fifoConfig, dtabCheck, inspect] = (await Promise.all([
  check(inputFiles),
  check(escapes),
  check(linkerd1Tls),
  check(aliasBomb),
  check(join(dir, 'config-fifo.yaml')),
  runCli(['dtab', 'check', ...dtabInputs], {}, 40_000),
  runCertsInProcess(['certs', 'inspect', join(dir, 'fifo')]),
])) as [CliResult, CliResult, CliResult, CliResult, CliResult, CliResult, CliResult];

function noSecrets(t: Test, r: CliResult): void {
  const all = r.stdout + r.stderr;
  t.notMatch(all, /eyJ|c2lnbmF0dXJl|SECRETHASH|saltsalt|root:/, 'no content of a secret file is printed');
  t.notMatch(all, /PRIVATE KEY|MII/, 'no key material is printed');
  t.notMatch(all, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
  t.notMatch(all, /\x1b/, 'no raw terminal escape');
}

t.test('run --check: a dtabFile that is a secret, a FIFO, a device, a directory or too large', async (t) => {
  t.equal(files.code, 1, 'exits 1 (never hangs on the FIFO or reads /dev/zero forever)');
  t.equal(files.signal, null);
  noSecrets(t, files);
  const err = files.stderr;
  t.match(err, /token:1:1: .*not .*dtab/, 'the token file: its position and the error kind, no excerpt');
  t.match(err, /shadow:1:\d+: .*not .*dtab/, 'the shadow file: position and kind');
  t.match(err, /fifo.*not a regular file/);
  t.match(err, /\/dev\/zero.*not a regular file/);
  t.match(err, /a-directory.*not a regular file/);
  t.match(err, /huge\.dtab.*larger than 1 MiB/);
  t.match(err, /typo\.dtab:2:8: .*'=>>'|typo\.dtab:2:\d+: .*at '.*\/host =>/, 'a file that is a dtab up to the error gets its excerpt');
});

t.test('dtab check: the same inputs', async (t) => {
  t.equal(dtabCheck.signal, null);
  t.not(dtabCheck.code, 0);
  noSecrets(t, dtabCheck);
  t.match(dtabCheck.stderr, /fifo.*not a regular file/);
  t.match(dtabCheck.stderr, /\/dev\/zero.*not a regular file/);
  t.match(dtabCheck.stderr, /token:1:1: .*not .*dtab/);
  t.match(dtabCheck.stderr, /typo\.dtab:2:\d+: .*\/host =/);
  t.match(dtabCheck.stderr, /huge\.dtab.*larger than 1 MiB/);
});

t.test('certs inspect: a FIFO is refused, not waited on', async (t) => {
  t.equal(inspect.signal, null, 'not killed by the timeout');
  t.equal(inspect.code, 2);
  t.match(inspect.stderr, /fifo is not a regular file/);
});

t.test('run --check: the config itself is a FIFO', async (t) => {
  t.equal(fifoConfig.signal, null, 'not killed by the timeout');
  t.equal(fifoConfig.code, 1);
  t.match(fifoConfig.stderr, /config-fifo\.yaml.*not a regular file/);
});

t.test('terminal escapes in keys are escaped; unknown TLS protocol and cipher names are file:line:col errors', async (t) => {
  t.equal(esc.code, 1);
  noSecrets(t, esc);
  t.match(esc.stderr, /escapes\.yaml:3:3: .*\\x1b\[31mred\\x1b\[0m/, 'the key as \\x1b[31m...');
  t.match(esc.stderr, /escapes\.yaml:9:\d+: .*protocols\[1\].*TLSv9/);
  t.match(esc.stderr, /escapes\.yaml:10:\d+: .*ciphers\[1\].*NOT_A_CIPHER/);
});

t.test('a Linkerd 1 TLS config runs; weak choices and an open private key are warned about', async (t) => {
  t.equal(l1.code, 0, l1.stderr);
  noSecrets(t, l1);
  t.match(l1.stderr, /warning: .*linkerd1-tls\.yaml:\d+:\d+: .*TLSv1\.1.*not offered/);
  t.match(l1.stderr, /warning: .*linkerd1-tls\.yaml:\d+:\d+: .*TLS_RSA_WITH_AES_128_CBC_SHA.*forward secrecy/);
  t.match(l1.stderr, /warning: .*open\.key.*readable by/, 'the world-readable key is named');
  t.notMatch(l1.stderr, /closed\.key/, 'a 0600 key is not');
});

t.test('an unexpected exception while loading is one line', async (t) => {
  t.equal(thrown.code, 1);
  noSecrets(t, thrown);
  t.equal(thrown.stderr.trim().split('\n').length, 1, thrown.stderr);
  t.match(thrown.stderr, /bomb\.yaml: cannot load config: .*alias/);
});
