// Free TCP ports on a given loopback address.
//
// Test files run in parallel (scripts/run-tests.mjs, three at a time), and a port found free is
// only reserved once something binds it: two files asking the kernel for "any free port" (port 0)
// at about the same time can be handed the same one, and the second to bind it fails with
// EADDRINUSE. So under the runner (TAP_CHILD_ID set) each file draws its ports at random from its
// own block of 1,000 below the kernel's ephemeral range (10,000-29,999: 20 blocks by file number),
// which neither the kernel's port-0 choices nor outgoing connections use; a port is checked by
// binding it, and never handed out twice by one process. Elsewhere (one file run alone, the
// benches) the kernel chooses.

import net from 'node:net';

const BLOCKS = 20;
const BLOCK_SIZE = 1_000;
const FIRST_PORT = 10_000;
const childId = Number(process.env['TAP_CHILD_ID'] ?? '0');
const handedOut = new Set<string>();

function tryListen(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, host, () => {
      const bound = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(bound));
    });
  });
}

export async function freePort(host: string): Promise<number> {
  if (childId > 0) {
    const base = FIRST_PORT + (childId % BLOCKS) * BLOCK_SIZE;
    for (let i = 0; i < 50; i++) {
      const port = base + Math.floor(Math.random() * BLOCK_SIZE);
      if (handedOut.has(`${host}:${port}`)) continue;
      if ((await tryListen(host, port)) !== undefined) {
        handedOut.add(`${host}:${port}`);
        return port;
      }
    }
  }
  for (;;) {
    const port = await tryListen(host, 0);
    if (port === undefined) throw new Error(`no free port on ${host}`);
    if (!handedOut.has(`${host}:${port}`)) {
      handedOut.add(`${host}:${port}`);
      return port;
    }
  }
}

export async function freePorts(host: string, n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) out.push(await freePort(host));
  return out;
}
