// Raw HTTP/2 frames for hostile tests (RFC 9113 section 4, HPACK RFC 7541): a client that writes
// whatever bytes a test asks and reads back the frames the server sends, GOAWAY included.

import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const TYPE = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an `n`-bit prefix whose high bits are `first` (RFC 7541 5.1). */
function int(value: number, n: number, first: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([int(b.length, 7, 0), b]);
}

/** A literal field, new name: without indexing (0x00), or with incremental indexing (0x40) into the dynamic table. */
export function literal(name: string, value: string, index = false): Buffer {
  return Buffer.concat([Buffer.from([index ? 0x40 : 0x00]), str(name), str(value)]);
}

/** An indexed field (static table 1-61, dynamic from 62). */
export function indexed(i: number): Buffer {
  return int(i, 7, 0x80);
}

/** A gRPC request head to `path` on `authority` (POST, http, the static-table entries). */
export function requestBlock(path: string, authority = 'x'): Buffer {
  return Buffer.concat([
    indexed(3),
    indexed(6),
    literal(':path', path),
    literal(':authority', authority),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
  ]);
}

export interface RawSession {
  readonly socket: net.Socket;
  /** Frames received so far: type, flags, stream, payload. */
  readonly frames: { type: number; flags: number; stream: number; payload: Buffer }[];
  /**
   * Resolves true when the server closes the connection, or false after `ceilingMs` (30 s unless
   * given), destroying it. The ceiling only bounds a hang: it is no deadline the server must beat
   * (a router handling hundreds of just-reset streams on a busy machine takes seconds to close).
   */
  closed(ceilingMs?: number): Promise<boolean>;
  /** The error code of the first GOAWAY received, if any. */
  goaway(): number | undefined;
  write(b: Buffer): boolean;
}

/** Attackers connect from 127.0.0.9: a source of their own, so fair shares keep the test's own client served. */
export const ATTACKER = '127.0.0.9';

export function connectRaw(host: string, port: number, opening: Buffer[] = [PREFACE, frame(TYPE.SETTINGS, 0, 0)]): Promise<RawSession> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, localAddress: ATTACKER });
    const frames: RawSession['frames'] = [];
    let buf = Buffer.alloc(0);
    let isClosed = false;
    const waiters: (() => void)[] = [];
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        frames.push({ type: buf[3] as number, flags: buf[4] as number, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
        buf = buf.subarray(9 + len);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      isClosed = true;
      for (const w of waiters.splice(0)) w();
    });
    socket.once('connect', () => {
      for (const b of opening) socket.write(b);
      resolve({
        socket,
        frames,
        write: (b) => (socket.destroyed ? false : socket.write(b)),
        goaway() {
          const g = frames.find((f) => f.type === TYPE.GOAWAY);
          return g === undefined ? undefined : g.payload.readUInt32BE(4);
        },
        closed(ceilingMs = 30_000) {
          if (isClosed) return Promise.resolve(true);
          return new Promise((res) => {
            const timer = setTimeout(() => {
              socket.destroy();
              res(false);
            }, ceilingMs);
            waiters.push(() => {
              clearTimeout(timer);
              res(true);
            });
          });
        },
      });
    });
    socket.once('error', reject);
  });
}
