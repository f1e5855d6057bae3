// `hostmesh run` as the DaemonSet runs it: --check validates config, dtabs and certificate files
// (PKCS#8 and PKCS#1 keys) and exits 0/1; a running router serves, drains and exits 0 on SIGTERM;
// a config error or an impossible start exits 1 with the reason. Where the process boundary is
// what is tested (exit codes, signals, the binary's own output) the CLI runs as a child, those
// children started together; --check's cases call its command function in-process (runCheck,
// what `run --check` calls), so the file stays cheap on a loaded machine.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import t from 'tap';
import { once } from 'node:events';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueNodeCertificate } from '../../src/tls/generate.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { cliIsBuilt, runCli, spawnCli } from '../helpers/cli.js';
import { runCheck } from '../../src/cli/run.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-run-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const ca = createCa({ commonName: 'test CA', days: 1 });
const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-1', ip: '127.0.0.1' }, 1);
await writeFile(join(dir, 'ca.pem'), ca.certPem);
await writeFile(join(dir, 'cert.pem'), node.certPem);
await writeFile(join(dir, 'key.pk8'), node.keyPem);
await writeFile(join(dir, 'key.pk1'), createPrivateKey(node.keyPem).export({ type: 'pkcs1', format: 'pem' }).toString());
const other = issueNodeCertificate(createCa({ commonName: 'other', days: 1 }), 'hostmesh', { name: 'x' }, 1);
await writeFile(join(dir, 'other-key.pem'), other.keyPem);
await writeFile(join(dir, 'garbage.pem'), 'not a certificate\n');
await writeFile(join(dir, 'mesh.dtab'), '/svc => /$/inet/127.0.0.1/1;\n');

function config(ports: { out: number; inc: number; admin: number }, keyFile = 'key.pk8', certFile = 'cert.pem'): string {
  return `
admin: {ip: 127.0.0.1, port: ${ports.admin}}
nodeName: node-1
shutdownGraceMs: 3000
routers:
- protocol: http
  label: outgoing
  dtabFile: mesh.dtab
  servers: [{port: ${ports.out}, ip: 127.0.0.1}]
  client:
    tls:
      commonName: hostmesh
      trustCerts: [ca.pem]
      clientAuth: {certPath: ${certFile}, keyPath: ${keyFile}}
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/1;
  interpreter:
    transformers: [{kind: io.l5d.k8s.localnode}]
  servers:
  - port: ${ports.inc}
    ip: 127.0.0.1
    tls: {certPath: ${certFile}, keyPath: ${keyFile}, caCertPath: ca.pem, requireClientAuth: true}
`;
}

