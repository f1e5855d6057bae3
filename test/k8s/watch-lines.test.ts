// The watch-stream parser: events split across chunks, many per chunk, one huge event, multi-byte
// characters split between chunks, and any random chunking of a stream gives the same events; a
// line over the bound fails while it is held, before its end arrives.

import fc from 'fast-check';
import t from 'tap';
import { JsonLines } from '../../src/k8s/watch-lines.js';

function feed(chunks: Buffer[]): unknown[] {
  const p = new JsonLines();
  return [...chunks.flatMap((c) => p.push(c)), ...p.end()];
}

const events = [
  { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } },
  { type: 'MODIFIED', object: { metadata: { name: 'ü-ñ-☃', resourceVersion: '2' } } },
  { type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } },
];
const stream = Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join(''));

t.test('many events in one chunk, and one event split byte by byte', async (t) => {
  t.same(feed([stream]), events);
  t.same(feed([...stream].map((b) => Buffer.from([b]))), events, 'one byte per chunk (multi-byte characters split too)');
});

t.test('a huge event (8 MiB) arriving in 64 KiB pieces', async (t) => {
  const big = { type: 'ADDED', object: { metadata: { name: 'big' }, data: 'x'.repeat(8 * 1024 * 1024) } };
  const buf = Buffer.from(JSON.stringify(big) + '\n');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 65536) chunks.push(buf.subarray(i, i + 65536));
  const out = feed(chunks) as (typeof big)[];
  t.equal(out.length, 1);
  t.equal(out[0]?.object.data.length, 8 * 1024 * 1024);
});

t.test('a last line without a newline, blank lines, and invalid JSON', async (t) => {
  t.same(feed([Buffer.from('\n\n{"a":1}\n\n{"b":2}')]), [{ a: 1 }, { b: 2 }]);
  t.throws(() => new JsonLines().push(Buffer.from('{"a":\n')), SyntaxError);
});

t.test('any chunking of a stream yields the same events', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: stream.length }), { maxLength: 20 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const p of points) {
        chunks.push(stream.subarray(prev, p));
        prev = p;
      }
      chunks.push(stream.subarray(prev));
      return JSON.stringify(feed(chunks)) === JSON.stringify(events);
    }),
    { numRuns: 2000 },
  );
  t.pass('2,000 random chunkings');
});

t.test('an event line over the bound fails as soon as its held part passes it, not at its end', async (t) => {
  const p = new JsonLines({ maxLineBytes: 4 * 1024 });
  const head = Buffer.from('{"type":"ADDED","object":{"metadata":{"name":"huge"},"data":"');
  t.same(p.push(head), []);
  let held = head.length;
  t.throws(() => {
    for (let i = 0; i < 64; i++) {
      p.push(Buffer.alloc(1024, 'x'));
      held += 1024;
    }
  }, /larger than 4096 bytes/);
  t.ok(held <= 4 * 1024 + 1024, `refused with ${held} bytes held`);
});
