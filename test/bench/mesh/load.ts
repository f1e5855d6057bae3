// Load generators: wrk for maximum throughput (a separate C process), and an open-loop generator
// for latency at a fixed rate: requests are scheduled at exact times whatever the responses do,
// and latency counts from the scheduled time, so a stall shows as the latency every request
// queued behind it suffered (no coordinated omission).

import { execFile } from 'node:child_process';
import { Pool } from 'undici';

export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly requests: number;
  readonly errors: number;
}

export function wrk(url: string, connections: number, seconds: number, host = 'world'): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-H', `Host: ${host}`, url], { encoding: 'utf8' }, (err, stdout) => {
      if (err) return reject(err);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      const total = /(\d+) requests in/.exec(stdout);
      const errors = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      if (rps === null || total === null) return reject(new Error(`cannot parse wrk output:\n${stdout}`));
      const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
      resolve({ requestsPerSecond: Number(rps[1]), requests: Number(total[1]), errors: Number(errors?.[1] ?? 0) + socketErrors });
    });
  });
}

export interface LatencyResult {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly sent: number;
  readonly errors: number;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/**
 * `rate` requests/s for `seconds` over a keep-alive pool; latencies in ms. A first second at the
 * same rate is not recorded: it opens the client's connections (and the proxies' upstream ones),
 * so what is measured is the steady state.
 */
export async function openLoop(
  origin: string,
  path: string,
  headers: Record<string, string>,
  rate: number,
  seconds: number,
  warmupSeconds = 1,
): Promise<LatencyResult> {
  const pool = new Pool(origin, { connections: 64, pipelining: 1 });
  if (warmupSeconds > 0) await openLoopOn(pool, path, headers, rate, warmupSeconds);
  const result = await openLoopOn(pool, path, headers, rate, seconds);
  await pool.close();
  return result;
}

async function openLoopOn(pool: Pool, path: string, headers: Record<string, string>, rate: number, seconds: number): Promise<LatencyResult> {
  const total = rate * seconds;
  const latencies = new Float64Array(total);
  let sent = 0;
  let finished = 0;
  let errors = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const fire = (i: number, scheduled: number): void => {
      pool
        .request({ method: 'GET', path, headers })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
        })
        .catch(() => void errors++)
        .finally(() => {
          latencies[i] = performance.now() - scheduled;
          if (++finished === total) resolve();
        });
    };
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (sent < due) {
        fire(sent, start + (sent * 1000) / rate);
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  if (process.env['BENCH_DEBUG']) {
    // Where the slow requests were (scheduled second of the run).
    const slow = new Map<number, number>();
    latencies.forEach((l, i) => {
      if (l > 20) slow.set(Math.floor(i / rate), (slow.get(Math.floor(i / rate)) ?? 0) + 1);
    });
    console.error(
      `  slow (>20 ms) requests by second: ${JSON.stringify([...slow])}; max ${Math.max(...latencies).toFixed(1)} ms at #${latencies.indexOf(Math.max(...latencies))}`,
    );
  }
  const sorted = latencies.sort();
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999), max: sorted[sorted.length - 1] ?? 0, sent, errors };
}

/** Downloads `path` through `origin` (a proxy or the backend), returning MB/s and bytes. */
export async function download(origin: string, path: string, host: string): Promise<{ mbPerSecond: number; bytes: number }> {
  const pool = new Pool(origin, { connections: 1 });
  const t0 = performance.now();
  const res = await pool.request({ method: 'GET', path, headers: { host } });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  return { mbPerSecond: bytes / 1048576 / seconds, bytes };
}
