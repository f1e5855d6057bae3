// A loopback server that writes exact reply bytes for each HTTP/1.1 request head it reads: what
// the lean client's tests (test/core/h1-pool*.test.ts) put behind it to control an answer byte
// for byte. A fixed-length request body (the tests send a few bytes) is taken with its head.

import net from 'node:net';

export interface RawHttpServer {
  port: number;
  /** Every request head read (with its fixed-length body), in order. */
  heads: string[];
  /** Every connection accepted, in order. */
  conns: net.Socket[];
  /** Connections still open. */
  open(): number;
  /** Resolves once the server has read its nth request head (1-based). */
  head(n: number): Promise<string>;
  close(): Promise<void>;
}

/** `answer` writes the reply to each request head read (n: its 1-based number over all connections). */
export async function rawHttpServer(answer: (head: string, s: net.Socket, n: number) => void): Promise<RawHttpServer> {
  const heads: string[] = [];
  const waiters: { n: number; resolve: (h: string) => void }[] = [];
  const conns: net.Socket[] = [];
  const server = net.createServer((s) => {
    conns.push(s);
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end = buf.indexOf('\r\n\r\n');
      while (end >= 0) {
        let head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        const length = /content-length: (\d+)/i.exec(head);
        if (length !== null) {
          const n = Number(length[1]);
          head += buf.slice(0, n);
          buf = buf.slice(n);
        }
        heads.push(head);
        for (const w of waiters.filter((x) => x.n === heads.length)) w.resolve(head);
        answer(head, s, heads.length);
        end = buf.indexOf('\r\n\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    conns,
    open: () => conns.filter((c) => !c.destroyed).length,
    head: (n) =>
      n <= heads.length
        ? Promise.resolve(heads[n - 1] as string)
        : new Promise((resolve) => {
            waiters.push({ n, resolve });
          }),
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
}
