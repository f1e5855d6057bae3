// `hostmesh run -c config.yaml [--check] [--set k=v]`: what the DaemonSet runs. --check validates
// the config, its dtabs and certificate files, and exits 0/1 without opening a port.

import type { Command } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { loadConfigOffThread } from '../config/load-off-thread.js';
import type { HostmeshConfig } from '../config/types.js';
import { createLogger } from '../log.js';
import type { Hostmesh } from '../app/hostmesh.js';
import { anyPurposeWarnings, clientTlsOptions, keyFileWarnings, serverTlsOptions, tlsKeyFiles } from '../tls/tls-files.js';
import { printable } from '../config/printable.js';
import { readInputFileSync } from '../fs/read-input.js';
import { checkNotes } from './check-notes.js';
import { askPrimaryToShutdown, joinPrimary, runPrimary, workerConfig, workerCount, workerSlot, workerWarnings } from '../app/workers.js';
import { systemClock } from '../core/clock.js';
import { settleAfterStart } from '../app/settle-heap.js';
import type { OptimizerHold } from '../app/optimizer-gate.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const stdio: Io = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** Expired or not-yet-valid certificates in a PEM file (problems), or ones close to expiry (warnings). */
function checkValidity(
  inspect: typeof import('../tls/inspect.js'),
  path: string,
  what: string,
  problems: string[],
  warnings: string[],
  now = new Date(),
): void {
  const { inspectPem, expiry } = inspect;
  let infos;
  try {
    infos = inspectPem(readInputFileSync(path, what).toString('utf8'));
  } catch {
    return; // unreadable or unparsable: serverTlsOptions/clientTlsOptions report it
  }
  for (const info of infos) {
    const v = expiry(info, now, 30);
    const label = `${what} ${path} (${info.subject})`;
    if (v.kind === 'expired') problems.push(`${label} expired on ${info.notAfter.toISOString()}`);
    else if (v.kind === 'not-yet-valid') problems.push(`${label} is not valid before ${info.notBefore.toISOString()}`);
    else if (v.kind === 'expiring') warnings.push(`${label} expires in ${v.daysLeft} days`);
  }
}

/** Every private key file the config names, once (routers often share one). */
function allKeyFiles(config: HostmeshConfig): string[] {
  return [
    ...new Set(
      config.routers.flatMap((r) => [
        ...tlsKeyFiles(
          r.servers.map((s) => s.tls),
          r.client.tls,
        ),
        ...(r.client.configs ?? []).flatMap((c) => tlsKeyFiles([], c.tls)),
      ]),
    ),
  ];
}

/** Own certificates without extended key usage (any purpose, RFC 5280), once per file and purpose. */
function allAnyPurposeWarnings(config: HostmeshConfig): string[] {
  return [
    ...new Set(
      config.routers.flatMap((r) => [
        ...anyPurposeWarnings(
          r.servers.map((s) => s.tls),
          r.client.tls,
        ),
        ...(r.client.configs ?? []).flatMap((c) => anyPurposeWarnings([], c.tls)),
      ]),
    ),
  ];
}

/**
 * Problems with the certificate files the config names (readable, parseable, key matches cert,
 * within validity); certificates expiring within 30 days are warnings.
 */
