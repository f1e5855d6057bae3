// A strict parser of the Prometheus text exposition format (version 0.0.4) for tests: every line
// is a HELP or TYPE comment, blank, or a sample `name{label="value",...} value`; anything else
// throws with the line number. Samples must follow their family's TYPE line.

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?[0-9]+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created'];

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (m === null) return; // other comments are allowed
      if (!NAME.test(m[2] as string)) throw new Error(`${where}: bad metric name ${m[2]}`);
      if (m[1] === 'TYPE') {
        if (!TYPES.has(m[3] ?? '')) throw new Error(`${where}: bad type ${m[3]}`);
        if (typed.has(m[2] as string)) throw new Error(`${where}: second TYPE for ${m[2]}`);
        typed.set(m[2] as string, m[3] as string);
      }
      return;
    }
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`${where}: not a sample: ${line}`);
    const name = m[1] as string;
    const family = typed.has(name) ? name : SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((f) => f && typed.has(f));
    if (family === undefined) throw new Error(`${where}: sample ${name} has no TYPE line`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const start = LABEL.lastIndex;
      const l = LABEL.exec(body);
      if (l === null || l.index !== start) throw new Error(`${where}: bad labels {${body}}`);
      if ((l[1] as string) in labels) throw new Error(`${where}: duplicate label ${l[1]}`);
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m[4] as string;
    // As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case; prom-client writes `Nan`.
    const special = /^(?:([+-]?)inf(?:inity)?|(nan))$/i.exec(raw);
    const value = special === null ? Number(raw) : special[2] !== undefined ? NaN : special[1] === '-' ? -Infinity : Infinity;
    if (Number.isNaN(value) && special === null) throw new Error(`${where}: bad value ${raw}`);
    samples.push({ name, labels, value });
  });
  return samples;
}
