// `hostmesh certs init|issue|inspect`: a mesh CA, node or mesh certificates signed by it (SANs,
// v3 extensions, node-forge), a Kubernetes Secret manifest, and an expiry / chain / key report.
// node-forge loads only when a certs command runs (the router process does not need it).
// Exit codes: 0 ok, 1 a certificate problem (expired, expiring, mismatched), 2 usage or a missing
// file.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { printable } from '../config/printable.js';
import { readInputFile } from '../fs/read-input.js';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { CertificateAuthority, Pem } from '../tls/generate.js';
import type { Io } from './run.js';

const stdio: Io = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

class UsageError extends Error {}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function writeFiles(dir: string, files: Record<string, string>, force: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (!force) {
    for (const name of Object.keys(files)) {
      if (await exists(join(dir, name))) throw new UsageError(`${join(dir, name)} exists; pass --force to overwrite`);
    }
  }
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(dir, name), text, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  }
}

function positiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export interface InitOptions {
  out: string;
  commonName: string;
  days: string;
  force?: boolean;
}

async function certsInit(opts: InitOptions, io: Io): Promise<void> {
  const { createCa } = await import('../tls/generate.js');
  const ca = createCa({ commonName: opts.commonName, days: positiveInt(opts.days, '--days') });
  await writeFiles(opts.out, { 'ca.crt': ca.certPem, 'ca.key': ca.keyPem }, opts.force === true);
  io.out(`wrote ${join(opts.out, 'ca.crt')} and ${join(opts.out, 'ca.key')} (CN=${opts.commonName}); keep ca.key secret`);
}

export interface IssueCliOptions {
  caDir: string;
  out?: string;
  mesh: string;
  node?: string;
  ip: string[];
  dns: string[];
  days: string;
  secret?: boolean;
  namespace: string;
  secretName: string;
  force?: boolean;
}

/** A Kubernetes Secret (type kubernetes.io/tls, plus ca.crt) holding a certificate, its key and the CA. */
async function secretManifest(name: string, namespace: string, cert: Pem, caPem: string): Promise<string> {
  const { stringify } = await import('yaml'); // not loaded by `hostmesh run`
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'hostmesh', 'app.kubernetes.io/component': 'mtls' } },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem), 'ca.crt': b64(caPem) },
  });
}

async function certsIssue(opts: IssueCliOptions, io: Io): Promise<void> {
  if (opts.out === undefined && opts.secret !== true) throw new UsageError('give --out DIR, --secret, or both');
  const { issueCertificate, nodeIdentity } = await import('../tls/generate.js');
  const { inspectPem } = await import('../tls/inspect.js');
  for (const ip of opts.ip) if (isIP(ip) === 0) throw new UsageError(`--ip ${JSON.stringify(ip)} is not an IP address`);
  const days = positiveInt(opts.days, '--days');
  let ca: CertificateAuthority;
  try {
    const [certPem, keyPem] = await Promise.all([readFile(join(opts.caDir, 'ca.crt'), 'utf8'), readFile(join(opts.caDir, 'ca.key'), 'utf8')]);
    const [info] = inspectPem(certPem);
    if (info === undefined || !info.isCa) throw new Error(`${join(opts.caDir, 'ca.crt')} is not a CA certificate`);
    ca = { certPem, keyPem, commonName: info.subject };
  } catch (err) {
    throw new UsageError(`cannot load the CA from ${opts.caDir} (run \`hostmesh certs init --out ${opts.caDir}\` first): ${(err as Error).message}`);
  }
  // The mesh name is what peers verify (the client's commonName); the URI SAN names the holder.
  const cert = issueCertificate(ca, {
    commonName: opts.mesh,
    dnsNames: [...new Set([opts.mesh, ...(opts.node !== undefined ? [opts.node] : []), ...opts.dns])],
    ipAddresses: opts.ip,
    uris: [opts.node !== undefined ? nodeIdentity(opts.mesh, opts.node) : `spiffe://${opts.mesh}/mesh`],
    usage: 'both',
    days,
  });
  if (opts.out !== undefined) {
    await writeFiles(opts.out, { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem, 'ca.crt': ca.certPem }, opts.force === true);
    io.err(`wrote ${join(opts.out, 'tls.crt')}, tls.key and ca.crt (CN=${opts.mesh}, ${days} days)`);
  }
  if (opts.secret === true) io.out((await secretManifest(opts.secretName, opts.namespace, cert, ca.certPem)).trimEnd());
}

export interface InspectOptions {
  warnDays: string;
  ca?: string;
  key?: string;
  name?: string;
}

async function readOrNull(path: string, io: Io): Promise<string | null> {
  try {
    // Regular files up to 1 MiB: `inspect /dev/zero` or a FIFO is refused instead of hanging.
    return (await readInputFile(path, 'file')).toString('utf8');
  } catch (err) {
    io.err(printable((err as Error).message));
    return null;
  }
}