async function writeConfig(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

const dummy = { out: 1, inc: 2, admin: 3 };

/** Polls a child router's admin port until /ready answers 200 (30 s at most); its last status. */
async function readyStatus(admin: number): Promise<number> {
  let ready = 0;
  for (let i = 0; i < 300 && ready !== 200; i++) {
    ready = await request({ host: '127.0.0.1', port: admin, path: '/ready' }).then(
      (r) => r.status,
      () => 0,
    );
    if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  return ready;
}

/** `hostmesh run -c <file> --check [--set ...]` in-process: its exit code and output lines. */
async function check(file: string, set: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCheck(file, set, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

t.test('--check accepts PKCS#8 and PKCS#1 keys', async (t) => {
  const keys = ['key.pk8', 'key.pk1'];
  const files = await Promise.all(keys.map((key) => writeConfig(`ok-${key}.yaml`, config(dummy, key))));
  const results = await Promise.all(files.map((file) => check(file)));
  results.forEach((r, i) => {
    t.equal(r.code, 0, `${keys[i]}: exit 0 (${r.stderr})`);
    t.match(r.stdout, /ok \(2 router\(s\): outgoing, incoming\)/);
  });
});

t.test('--check refuses bad certificate files and bad config, naming the problem', async (t) => {
  const mismatch = await writeConfig('mismatch.yaml', config(dummy, 'other-key.pem'));
  const garbage = await writeConfig('garbage.yaml', config(dummy, 'key.pk8', 'garbage.pem'));
  const missing = await writeConfig('missing.yaml', config(dummy, 'nope.key'));
  const unknown = await writeConfig('unknown.yaml', config(dummy) + 'colour: blue\n');
  const [rMismatch, rGarbage, rMissing, rUnknown, rBanana] = await Promise.all([
    check(mismatch),
    check(garbage),
    check(missing),
    check(unknown),
    check(unknown, ['routers.0.servers.0.port=banana']),
  ]);
  t.equal(rMismatch.code, 1, 'a key that does not match its certificate');
  t.match(rMismatch.stderr, /router outgoing client tls|router incoming server/);
  t.equal(rGarbage.code, 1, 'a certificate file that is not PEM');
  t.equal(rMissing.code, 1, 'a missing key file');
  t.match(rMissing.stderr, /nope\.key/);
  t.equal(rUnknown.code, 1);
  t.match(rUnknown.stderr, /unknown\.yaml:\d+:1: colour: unknown key/);
  t.equal(rBanana.code, 1);
  t.match(rBanana.stderr, /routers\[0\]\.servers\[0\]\.port/);
});

t.test('--set fixes a config for a check outside the cluster', async (t) => {
  const file = await writeConfig('paths.yaml', config(dummy).replace(/key\.pk8/g, '/etc/hostmesh/tls/key.pk8'));
  let r = await check(file);
  t.equal(r.code, 1, 'the in-cluster path does not exist here');
  r = await check(file, [`routers.0.client.tls.clientAuth.keyPath=${join(dir, 'key.pk8')}`, `routers.1.servers.0.tls.keyPath=${join(dir, 'key.pk8')}`]);
  t.equal(r.code, 0, r.stderr);
});

t.test('run serves, then drains and exits 0 on SIGTERM', async (t) => {
  const [out, inc, admin] = (await freePorts('127.0.0.1', 3)) as [number, number, number];
  const file = await writeConfig('live.yaml', config({ out, inc, admin }));
  const child = spawnCli(['run', '-c', file], { HOSTMESH_LOG_LEVEL: 'info' });
  let exited = false;
  child.on('exit', () => (exited = true));
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  t.equal(await readyStatus(admin), 200, '/ready answers 200');
  const r = await request({ host: '127.0.0.1', port: out, path: 'http://nowhere/' });
  t.equal(r.status, 502, 'the outgoing router answers (its dtab names a closed port)');
  t.match(r.headers['l5d-err'], /127\.0\.0\.1/);
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 0);
});

t.test('run holds the optimizing compiler until the router is busy, then says so in its log', async (t) => {
  const [out, inc, admin] = (await freePorts('127.0.0.1', 3)) as [number, number, number];
  const file = await writeConfig('busy.yaml', config({ out, inc, admin }));
  const child = spawnCli(['run', '-c', file], { HOSTMESH_LOG_LEVEL: 'info' });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.equal(await readyStatus(admin), 200, '/ready answers 200');
  // Load: eight requests at a time, each answered 502 (the dtab names a closed port), until the
  // router reports the compiler on (a busy second), or 60 s of it.
  const until = Date.now() + 60_000;
  const on = (): boolean => log.includes('busy: optimizing compiler on');
  const worker = async (): Promise<void> => {
    while (!on() && Date.now() < until) await request({ host: '127.0.0.1', port: out, path: 'http://nowhere/' }).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  t.ok(on(), 'the log says the compiler went on under load');
  // Rounded to two places: a second fully busy under this load reads 1.
  const u = Number(/"utilization":([\d.]+)/.exec(log)?.[1]);
  // At least the share that counts as work (0.02; a busy second alone decides at 0.1).
  t.ok(u >= 0.02 && u <= 1, `with the busy share of the second that decided it (${u})`);
});

// Needs the CLI started as npm test and CI start it: built, and with no module loader of the test
// runner's put in front of it (`npx tap <file>` adds its process-tracking hook to every child node,
// and resolving that hook's modules comes before the hold).
const frontLoaded = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].some((a) => a.includes('processinfo'));
const notAsShipped = !cliIsBuilt()
  ? 'the CLI runs under the TypeScript loader, whose work comes before the hold'
  : frontLoaded
    ? "tap's process-tracking hook loads before the CLI in every child (run it with npm test)"
    : false;
t.test('a router that is up has had nothing compiled by TurboFan: the hold is in place before any module is resolved', { skip: notAsShipped }, async (t) => {
  /** TurboFan's work (V8's --trace-opt lines) in a `hostmesh run` child by the time /ready answers. */
  const optimizedByReady = async (name: string, flags: string[]): Promise<number> => {
    const [out, inc, admin] = (await freePorts('127.0.0.1', 3)) as [number, number, number];
    const file = await writeConfig(`${name}.yaml`, config({ out, inc, admin }));
    const child = spawnCli(['run', '-c', file], {}, ['--trace-opt', ...flags]);
    let trace = '';
    child.stdout?.on('data', (d: Buffer) => (trace += d.toString()));
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    t.equal(await readyStatus(admin), 200, `${name}: /ready answers 200`);
    const n = (trace.match(/for optimization to TURBOFAN|completed optimizing/g) ?? []).length;
    child.kill('SIGKILL');
    return n;
  };
  t.ok((await optimizedByReady('unheld', ['--turbofan'])) > 0, 'control: started with --turbofan (no hold), start-up alone makes TurboFan compile');
  t.equal(await optimizedByReady('held', []), 0, 'held: nothing marked or compiled for TurboFan by the time /ready answers');
});

// The exits of the binary itself, children started together (each costs its start-up time).
t.test('the binary: an impossible start exits 1 with the reason, before serving; usage errors exit 2; --check exits 0', async (t) => {
  const [out, inc, admin] = (await freePorts('127.0.0.1', 3)) as [number, number, number];
  const file = await writeConfig('nonode.yaml', config({ out, inc, admin }).replace('nodeName: node-1\n', ''));
  const bad = await writeConfig('bad.yaml', 'routers: 3\n');
  const good = await writeConfig('bin-ok.yaml', config(dummy));
  const [r, r2, usage, checked] = await Promise.all([
    runCli(['run', '-c', file], { NODE_NAME: '' }),
    runCli(['run', '-c', bad]),
    runCli(['run']),
    runCli(['run', '-c', good, '--check']),
  ]);
  t.equal(r.code, 1);
  t.match(r.stderr, /localnode needs the node name/);

  t.equal(r2.code, 1);
  t.match(r2.stderr, /bad\.yaml:1:10: routers: /);

  t.equal(usage.code, 2, 'usage errors exit 2');
  t.match(usage.stderr, /--config/);

  t.equal(checked.code, 0, `--check through the binary: exit 0 (${checked.stderr})`);
  t.match(checked.stdout, /ok \(2 router\(s\): outgoing, incoming\)/);
});
