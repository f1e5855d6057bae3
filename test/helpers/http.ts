// Small HTTP client helpers for tests: one request with node:http, whole body collected.

import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(options: http.RequestOptions, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The status of one GET (0 when the connection failed), body discarded: for load loops that count
 * outcomes and must not reject (benchmarks).
 */
export function getStatus(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/**
 * Open-loop load: calls `send(i)` `total` times at `rate` per second, on schedule whatever the
 * answers' latency, and resolves with every outcome once all have answered.
 */
export async function paced<T>(total: number, rate: number, send: (i: number) => Promise<T>): Promise<T[]> {
  const outcomes: Promise<T>[] = [];
  const started = Date.now();
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    outcomes.push(send(i));
  }
  return Promise.all(outcomes);
}
