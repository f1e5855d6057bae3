// Makes text from files and configs safe to print on a terminal: control characters (ESC, CR, ...),
// C1 controls and bidi overrides become visible escapes such as \x1b, so a key cannot repaint a screen.

/** Code points that a terminal acts on or that reorder the text around them. */
function unsafe(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0x200e && cp <= 0x200f) || // left-to-right / right-to-left marks
    (cp >= 0x2028 && cp <= 0x202e) || // line/paragraph separators, bidi embeddings and overrides
    (cp >= 0x2066 && cp <= 0x2069) || // bidi isolates
    cp === 0xfeff
  );
}

/** `s` with every unsafe character written as \xNN or \uNNNN (tabs too: one line stays one line). */
export function printable(s: string): string {
  let out = '';
  let plainFrom = 0;
  for (let i = 0; i < s.length; i++) {
    const cp = s.charCodeAt(i);
    if (!unsafe(cp)) continue;
    out += s.slice(plainFrom, i) + (cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`);
    plainFrom = i + 1;
  }
  return plainFrom === 0 ? s : out + s.slice(plainFrom);
}
