// Linkerd 1's observability keys, read from the raw config before validation: the top-level
// `telemetry` list (io.l5d.prometheus enforced; other telemeters warned with what is lost) and a
// router's httpAccessLog* keys. Taken out of the raw object so the schema never sees them.

import { z } from 'zod';
import type { AccessLogConfig, RollPolicy } from '../server/access-log.js';
import type { PrometheusTelemetry } from '../admin/linkerd1-admin.js';
export type { AccessLogConfig, RollPolicy } from '../server/access-log.js';
export type { PrometheusTelemetry } from '../admin/linkerd1-admin.js';

type Key = string | number;

export const DEFAULT_ACCESS_LOG_BUFFER_KB = 1024;

const UNITS: Readonly<Record<string, number>> = {
  byte: 1,
  kilobyte: 1024,
  megabyte: 1024 ** 2,
  gigabyte: 1024 ** 3,
  terabyte: 1024 ** 4,
};

/** Linkerd 1's roll policy text: Never, Hourly, Daily, Weekly(n), or a size (`3.megabytes`). Undefined: not one. */
export function parseRollPolicy(text: string): RollPolicy | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'never' || t === 'hourly' || t === 'daily') return { kind: t };
  const weekly = /^weekly\((\d)\)$/.exec(t);
  if (weekly !== null) {
    const day = Number(weekly[1]);
    return day >= 1 && day <= 7 ? { kind: 'weekly', day } : undefined;
  }
  const size = /^(\d+(?:\.\d+)?)\.(byte|kilobyte|megabyte|gigabyte|terabyte)s?$/.exec(t);
  if (size !== null) {
    const bytes = Math.floor(Number(size[1]) * (UNITS[size[2] as string] as number));
    return bytes > 0 ? { kind: 'size', bytes } : undefined;
  }
  return undefined;
}

export interface TelemetryConfig {
  readonly prometheus?: PrometheusTelemetry;
}

/** Telemeters Linkerd 1 had that hostmesh does not run: what a user loses with each. */
export const UNRUN_TELEMETERS: Readonly<Record<string, string>> = {
  'io.l5d.zipkin': 'no spans are sent to Zipkin',
  // The linkerd-zipkin plugin's telemeters (openzipkin's image of Linkerd 1 loaded them).
  'io.zipkin.http': 'no spans are sent to Zipkin',
  'io.zipkin.kafka': 'no spans are sent to Zipkin through Kafka',
  'io.l5d.recentRequests': 'the admin recent requests view is not served',
  'io.l5d.statsd': 'no metrics are sent to StatsD (scrape /admin/metrics/prometheus instead)',
  'io.l5d.influxdb': 'the InfluxDB line protocol page /admin/metrics/influxdb is not served',
  'io.l5d.tracelog': 'requests are not traced to the log',
  'io.l5d.adminMetricsExport': 'hostmesh serves /admin/metrics.json itself; this telemeter has no other effect',
  'io.l5d.commonMetrics': 'hostmesh serves /admin/metrics.json itself; this telemeter has no other effect',
  'io.buoyant.telemetry.commonMetrics': 'hostmesh serves /admin/metrics.json itself; this telemeter has no other effect',
};

const prometheusSchema = z.strictObject({
  kind: z.literal('io.l5d.prometheus'),
  path: z
    .string()
    .regex(/^\/[\x21-\x7e]*$/, 'a path starting with /')
    .optional(),
  prefix: z
    .string()
    .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'a Prometheus name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)')
    .optional(),
  experimental: z.boolean().optional(),
});

/** A number or boolean written as a string, read as Jackson read it (as load.ts does for the schema). */
const jacksonScalar = (v: unknown): unknown =>
  typeof v !== 'string' ? v : /^\s*-?\d+\s*$/.test(v) ? Number(v) : /^\s*(true|false)\s*$/i.test(v) ? v.trim().toLowerCase() === 'true' : v;

const accessLogSchema = z.strictObject({
  httpAccessLog: z.string().min(1),
  httpAccessLogRollPolicy: z
    .string()
    .refine((s) => parseRollPolicy(s) !== undefined, 'Never, Hourly, Daily, Weekly(1..7) or a size such as 100.megabytes')
    .optional(),
  httpAccessLogAppend: z.preprocess(jacksonScalar, z.boolean()).optional(),
  httpAccessLogRotateCount: z.preprocess(jacksonScalar, z.number().int().min(-1)).optional(),
  httpAccessLogBufferKB: z.preprocess(jacksonScalar, z.number().int().min(1).max(1_048_576)).optional(),
});

const ACCESS_LOG_KEYS = ['httpAccessLog', 'httpAccessLogRollPolicy', 'httpAccessLogAppend', 'httpAccessLogRotateCount', 'httpAccessLogBufferKB'] as const;
/** Linkerd 1's H2Config access log keys (protocol: h2 routers). */
const H2_ACCESS_LOG_KEYS = ['h2AccessLog', 'h2AccessLogRollPolicy', 'h2AccessLogAppend', 'h2AccessLogRotateCount'] as const;