/** Reports each certificate; returns the exit code (0 ok, 1 a problem, 2 missing input). */
export async function certsInspect(files: readonly string[], opts: InspectOptions, io: Io, now = new Date()): Promise<number> {
  const warnDays = positiveInt(opts.warnDays, '--warn-days');
  const { describe, expiry, inspectPem } = await import('../tls/inspect.js');
  let problem = false;
  let missing = false;
  const caPem = opts.ca !== undefined ? await readOrNull(opts.ca, io) : undefined;
  const keyPem = opts.key !== undefined ? await readOrNull(opts.key, io) : undefined;
  if (caPem === null || keyPem === null) return 2;
  for (const file of files) {
    const text = await readOrNull(file, io);
    if (text === null) {
      missing = true;
      continue;
    }
    let infos;
    try {
      infos = inspectPem(text);
    } catch (err) {
      io.err(`${file}: not a PEM certificate: ${(err as Error).message}`);
      problem = true;
      continue;
    }
    infos.forEach((info, i) => {
      const verdict = expiry(info, now, warnDays);
      io.out(`${file}${infos.length > 1 ? ` [${i}]` : ''}:`);
      for (const line of describe(info, verdict)) io.out(line);
      if (verdict.kind === 'expired') io.err(`${file}: certificate expired on ${info.notAfter.toISOString()}`);
      if (verdict.kind === 'not-yet-valid') io.err(`${file}: certificate is not valid before ${info.notBefore.toISOString()}`);
      if (verdict.kind === 'expiring') io.err(`${file}: certificate expires in ${verdict.daysLeft} days (warning at ${warnDays})`);
      if (verdict.kind !== 'ok') problem = true;
    });
    const leaf = new X509Certificate(text);
    if (caPem !== undefined) {
      const ca = new X509Certificate(caPem);
      if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) io.out(`  chain:     signed by ${opts.ca}`);
      else {
        io.err(`${file}: not signed by the CA in ${opts.ca} (issuer ${leaf.issuer.replace(/\n/g, ', ')}); peers trusting that CA will refuse it`);
        problem = true;
      }
    }
    if (keyPem !== undefined) {
      let matches = false;
      try {
        matches = leaf.checkPrivateKey(createPrivateKey(keyPem));
      } catch {
        matches = false;
      }
      if (matches) io.out(`  key:       ${opts.key} matches`);
      else {
        io.err(`${file}: the key in ${opts.key} does not belong to this certificate`);
        problem = true;
      }
    }
    if (opts.name !== undefined) {
      const ok = isIP(opts.name) !== 0 ? leaf.checkIP(opts.name) !== undefined : leaf.checkHost(opts.name) !== undefined;
      if (ok) io.out(`  name:      valid for ${opts.name}`);
      else {
        io.err(`${file}: not valid for ${opts.name} (peers verifying that name will refuse it)`);
        problem = true;
      }
    }
  }
  return missing ? 2 : problem ? 1 : 0;
}

export interface IssuerCliOptions {
  caDir: string;
  out?: string;
  days: string;
  bundle: string[];
  secret?: boolean;
  namespace: string;
  force?: boolean;
}

/**
 * The identity issuer's certificate (an intermediate CA under the trust anchor in --ca-dir) and the
 * trust bundle routers verify with: files, and/or a Secret (hostmesh-identity-issuer) and a
 * ConfigMap (hostmesh-trust-bundle) for `kubectl apply -f -`. --bundle adds anchors (a rotation).
 */
async function certsIssuer(opts: IssuerCliOptions, io: Io): Promise<void> {
  if (opts.out === undefined && opts.secret !== true) throw new UsageError('give --out DIR, --secret, or both');
  const { createIntermediateCa } = await import('../tls/generate.js');
  const { inspectPem } = await import('../tls/inspect.js');
  const days = positiveInt(opts.days, '--days');
  let anchor: CertificateAuthority;
  try {
    const [certPem, keyPem] = await Promise.all([readFile(join(opts.caDir, 'ca.crt'), 'utf8'), readFile(join(opts.caDir, 'ca.key'), 'utf8')]);
    const [info] = inspectPem(certPem);
    if (info === undefined || !info.isCa) throw new Error(`${join(opts.caDir, 'ca.crt')} is not a CA certificate`);
    anchor = { certPem, keyPem, commonName: info.subject };
  } catch (err) {
    throw new UsageError(`cannot load the trust anchor from ${opts.caDir} (run \`hostmesh certs init --out ${opts.caDir}\` first): ${(err as Error).message}`);
  }
  const extra: string[] = [];
  for (const f of opts.bundle) {
    const pem = (await readInputFile(f, 'anchor')).toString('utf8');
    if (!inspectPem(pem).every((c) => c.isCa)) throw new UsageError(`--bundle ${f}: not a CA certificate`);
    extra.push(pem.endsWith('\n') ? pem : `${pem}\n`);
  }
  const issuer = createIntermediateCa(anchor, { commonName: 'hostmesh identity issuer', days });
  const bundle = [anchor.certPem, ...extra].join('');
  if (opts.out !== undefined) {
    await writeFiles(opts.out, { 'issuer.crt': issuer.certPem, 'issuer.key': issuer.keyPem, 'ca-bundle.crt': bundle }, opts.force === true);
    io.err(`wrote ${join(opts.out, 'issuer.crt')}, issuer.key and ca-bundle.crt (${days} days)`);
  }
  if (opts.secret === true) {
    const { stringify } = await import('yaml'); // not loaded by `hostmesh run`
    const b64 = (x: string): string => Buffer.from(x).toString('base64');
    const labels = { 'app.kubernetes.io/name': 'hostmesh', 'app.kubernetes.io/component': 'identity' };
    io.out(
      [
        stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'hostmesh-identity-issuer', namespace: opts.namespace, labels },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': b64(issuer.certPem), 'tls.key': b64(issuer.keyPem), 'ca.crt': b64(anchor.certPem) },
        }),
        stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'hostmesh-trust-bundle', namespace: opts.namespace, labels },
          data: { 'ca-bundle.crt': bundle },
        }),
      ]
        .join('---\n')
        .trimEnd(),
    );
  }
}

