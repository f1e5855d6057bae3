// The two-node h2 mesh in a process of its own, so a test can read the routers' memory alone: it
// registers the greeter named on the command line (host port), prints the client target as one
// JSON line, then on each stdin line answers with its peak RSS; it exits when stdin closes.

import { startH2Mesh } from './h2-mesh.js';

const [host, port] = process.argv.slice(2);
const mesh = await startH2Mesh();
await mesh.register('helloworld.Greeter', host as string, Number(port));
process.stdout.write(`${JSON.stringify({ target: mesh.target })}\n`);
process.stdin.setEncoding('utf8');
process.stdin.on('data', () => {
  process.stdout.write(`${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, rssBytes: process.memoryUsage().rss })}\n`);
});
process.stdin.on('end', () => {
  void mesh.close().then(() => process.exit(0));
});