export async function checkTlsFiles(config: HostmeshConfig, warnings: string[] = []): Promise<string[]> {
  // node-forge is loaded for --check only, not in the running router.
  const inspect = await import('../tls/inspect.js');
  const problems: string[] = [];
  warnings.push(...keyFileWarnings(allKeyFiles(config)));
  warnings.push(...allAnyPurposeWarnings(config));
  for (const r of config.routers) {
    for (const s of r.servers) {
      if (s.tls === undefined) continue;
      if (s.tls.certPath !== undefined) checkValidity(inspect, s.tls.certPath, `router ${r.label} server :${s.port} certificate`, problems, warnings);
      if (s.tls.caCertPath !== undefined) checkValidity(inspect, s.tls.caCertPath, `router ${r.label} server :${s.port} CA`, problems, warnings);
      try {
        serverTlsOptions(s.tls); // builds and checks the context
      } catch (err) {
        problems.push(`router ${r.label} server :${s.port} tls: ${(err as Error).message}`);
      }
    }
    // The global client TLS and each io.l5d.static prefix's (a prefix's files are read when its first client connects).
    const clientTls = [
      ...(r.client.tls !== undefined ? [{ what: `router ${r.label} client`, t: r.client.tls }] : []),
      ...(r.client.configs ?? []).flatMap((c) => (c.tls !== undefined ? [{ what: `router ${r.label} client ${c.prefix}`, t: c.tls }] : [])),
    ];
    for (const { what, t } of clientTls) {
      if (t.clientAuth !== undefined) checkValidity(inspect, t.clientAuth.certPath, `${what} certificate`, problems, warnings);
      for (const ca of [...(t.trustCerts ?? []), ...(t.trustCertsBundle !== undefined ? [t.trustCertsBundle] : [])]) {
        checkValidity(inspect, ca, `${what} trusted CA`, problems, warnings);
      }
      try {
        clientTlsOptions(t); // builds and checks the context
      } catch (err) {
        problems.push(`${what} tls: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

/** The authorization policy file, parsed as the router parses it at start (file:line:col problems). */
async function checkPolicy(config: HostmeshConfig): Promise<string[]> {
  if (config.authz === undefined) return [];
  const { loadPolicyFile } = await import('../authz/policy-watcher.js');
  const { PolicyError } = await import('../authz/policy.js');
  try {
    await loadPolicyFile(config.authz.policyFile);
    return [];
  } catch (err) {
    if (err instanceof PolicyError) return [...err.problems];
    throw err;
  }
}

export async function runCheck(file: string, set: string[], io: Io = stdio, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    // In-process: a check is one-shot (the running router loads its config off-thread).
    const { loadConfig } = await import('../config/load.js');
    const { config, warnings } = await loadConfig(file, { set, env });
    const tlsWarnings: string[] = [];
    const { checkRouters } = await import('../app/hostmesh.js');
    const problems = [...checkRouters(config, env), ...(await checkTlsFiles(config, tlsWarnings)), ...(await checkPolicy(config))];
    for (const w of [...warnings, ...tlsWarnings]) io.err(printable(`warning: ${w}`));
    for (const p of problems) io.err(printable(`${file}: ${p}`));
    if (problems.length > 0) return 1;
    io.out(printable(`${file}: ok (${config.routers.length} router(s): ${config.routers.map((r) => r.label).join(', ')})`));
    for (const note of checkNotes(config, warnings, env)) io.out(printable(note));
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.err(p);
      return 1;
    }
    // Nothing else is expected; still one line (an operator's terminal, not a stack trace).
    io.err(printable(`${file}: cannot check: ${((err as Error).message ?? String(err)).split('\n')[0]}`));
    return 1;
  }
}

/** `hold`: TurboFan held since start (cli/optimizer-hold.ts); the router turns it on under load. */
export function registerRun(program: Command, hold?: OptimizerHold): void {
  program
    .command('run')
    .description('run the router (what the DaemonSet runs)')
    .requiredOption('-c, --config <file>', 'router config (YAML, Linkerd 1 shape)')
    .option('--check', 'validate config, dtabs and certificate files, then exit 0/1')
    .option('--set <key=value>', 'override a config value (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (opts: { config: string; check?: boolean; set: string[] }) => {
      if (opts.check) {
        process.exitCode = await runCheck(opts.config, opts.set);
        return;
      }
      const slot = workerSlot();
      const logger = slot === undefined ? createLogger() : createLogger().child({ worker: slot });
      let loaded;
      try {
        loaded = await loadConfigOffThread(opts.config, { set: opts.set });
      } catch (err) {
        if (err instanceof ConfigError) {
          for (const p of err.problems) process.stderr.write(p + '\n');
          process.exitCode = 1;
          return;
        }
        throw err;
      }
      // workers: N (docs/cores.md): this process supervises N workers, each re-running this command.
      const workers = workerCount(loaded.config.workers);
      if (slot === undefined && workers > 1) {
        for (const w of loaded.warnings) logger.warn(w);
        for (const w of workerWarnings(loaded.config, workers)) logger.warn(w);
        runPrimary(workers, systemClock, logger);
        return;
      }
      if (slot === undefined || slot === 0) {
        for (const w of loaded.warnings) logger.warn(w);
        for (const w of keyFileWarnings(allKeyFiles(loaded.config))) logger.warn(w);
        for (const w of allAnyPurposeWarnings(loaded.config)) logger.warn(w);
      }
      let mesh: Hostmesh;
      try {
        // Loaded here, not at the top: a `workers: N` primary never starts a mesh and stays small.
        const { startHostmesh } = await import('../app/hostmesh.js');
        mesh = await startHostmesh(slot === undefined ? loaded.config : workerConfig(loaded.config, slot), {
          logger,
          ...(slot !== undefined ? { adminListener: slot === 0, shutdown: askPrimaryToShutdown } : {}),
        });
      } catch (err) {
        // A port in use, unreadable certificates, a transformer without a node name: say which,
        // and exit non-zero so the kubelet restarts us with the reason in the log.
        logger.error({ err }, 'cannot start');
        process.stderr.write(`hostmesh: cannot start: ${(err as Error).message}\n`);
        process.exit(1);
      }
      // TurboFan waits for load (app/optimizer-gate.ts): an idle router does not map its code.
      const cancelHold =
        hold?.watchLoad(systemClock, (utilization) => logger.info({ utilization: Math.round(utilization * 100) / 100 }, 'busy: optimizing compiler on')) ??
        (() => undefined);
      // Start-up's garbage, collected once (app/settle-heap.ts): idle RSS settles in seconds.
      const cancelSettle = settleAfterStart(systemClock, (r) => {
        const mb = (n: number): number => Math.round(n / 104857.6) / 10;
        logger.debug({ ok: r.ok, heapTotalMb: mb(r.heapBefore), afterMb: mb(r.heapAfter), ms: Math.round(r.ms) }, 'start-up garbage collected');
      });
      const stop = (signal: string): void => {
        cancelSettle();
        cancelHold();
        logger.info({ signal, graceMs: loaded.config.shutdownGraceMs }, 'draining');
        void mesh.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      if (slot !== undefined) {
        // A worker whose primary is gone drains and exits, rather than serve unsupervised.
        process.once('disconnect', () => stop('primary gone'));
        joinPrimary(mesh, slot, systemClock);
      }
    });
}