export interface Observability {
  readonly telemetry: TelemetryConfig;
  /** Per router index: its access log (path still relative to the config file). */
  readonly accessLogs: ReadonlyMap<number, AccessLogConfig>;
}

export interface Reporter {
  warn(path: Key[], message: string): void;
  problem(path: Key[], message: string): void;
}

function issues(error: z.ZodError, base: Key[], report: Reporter): void {
  for (const i of error.issues) {
    const path = [...base, ...(i.path as Key[])];
    if (i.code === 'unrecognized_keys') for (const k of i.keys) report.problem([...path, k], 'unknown key');
    else report.problem(path, i.message);
  }
}

/**
 * Removes `telemetry` and each router's httpAccessLog* keys from `raw`, returning what they ask
 * for; problems (bad values, unknown telemeters) and warnings go to `report`.
 */
export function takeObservability(raw: Record<string, unknown>, report: Reporter): Observability {
  let prometheus: PrometheusTelemetry | undefined;
  const telemetry = raw['telemetry'];
  delete raw['telemetry'];
  if (telemetry !== undefined && telemetry !== null) {
    if (!Array.isArray(telemetry)) report.problem(['telemetry'], 'a list of telemeters ({kind: io.l5d.prometheus}, ...)');
    else {
      telemetry.forEach((t: unknown, i) => {
        const kind = t !== null && typeof t === 'object' ? (t as Record<string, unknown>)['kind'] : undefined;
        if (kind === 'io.l5d.prometheus') {
          const r = prometheusSchema.safeParse(t);
          if (!r.success) return issues(r.error, ['telemetry', i], report);
          if (prometheus !== undefined) return report.problem(['telemetry', i], 'io.l5d.prometheus is listed twice');
          prometheus = { path: r.data.path ?? '/admin/metrics/prometheus', prefix: r.data.prefix ?? '' };
          return;
        }
        if (typeof kind === 'string' && kind in UNRUN_TELEMETERS) {
          report.warn(['telemetry', i], `${kind}: accepted, not enforced: ${UNRUN_TELEMETERS[kind]}`);
          return;
        }
        report.problem(
          ['telemetry', i, 'kind'],
          typeof kind === 'string'
            ? `unknown telemeter kind '${kind}' (io.l5d.prometheus is served; ${Object.keys(UNRUN_TELEMETERS).join(', ')} are accepted)`
            : 'kind is required',
        );
      });
    }
  }
  const accessLogs = new Map<number, AccessLogConfig>();
  const routers = raw['routers'];
  if (Array.isArray(routers)) {
    routers.forEach((r: unknown, i) => {
      if (r === null || typeof r !== 'object' || Array.isArray(r)) return;
      const o = r as Record<string, unknown>;
      if (o['protocol'] === 'h2') return h2AccessLog(o, i, report);
      const taken: Record<string, unknown> = {};
      for (const k of ACCESS_LOG_KEYS) {
        if (k in o) {
          taken[k] = o[k];
          delete o[k];
        }
      }
      if (Object.keys(taken).length === 0) return;
      if (taken['httpAccessLog'] === undefined) {
        report.warn(['routers', i], 'httpAccessLog* keys without httpAccessLog: no access log is written');
        return;
      }
      const p = accessLogSchema.safeParse(taken);
      if (!p.success) return issues(p.error, ['routers', i], report);
      accessLogs.set(i, {
        path: p.data.httpAccessLog,
        rollPolicy: parseRollPolicy(p.data.httpAccessLogRollPolicy ?? 'never') ?? { kind: 'never' },
        append: p.data.httpAccessLogAppend ?? true,
        rotateCount: p.data.httpAccessLogRotateCount ?? -1,
        bufferBytes: (p.data.httpAccessLogBufferKB ?? DEFAULT_ACCESS_LOG_BUFFER_KB) * 1024,
      });
    });
  }
  return { telemetry: prometheus !== undefined ? { prometheus } : {}, accessLogs };
}

/**
 * An h2 router's access log keys: Linkerd 1's h2AccessLog* are accepted and said not to be written
 * (hostmesh's access log covers HTTP/1.1 routers); httpAccessLog* are refused there, as Linkerd 1 did.
 */
function h2AccessLog(o: Record<string, unknown>, i: number, report: Reporter): void {
  for (const k of ACCESS_LOG_KEYS) {
    if (k in o) {
      report.problem(['routers', i, k], `a protocol: h2 router takes ${k.replace(/^http/, 'h2')}, not ${k}`);
      delete o[k];
    }
  }
  for (const k of H2_ACCESS_LOG_KEYS) {
    if (!(k in o)) continue;
    if (k === 'h2AccessLog')
      report.warn(['routers', i, k], 'accepted, not enforced: no access log is written for protocol: h2 routers (httpAccessLog is enforced on http routers)');
    delete o[k];
  }
}
