// The httpAccessLog writer: Linkerd 1's line format, its roll policies on an injected clock,
// rotateCount and append, and that it never blocks or throws: a writer that is behind, a full disk
// (/dev/full) or a path that cannot be a file drop lines and count them.

import { clockWithNow } from '../../src/core/clock.js';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { parseRollPolicy, type AccessLogConfig } from '../../src/config/linkerd1-observability.js';
import { AccessLog, accessLogTime, formatAccessLine, periodEnd, rolledName } from '../../src/server/access-log.js';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-access-log-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const config = (path: string, extra: Partial<AccessLogConfig> = {}): AccessLogConfig => ({
  path,
  rollPolicy: { kind: 'never' },
  append: true,
  rotateCount: -1,
  bufferBytes: 1024 * 1024,
  ...extra,
});

t.test("Linkerd 1's line: the AccessLogger test's request, in UTC", async (t) => {
  const line = formatAccessLine(
    {
      host: 'monkeys',
      remote: '0.0.0.0',
      method: 'HEAD',
      uri: '/foo?bar=bah',
      httpVersion: '1.1',
      status: 402,
      contentLength: 304374,
      referer: undefined,
      userAgent: undefined,
    },
    accessLogTime(Date.UTC(2016, 0, 6, 21, 21, 26)),
  );
  t.equal(line, 'monkeys 0.0.0.0 - - [06/01/2016:21:21:26 UTC] "HEAD /foo?bar=bah HTTP/1.1" 402 304374 "-" "-"\n');
  const hostile = formatAccessLine(
    {
      host: 'a"b',
      remote: '::ffff:10.0.0.1',
      method: 'get',
      uri: '/x\n/y',
      httpVersion: '1.0',
      status: 200,
      contentLength: undefined,
      referer: '\\',
      userAgent: 'u\x1b',
    },
    'T',
  );
  t.equal(hostile, 'a\\x22b 10.0.0.1 - - [T] "GET /x\\x0a/y HTTP/1.0" 200 - "\\x5c" "u\\x1b"\n', 'quotes and control bytes cannot forge a field or a line');
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.string(), (host, uri, ua) => {
      const l = formatAccessLine(
        { host, remote: '1.2.3.4', method: 'GET', uri, httpVersion: '1.1', status: 200, contentLength: 1, referer: undefined, userAgent: ua },
        'T',
      );
      return l.indexOf('\n') === l.length - 1 && (l.match(/"/g) ?? []).length === 6;
    }),
  );
});

t.test('roll policies as Linkerd 1 wrote them', async (t) => {
  t.same(parseRollPolicy('Never'), { kind: 'never' });
  t.same(parseRollPolicy('daily'), { kind: 'daily' });
  t.same(parseRollPolicy('Hourly'), { kind: 'hourly' });
  t.same(parseRollPolicy('Weekly(2)'), { kind: 'weekly', day: 2 });
  t.same(parseRollPolicy('3.megabytes'), { kind: 'size', bytes: 3 * 1024 * 1024 });
  t.same(parseRollPolicy('1.gigabyte'), { kind: 'size', bytes: 1024 ** 3 });
  for (const bad of ['Weekly(8)', 'monthly', '3 megabytes', '0.bytes', '']) t.equal(parseRollPolicy(bad), undefined, `${JSON.stringify(bad)} is refused`);
  fc.assert(
    fc.property(fc.string(), (s) => {
      const p = parseRollPolicy(s);
      return p === undefined || p.kind !== 'size' || p.bytes > 0;
    }),
  );
  const at = Date.UTC(2026, 11, 6, 11, 30); // a Sunday
  t.equal(periodEnd({ kind: 'hourly' }, at), Date.UTC(2026, 11, 6, 12));
  t.equal(periodEnd({ kind: 'daily' }, at), Date.UTC(2026, 11, 7));
  t.equal(periodEnd({ kind: 'weekly', day: 2 }, at), Date.UTC(2026, 11, 7), 'Monday (Calendar day 2) next');
  t.equal(periodEnd({ kind: 'weekly', day: 1 }, at), Date.UTC(2026, 11, 13), 'Sunday today: the next one');
  t.equal(rolledName('/l/access.log', at), '/l/access-20261206_113000.log');
});

t.test('daily rolling on the injected clock, keeping rotateCount files', async (t) => {
  const path = join(dir, 'daily', 'access.log');
  let now = Date.UTC(2026, 11, 6, 23, 0);
  const log = new AccessLog(config(path, { rollPolicy: { kind: 'daily' }, rotateCount: 2 }), { clock: clockWithNow(() => now) });
  for (let day = 0; day < 4; day++) {
    log.add(`day ${day}\n`);
    await log.flushed();
    now += 86_400_000;
  }
  await log.close();
  t.equal(await readFile(path, 'utf8'), 'day 3\n', 'the current file holds the last day');
  const rolled = (await readdir(join(dir, 'daily'))).filter((n) => n !== 'access.log').sort();
  t.equal(rolled.length, 2, `two rolled files kept: ${rolled.join(', ')}`);
  t.equal(await readFile(join(dir, 'daily', rolled[1] as string), 'utf8'), 'day 2\n');
  t.equal(log.written, 4);
});

t.test('size rolling, and append: false truncates at start', async (t) => {
  const path = join(dir, 'size.log');
  await writeFile(path, 'old line\n');
  let now = Date.UTC(2026, 0, 1);
  const log = new AccessLog(config(path, { rollPolicy: { kind: 'size', bytes: 20 }, append: false }), { clock: clockWithNow(() => (now += 1000)) });
  for (const l of ['0123456789\n', 'abcdefghij\n', 'ABCDEFGHIJ\n']) {
    log.add(l);
    await log.flushed();
  }
  await log.close();
  t.equal(await readFile(path, 'utf8'), 'ABCDEFGHIJ\n');
  const all = await readdir(dir);
  const texts = await Promise.all(all.filter((n) => /^size-\d{8}_\d{6}\.log$/.test(n)).map((n) => readFile(join(dir, n), 'utf8')));
  t.same(texts.sort(), ['0123456789\n', 'abcdefghij\n'], 'each file under 20 bytes; the old line was truncated away');
});

t.test('never stalls the caller: a writer behind drops past httpAccessLogBufferKB, and counts', async (t) => {
  const log = new AccessLog(config(join(dir, 'burst.log'), { bufferBytes: 1000 }));
  const line = `${'x'.repeat(99)}\n`;
  for (let i = 0; i < 1000; i++) log.add(line); // synchronous: no write can finish in between
  t.ok(log.dropped >= 980, `dropped ${log.dropped}`);
  await log.close();
  t.equal(log.written + log.dropped, 1000, 'every line written or counted');
  const text = await readFile(join(dir, 'burst.log'), 'utf8');
  t.equal(text.length, log.written * 100);
});

t.test('a full disk and an impossible path drop lines, count them, and say so once', async (t) => {
  const errors: string[] = [];
  const full = new AccessLog(config('/dev/full'), { onError: (e) => errors.push(e.message) });
  for (let i = 0; i < 5; i++) {
    full.add('line\n');
    await full.flushed();
  }
  await full.close();
  t.equal(full.written, 0);
  t.equal(full.dropped, 5);
  t.equal(errors.length, 1, 'one error per failure streak');
  t.match(errors[0], /ENOSPC|no space/i);
  await writeFile(join(dir, 'a-file'), '');
  const impossible = new AccessLog(config(join(dir, 'a-file', 'access.log')));
  impossible.add('line\n');
  await impossible.close();
  t.equal(impossible.dropped, 1);
});
