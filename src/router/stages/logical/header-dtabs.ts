// Per-request dtab overrides (`l5d-ctx-dtab` then `l5d-dtab`), parsed once per distinct value and
// kept in a small least-recently-used cache so a debugging header costs a map lookup on later
// requests; its size follows the router's bindingCache.overrides (the text comes from requests).

import { BoundedMap } from '../../../core/bounded-map.js';
import { Dtab } from '../../../dtab/dtab.js';
import { DtabParseError } from '../../../dtab/parse.js';
import { HostmeshError } from '../../../errors.js';

export interface Overrides {
  /** The combined override dtab (ctx first, then local), undefined when there is none. */
  readonly dtab: Dtab | undefined;
  /** Its text, as forwarded downstream in l5d-ctx-dtab ('' when none). */
  readonly text: string;
}

const NONE: Overrides = { dtab: undefined, text: '' };

export class HeaderDtabs {
  readonly #cache: BoundedMap<string, Dtab>;

  constructor(max = 100) {
    this.#cache = new BoundedMap({ name: 'header_dtabs', max });
  }

  parse(ctx: string | undefined, local: string | undefined): Overrides {
    const c = ctx?.trim() ?? '';
    const l = local?.trim() ?? '';
    if (c === '' && l === '') return NONE;
    const a = c === '' ? Dtab.empty : this.#one('l5d-ctx-dtab', c);
    const b = l === '' ? Dtab.empty : this.#one('l5d-dtab', l);
    const dtab = a.concat(b);
    return { dtab, text: dtab.show() };
  }

  #one(header: string, text: string): Dtab {
    let d = this.#cache.get(text); // a hit becomes the most recently used
    if (d !== undefined) return d;
    try {
      d = readValues(text);
    } catch (err) {
      if (err instanceof DtabParseError) throw new HostmeshError('BAD_DTAB_HEADER', `bad ${header}: ${err.message}`);
      throw err;
    }
    this.#cache.set(text, d);
    return d;
  }
}

/**
 * A header's dtab. Node joins repeated header lines with `, `, and `,` is nowhere in the dtab
 * language, so each piece is one line's dtab, read on its own and concatenated in order (Linkerd 1
 * reads every l5d-dtab line so). A comma inside a comment is the one exception: then the whole text
 * is read as one (the comment runs to its end).
 */
function readValues(text: string): Dtab {
  if (!text.includes(',')) return Dtab.read(text);
  try {
    return text.split(',').reduce((d, piece) => d.concat(Dtab.read(piece)), Dtab.empty);
  } catch (err) {
    if (!(err instanceof DtabParseError)) throw err;
    try {
      return Dtab.read(text);
    } catch {
      throw err;
    }
  }
}
