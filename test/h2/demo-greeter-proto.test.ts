// The demo greeter's hand-written protobuf (one string field 1, as helloworld's HelloRequest and
// HelloReply): byte-for-byte what protobufjs writes, and it reads what protobufjs writes back.

import fc from 'fast-check';
import protobuf from 'protobufjs';
import t from 'tap';
import { protoField1, protoString1 } from '../../src/demo/apps.js';

t.test('protoString1 writes field 1 as protobufjs does, for any string', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
      const theirs = Buffer.from(protobuf.Writer.create().uint32(0x0a).string(s).finish());
      return protoString1(s).equals(theirs);
    }),
  );
  t.pass('property held');
});

t.test('protoField1 reads what protobufjs writes (and an empty message as "")', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
      return protoField1(Buffer.from(protobuf.Writer.create().uint32(0x0a).string(s).finish())) === s;
    }),
  );
  t.equal(protoField1(Buffer.alloc(0)), '');
  t.equal(protoField1(protoString1('x'.repeat(300))), 'x'.repeat(300), 'a two-byte length');
});

t.test('protoField1 never throws on arbitrary bytes (a hostile HelloRequest)', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => typeof protoField1(Buffer.from(b)) === 'string'));
  t.pass('property held');
});
