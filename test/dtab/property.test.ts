// Property tests (fast-check): show/parse round trips for random trees and dtabs, and the parser
// throws nothing but DtabParseError on random input.

import fc from 'fast-check';
import t from 'tap';
import { Dtab, parseDtab } from '../../src/dtab/dtab.js';
import { NEG, type NameTree } from '../../src/dtab/name-tree.js';
import type { Dentry } from '../../src/dtab/dentry.js';
import { Path } from '../../src/dtab/path.js';
import { DtabParseError, parseNameTree, parsePath } from '../../src/dtab/parse.js';
import { Prefix, WILDCARD } from '../../src/dtab/prefix.js';
import { showNameTree } from '../../src/dtab/show.js';

// Labels are byte strings: any char 0-255 (shown escaped when not a label char).
const label = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 6 });
const path = fc.array(label, { maxLength: 4 }).map((e) => new Path(e));
const weight = fc.integer({ min: 1, max: 1000 }).map((n) => n / 100); // two decimals, as shown

const tree: fc.Arbitrary<NameTree<Path>> = fc.letrec<{ tree: NameTree<Path> }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    path.map((p) => ({ kind: 'leaf', value: p }) as const),
    fc.constant({ kind: 'neg' } as const),
    fc.constant({ kind: 'fail' } as const),
    fc.constant({ kind: 'empty' } as const),
    fc.array(tie('tree'), { minLength: 2, maxLength: 3 }).map((trees) => ({ kind: 'alt', trees }) as const),
    // Unions of two or more: one weighted member alone parses as its tree (Finagle drops the weight).
    fc.array(fc.record({ weight, tree: tie('tree') }), { minLength: 2, maxLength: 3 }).map((members) => ({ kind: 'union', members }) as const),
  ),
})).tree;

/** Parsing flattens nothing, but a 1-member alt never appears; normalise nested single unions. */
t.test('show then parse gives back the same tree', async (t) => {
  fc.assert(
    fc.property(tree, (tr) => {
      const shown = showNameTree(tr);
      t.same(parseNameTree(shown), tr, shown);
      return true;
    }),
    { numRuns: 3000 },
  );
});

t.test('dtabs round trip through show', async (t) => {
  const prefix = fc.array(fc.oneof(label, fc.constant(WILDCARD)), { maxLength: 3 }).map((e) => new Prefix(e));
  const dtab = fc.array(fc.record({ prefix, dst: tree }), { maxLength: 4 }).map((d) => new Dtab(d));
  fc.assert(
    fc.property(dtab, (d) => {
      const again = parseDtab(d.show());
      return again.show() === d.show() && again.dentries.length === d.dentries.length;
    }),
    { numRuns: 2000 },
  );
});

t.test('the parser throws only DtabParseError, on any input', async (t) => {
  const alphabet = fc.constantFrom(...'/ab*|&()!~$=>;#.0123456789\\x \n\t'.split(''), 'é', '\u0000');
  const noisy = fc.string({ unit: alphabet, maxLength: 30 });
  const anyText = fc.oneof(noisy, fc.string({ maxLength: 30 }));
  let parsed = 0;
  fc.assert(
    fc.property(anyText, (text) => {
      for (const f of [parsePath, parseNameTree, parseDtab]) {
        try {
          f(text);
          parsed++;
        } catch (e) {
          if (!(e instanceof DtabParseError)) throw e;
          if (!(e.offset >= 0 && e.offset <= text.length)) throw new Error(`bad offset ${e.offset}`);
        }
      }
      return true;
    }),
    { numRuns: 40_000 },
  );
  t.ok(parsed > 0, 'some random inputs are valid');
});

t.test('paths round trip for any bytes', async (t) => {
  fc.assert(
    fc.property(path, (p) => parsePath(p.show()).equals(p)),
    { numRuns: 5000 },
  );
});

t.test('lookup through the first-label index equals trying every dentry, last first', async (t) => {
  // Small alphabets so prefixes, wildcards and paths collide often.
  const small = fc.constantFrom('a', 'b', 'c');
  const prefixElem = fc.oneof(small, fc.constant(WILDCARD));
  const dentry = fc
    .tuple(fc.array(prefixElem, { maxLength: 3 }), fc.array(small, { maxLength: 2 }))
    .map(([p, d]): Dentry => ({ prefix: new Prefix(p), dst: { kind: 'leaf', value: new Path(['dst', ...d]) } }));
  fc.assert(
    fc.property(fc.array(dentry, { maxLength: 8 }), fc.array(small, { maxLength: 4 }), (ds, elems) => {
      const dt = new Dtab(ds);
      const p = new Path(elems);
      const naive: NameTree<Path>[] = [];
      for (let i = ds.length - 1; i >= 0; i--) {
        const d = ds[i] as Dentry;
        if (d.prefix.matches(p)) naive.push(d.dst.kind === 'leaf' ? { kind: 'leaf', value: d.dst.value.concat(p.drop(d.prefix.size)) } : d.dst);
      }
      const expected = naive.length === 0 ? NEG : naive.length === 1 ? naive[0] : { kind: 'alt', trees: naive };
      return showNameTree(dt.lookup(p)) === showNameTree(expected as NameTree<Path>);
    }),
    { numRuns: 5000 },
  );
  t.pass('5,000 random dtabs and paths agree');
});
