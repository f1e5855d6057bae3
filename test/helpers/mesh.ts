// A two-node mesh for end-to-end tests: the demo's topology (node-a 127.0.0.2, node-b 127.0.0.3,
// mTLS between them, fs namer) on free ports, plus a way to register test backends.

import './test-keys.js'; // 1024-bit RSA keys for the PKI made here (test-keys.ts): its users do not test key size
import { writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { join } from 'node:path';
import { startDemo, type Demo, type DemoOptions } from '../../src/demo/demo.js';
import { silentLogger } from '../../src/log.js';
import { freePorts } from './ports.js';
import { request } from './http.js';

export const A = '127.0.0.2';
export const B = '127.0.0.3';

export interface TestMesh {
  readonly demo: Demo;
  readonly ports: { outgoing: number; incoming: number; admin: number };
  /** Registers `name` -> server on node-b (or `node`), and waits until node-a routes to it. */
  register(name: string, server: http.Server, node?: 'node-a' | 'node-b'): Promise<void>;
  close(): Promise<void>;
}

export async function startMesh(options: DemoOptions = {}): Promise<TestMesh> {
  // A port freePorts found free can be taken by another test file's freePorts before the routers
  // bind it (files run in parallel): the demo closes what it started, and gets fresh ports.
  let ports: { outgoing: number; incoming: number; admin: number };
  let demo: Demo;
  for (let attempt = 1; ; attempt++) {
    const [outgoing, incoming, admin] = (await freePorts(A, 3)) as [number, number, number];
    ports = { outgoing, incoming, admin };
    try {
      demo = await startDemo(silentLogger(), ports, options);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
  return {
    demo,
    ports,
    async register(name, server, node = 'node-b') {
      const addr = server.address() as { address: string; port: number };
      await writeFile(join(demo.dir, 'disco', name), `${addr.address} ${addr.port} node=${node}\n`);
      // The fs namer sees the file within its watch/poll interval: wait until a request binds.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const r = await request({ host: A, port: ports.outgoing, path: `http://${name}/__ready`, method: 'HEAD' }).catch(() => ({ status: 0 }));
        if (r.status !== 502 && r.status !== 0) return;
        if (Date.now() > deadline) throw new Error(`${name} never became routable`);
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    close: () => demo.close(),
  };
}

/** Listens on `host` port 0 and resolves once listening. */
export function listen(server: http.Server, host: string): Promise<http.Server> {
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}
