// The router process of `npm run bench:state`: one hostmesh (fs namer, one backend) whose clock
// the parent drives over IPC, reporting its RSS, heap and state counts after a full GC.

import { clockWithNow } from '../../src/core/clock.js';
import http from 'node:http';
import type net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BindingCacheConfig, HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';

const HOST = '127.0.0.1';
const gc = (globalThis as { gc?: () => void }).gc;

interface Start {
  readonly bindingCache?: BindingCacheConfig;
  readonly namerIdleTtlSecs?: number;
  readonly namerMaxIdleNames?: number;
}

const [start] = await new Promise<[Start]>((resolve) => process.once('message', (m) => resolve([m as Start])));
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-state-'));
const backend = http.createServer((req, res) => {
  req.resume();
  res.end('web');
});
await new Promise<void>((r) => backend.listen(0, HOST, r));
await writeFile(join(dir, 'web'), `${HOST} ${(backend.address() as net.AddressInfo).port}\n`);
const [port, admin] = (await freePorts(HOST, 2)) as [number, number];
let clock = Date.now();
const config: HostmeshConfig = {
  admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
  namers: [
    {
      kind: 'io.l5d.fs',
      prefix: '/io.l5d.fs',
      rootDir: dir,
      ...(start.namerIdleTtlSecs !== undefined ? { idleTtlSecs: start.namerIdleTtlSecs } : {}),
      ...(start.namerMaxIdleNames !== undefined ? { maxIdleNames: start.namerMaxIdleNames } : {}),
    },
  ],
  routers: [
    {
      protocol: 'http',
      label: 'outgoing',
      dtab: '/svc => /#/io.l5d.fs;',
      identifier: [],
      transformers: [],
      servers: [{ ip: HOST, port, maxHeaderBytes: 64 * 1024 }],
      client: { loadBalancer: { kind: 'p2c' } },
      maxHops: 64,
      ...(start.bindingCache !== undefined ? { bindingCache: start.bindingCache } : {}),
    },
  ],
  shutdownGraceMs: 0,
  baseDir: dir,
};
const hm = await startHostmesh(config, { logger: silentLogger(), clock: clockWithNow(() => clock) });

function report(): object {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const router = hm.routers[0]?.router;
  return {
    rssMb: m.rss / 2 ** 20,
    heapMb: m.heapUsed / 2 ** 20,
    bindings: router?.bindingCacheSize ?? 0,
    lookups: hm.interpreter.lookupCount,
  };
}

process.on('message', (m: { cmd: string; ms?: number }) => {
  if (m.cmd === 'advance') {
    clock += m.ms ?? 0;
    hm.evictIdle();
    hm.evictIdle();
  }
  if (m.cmd === 'stop') {
    void hm.close(0).then(async () => {
      backend.close();
      await rm(dir, { recursive: true, force: true });
      process.exit(0);
    });
    return;
  }
  process.send?.(report());
});
process.send?.({ port, ...report() });
