// The list splitter against JSON.parse as the reference: any list document, cut into any chunks,
// gives the same items and envelope; an item larger than the bound fails the list.

import fc from 'fast-check';
import t from 'tap';
import { ListItemSplitter } from '../../src/k8s/list-items.js';

function split(doc: string, cuts: number[], max?: number): { items: unknown[]; envelope: unknown } {
  const buf = Buffer.from(doc, 'utf8');
  const s = new ListItemSplitter(max !== undefined ? { maxItemBytes: max } : {});
  const items: unknown[] = [];
  let at = 0;
  for (const c of [...cuts.map((x) => x % (buf.length + 1)), buf.length].sort((a, b) => a - b)) {
    for (const b of s.push(buf.subarray(at, c))) items.push(JSON.parse(b.toString('utf8')));
    at = c;
  }
  return { items, envelope: s.end() };
}

const tricky = fc.constantFrom('"', '\\', '\\"', '{', '}', '[', ']', ',', '"items":[', 'é', '\u2028', '\\\\"');
const str = fc.oneof(
  fc.string(),
  fc.array(tricky, { maxLength: 6 }).map((a) => a.join('')),
  fc.string({ unit: 'grapheme' }),
);
const item = fc.record({
  metadata: fc.record({ name: str, labels: fc.dictionary(str, str, { maxKeys: 3 }) }),
  spec: fc.jsonValue({ maxDepth: 3 }),
  status: fc.option(fc.record({ items: fc.array(str, { maxLength: 2 }) }), { nil: undefined }),
});

t.test('property: items and envelope equal JSON.parse of the whole document, for any chunking', async (t) => {
  fc.assert(
    fc.property(
      fc.array(item, { maxLength: 6 }),
      fc.record({ resourceVersion: fc.string(), continue: fc.option(str, { nil: undefined }) }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.boolean(),
      fc.boolean(),
      (items, metadata, cuts, itemsFirst, pretty) => {
        const body = itemsFirst ? { items, kind: 'PodList', metadata } : { kind: 'PodList', apiVersion: 'v1', metadata, items };
        const doc = JSON.stringify(body, null, pretty ? 2 : undefined);
        const ref = JSON.parse(doc) as { items: unknown[]; metadata: unknown; kind: string };
        const got = split(doc, cuts);
        const env = got.envelope as { metadata: unknown; kind: string; items: unknown[] };
        return (
          JSON.stringify(got.items) === JSON.stringify(ref.items) &&
          JSON.stringify(env.metadata) === JSON.stringify(ref.metadata) &&
          env.kind === ref.kind &&
          JSON.stringify(env.items) === '[]'
        );
      },
    ),
    { numRuns: 500 },
  );
  t.pass('checked');
});

t.test('scalars, empty lists, null items, and the item bound', async (t) => {
  t.same(split('{"items":[1, null ,"x",[2]],"metadata":{"continue":"c"}}', [3, 9, 14]).items, [1, null, 'x', [2]]);
  t.same(split('{"metadata":{"resourceVersion":"7"},"items":[]}', [20]).envelope, { metadata: { resourceVersion: '7' }, items: [] });
  t.same(split('{"metadata":{"resourceVersion":"7"},"items":null}', []).envelope, { metadata: { resourceVersion: '7' }, items: null });
  t.throws(() => split(JSON.stringify({ items: [{ a: 'x'.repeat(5000) }] }), [100, 2000], 1000), /larger than 1000 bytes/);
  t.throws(() => split('{"items":[{"a":1}', []), /truncated/);
});
