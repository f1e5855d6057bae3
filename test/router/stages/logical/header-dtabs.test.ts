// Per-request dtab overrides as Linkerd 1's header filter reads them (HeadersTest): l5d-ctx-dtab
// first, then l5d-dtab, every line of each, forwarded as one l5d-ctx-dtab; a bad one is a 400.

import t from 'tap';
import { HostmeshError } from '../../../../src/errors.js';
import { HeaderDtabs } from '../../../../src/router/stages/logical/header-dtabs.js';

t.test('ctx then user dtab, each line of each in order', async (t) => {
  const cases: [string | undefined, string | undefined, string][] = [
    [undefined, undefined, ''],
    ['', '  ', ''],
    ['/a => /c', '/a => /d', '/a=>/c;/a=>/d'],
    [undefined, '/a => /d', '/a=>/d'],
    ['/a => /c', undefined, '/a=>/c'],
    // Two header lines arrive joined by `, ` (Node): read as two dtabs.
    [undefined, '/a=>/b, /c=>/d', '/a=>/b;/c=>/d'],
    ['/x=>/y;, /z=>/w', '/a=>/b,/c=>/d;', '/x=>/y;/z=>/w;/a=>/b;/c=>/d'],
    [undefined, '/a=>/b, ', '/a=>/b'],
    // A comma in a comment is part of the comment.
    [undefined, '/a=>/b # one, two', '/a=>/b'],
  ];
  const dtabs = new HeaderDtabs();
  for (const [ctx, user, want] of cases) t.equal(dtabs.parse(ctx, user).text, want, `${ctx} + ${user}`);
});

t.test('a header that is not a dtab is a 400 naming the header and the spot', async (t) => {
  const dtabs = new HeaderDtabs();
  const cases: [string | undefined, string | undefined, RegExp][] = [
    [undefined, 'i am not a dtab', /^bad l5d-dtab: '\/' expected but 'i' found at '\[i\] am not a dtab'$/],
    ['/a=>/b, nope', undefined, /^bad l5d-ctx-dtab: '\/' expected but 'n' found at ' \[n\]ope'$/],
    ['/a=>/b', '/c=>', /^bad l5d-dtab: simple expected but end of input found/],
  ];
  for (const [ctx, user, want] of cases) {
    let err: unknown;
    try {
      dtabs.parse(ctx, user);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof HostmeshError && err.code === 'BAD_DTAB_HEADER', `${ctx} + ${user}: BAD_DTAB_HEADER`);
    t.match(err instanceof Error ? err.message : '', want);
  }
});
