// Ordinary requests to the demo's `hello` app through a router, `concurrency` at a time: the
// load of the in-process benches (leak.ts, alloc.ts).

import type { Pool } from 'undici';

/** Sends `n` GETs for `hello` over `pool`; resolves with how many were not answered 200. */
export async function helloRounds(pool: Pool, n: number, concurrency: number): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) {
        const r = await pool.request({ path: '/', method: 'GET', headers: { host: 'hello' } });
        await r.body.dump();
        if (r.statusCode !== 200) failed++;
      }
    }),
  );
  return failed;
}
