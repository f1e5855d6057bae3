// How to reach the Kubernetes API: in-cluster (service account token re-read from its file on
// every request, so rotation needs no restart; the cluster CA), a kubeconfig for development
// (client certificates or tokens), or plain host:port HTTP for a `kubectl proxy` (Linkerd 1).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export interface K8sConnection {
  /** e.g. https://10.96.0.1:443 or http://localhost:8001 */
  readonly baseUrl: string;
  /** TLS material for https (CA to trust, client certificate). */
  readonly tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean; servername?: string };
  /** The Authorization header for the next request (re-read each time: tokens rotate). */
  readonly authorization?: () => Promise<string | undefined>;
  /** Where this came from, for logs. */
  readonly describe: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

function hostPort(host: string, port: string | number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Plain HTTP to host:port (a `kubectl proxy` sidecar, as Linkerd 1 DaemonSet configs use). */
export function plainConnection(host: string, port: number): K8sConnection {
  return { baseUrl: `http://${hostPort(host, port)}`, describe: `http proxy ${hostPort(host, port)}` };
}

/** In-cluster: KUBERNETES_SERVICE_HOST/PORT, the projected token and the cluster CA. */
export function inClusterConnection(env: NodeJS.ProcessEnv = process.env, saDir = SA_DIR): K8sConnection {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  if (host === undefined || host === '') {
    throw new Error('not running in a cluster (KUBERNETES_SERVICE_HOST is not set): set KUBECONFIG or the namer host/port');
  }
  const tokenFile = join(saDir, 'token');
  return {
    baseUrl: `https://${hostPort(host, port)}`,
    tls: { ca: readFileSync(join(saDir, 'ca.crt'), 'utf8') },
    authorization: async () => `Bearer ${(await readFile(tokenFile, 'utf8')).trim()}`,
    describe: `in-cluster ${hostPort(host, port)}`,
  };
}

type Kv = Record<string, unknown>;

/** A named entry's value in a kubeconfig list (`clusters[].cluster`, `users[].user`, ...). */
function pick(list: unknown, name: string, key: string): Kv | undefined {
  if (!Array.isArray(list)) return undefined;
  const e = (list as (Kv | null)[]).find((x) => x !== null && x['name'] === name);
  const v = e?.[key];
  return v !== null && typeof v === 'object' ? (v as Kv) : undefined;
}

function str(o: Kv | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Reads inline `*-data` (base64) or a file path (relative to the kubeconfig's directory). */
function material(o: Kv | undefined, key: string, base: string): string | undefined {
  const data = str(o, `${key}-data`);
  if (data !== undefined) return Buffer.from(data, 'base64').toString('utf8');
  const file = str(o, key);
  if (file === undefined) return undefined;
  return readFileSync(isAbsolute(file) ? file : resolve(base, file), 'utf8');
}

/** A kubeconfig's current (or given) context: server, CA, client certificate or token. */
export function kubeconfigConnection(file: string, context?: string): K8sConnection {
  // Required here, not imported: in-cluster routers never read a kubeconfig, and the YAML parser
  // would hold ~1 MB of their heap (docs/memory.md).
  const { parse: parseYaml } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const doc = parseYaml(readFileSync(file, 'utf8')) as Kv | null;
  if (doc === null || typeof doc !== 'object') throw new Error(`${file}: not a kubeconfig`);
  const base = dirname(resolve(file));
  const ctxName = context ?? str(doc, 'current-context');
  if (ctxName === undefined) throw new Error(`${file}: no current-context`);
  const ctx = pick(doc['contexts'], ctxName, 'context');
  if (ctx === undefined) throw new Error(`${file}: context ${ctxName} not found`);
  const cluster = pick(doc['clusters'], str(ctx, 'cluster') ?? '', 'cluster');
  const server = str(cluster, 'server');
  if (server === undefined) throw new Error(`${file}: cluster ${str(ctx, 'cluster') ?? '?'} has no server`);
  const user = pick(doc['users'], str(ctx, 'user') ?? '', 'user');
  const ca = material(cluster, 'certificate-authority', base);
  const cert = material(user, 'client-certificate', base);
  const key = material(user, 'client-key', base);
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  const insecure = cluster?.['insecure-skip-tls-verify'] === true;
  const tls = server.startsWith('https:')
    ? {
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        ...(insecure ? { rejectUnauthorized: false } : {}),
        ...(str(cluster, 'tls-server-name') ? { servername: str(cluster, 'tls-server-name') as string } : {}),
      }
    : undefined;
  const authorization =
    tokenFile !== undefined
      ? async () => `Bearer ${(await readFile(isAbsolute(tokenFile) ? tokenFile : resolve(base, tokenFile), 'utf8')).trim()}`
      : token !== undefined
        ? async () => `Bearer ${token}`
        : undefined;
  return {
    baseUrl: server.replace(/\/+$/, ''),
    ...(tls ? { tls } : {}),
    ...(authorization ? { authorization } : {}),
    describe: `kubeconfig ${file} context ${ctxName}`,
  };
}

/**
 * The connection a namer config asks for: host/port -> plain HTTP (kubectl proxy); else
 * in-cluster when KUBERNETES_SERVICE_HOST is set; else KUBECONFIG or ~/.kube/config.
 */
export function resolveConnection(opts: { host?: string; port?: number }, env: NodeJS.ProcessEnv = process.env): K8sConnection {
  if (opts.host !== undefined || opts.port !== undefined) return plainConnection(opts.host ?? 'localhost', opts.port ?? 8001);
  if (env['KUBERNETES_SERVICE_HOST']) return inClusterConnection(env);
  const kubeconfig = env['KUBECONFIG']?.split(':')[0] || join(homedir(), '.kube', 'config');
  return kubeconfigConnection(kubeconfig);
}
