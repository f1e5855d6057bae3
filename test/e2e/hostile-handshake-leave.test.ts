// A pod that leaves while the outgoing router is still making its TLS connection to the peer
// router: its POST's body stream fails before the upstream client has written a byte of it. The
// router must stay up (an 'error' on a body nobody listened to yet would be an uncaught exception in
// its process: this test's process), answer nothing to the gone client, and serve the next request.

import net from 'node:net';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { A } from '../helpers/mesh.js';
import { healthyBackend, startEngineMesh, stillServes, stopEngineMesh } from '../helpers/raw-upstream.js';
import { eventually } from '../helpers/sockets.js';

t.setTimeout(30_000);

for (const engine of ['lean', 'undici']) {
  t.test(`engine ${engine}: a client gone mid-upload while the peer's TLS handshake hangs`, async (t) => {
    // node-c's "router": accepts TCP and never answers the TLS handshake.
    const held = new Set<net.Socket>();
    const mute = net.createServer((s) => {
      held.add(s);
      s.on('error', () => undefined);
      s.on('close', () => held.delete(s));
    });
    await new Promise<void>((r) => mute.listen(0, A, r));
    const mutePort = (mute.address() as net.AddressInfo).port;
    const m = await startEngineMesh(engine, [], await healthyBackend());
    t.teardown(async () => {
      await stopEngineMesh(m);
      for (const s of held) s.destroy();
      mute.close();
    });
    // A service whose only pod is on node-c, whose router is the mute server.
    await appendFile(join(m.dir, 'disco', 'hostmesh'), `${A} ${mutePort} node=node-c\n`);
    await writeFile(join(m.dir, 'disco', 'stuck'), '127.0.0.9 8080 node=node-c\n');

    // Both pools keep a connection whose request was aborted during its handshake for the next
    // request, so later attempts would not show a new handshake to wait for: one attempt.
    for (let i = 0; i < 1; i++) {
      const before = held.size;
      const client = net.connect(m.outgoing, A);
      client.on('error', () => undefined);
      client.write(`POST /upload HTTP/1.1\r\nHost: stuck\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`);
      // The outgoing router is now connecting to node-c (the fs namer may take a poll to see it).
      t.ok(await eventually(() => held.size > before, 10_000), `attempt ${i + 1}: the router is in a TLS handshake with node-c`);
      client.destroy();
      await new Promise((r) => setTimeout(r, 50));
    }
    await stillServes(t, m);
    await stillServes(t, m, true);
  });
}