async function guarded(io: Io, body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? 0;
  } catch (err) {
    io.err(`hostmesh certs: ${(err as Error).message}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}

const repeat = (v: string, acc: string[]): string[] => [...acc, v];

export function registerCerts(program: Command, io: Io = stdio): void {
  const certs = program.command('certs').description('make and check mesh certificates (mutual TLS between routers)');
  certs
    .command('init')
    .description('create a mesh CA (ca.crt, ca.key) in --out')
    .requiredOption('--out <dir>', 'directory for ca.crt and ca.key')
    .option('--cn <name>', 'CA common name', 'hostmesh CA')
    .option('--days <n>', 'validity in days', '3650')
    .option('--force', 'overwrite existing files')
    .action((o: { out: string; cn: string; days: string; force?: boolean }) =>
      guarded(io, () => certsInit({ out: o.out, commonName: o.cn, days: o.days, ...(o.force ? { force: true } : {}) }, io)),
    );
  certs
    .command('issue')
    .description('issue a mesh (or, with --node, a node) certificate signed by the CA in --ca-dir')
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .option('--out <dir>', 'write tls.crt, tls.key and ca.crt here')
    .option('--mesh <name>', 'mesh name: the CN and DNS SAN peers verify (client tls commonName)', 'hostmesh')
    .option('--node <name>', 'node name: adds it as DNS SAN and spiffe://<mesh>/node/<name> as identity')
    .option('--ip <address>', 'IP SAN (repeatable)', repeat, [] as string[])
    .option('--dns <name>', 'extra DNS SAN (repeatable)', repeat, [] as string[])
    .option('--days <n>', 'validity in days', '365')
    .option('--secret', 'print a Kubernetes Secret manifest (tls.crt, tls.key, ca.crt) on stdout')
    .option('--namespace <ns>', 'namespace of the Secret', 'hostmesh')
    .option('--secret-name <name>', 'name of the Secret', 'hostmesh-tls')
    .option('--force', 'overwrite existing files')
    .action((o: IssueCliOptions) => guarded(io, () => certsIssue(o, io)));
  certs
    .command('issuer')
    .description("the identity issuer's certificate, signed by the trust anchor in --ca-dir, and the routers' trust bundle")
    .requiredOption('--ca-dir <dir>', 'directory holding the trust anchor (ca.crt, ca.key from `certs init`)')
    .option('--out <dir>', 'write issuer.crt, issuer.key and ca-bundle.crt here')
    .option('--days <n>', 'validity in days', '365')
    .option('--bundle <file>', 'another anchor to keep in the trust bundle during a rotation (repeatable)', repeat, [] as string[])
    .option('--secret', 'print the Secret hostmesh-identity-issuer and the ConfigMap hostmesh-trust-bundle on stdout')
    .option('--namespace <ns>', 'namespace of the manifests', 'hostmesh')
    .option('--force', 'overwrite existing files')
    .action((o: IssuerCliOptions) => guarded(io, () => certsIssuer(o, io)));
  certs
    .command('inspect')
    .description('show certificates and report expiry; with --ca, --key, --name also check chain, key and name')
    .argument('<files...>', 'PEM certificate files')
    .option('--warn-days <n>', 'exit 1 when a certificate expires within this many days', '30')
    .option('--ca <file>', 'check each certificate is signed by this CA')
    .option('--key <file>', 'check this private key belongs to the certificate')
    .option('--name <name>', 'check the certificate is valid for this DNS name or IP')
    .action((files: string[], o: InspectOptions) => guarded(io, () => certsInspect(files, o, io)));
}
