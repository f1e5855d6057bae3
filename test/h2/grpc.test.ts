// The gRPC wire pieces (src/h2/grpc.ts): grpc-timeout parse/format, grpc-message encoding, router
// errors as statuses, and the io.l5d.h2.grpc.* classifiers (src/router/stages/forward/classifier.ts); fast-check properties beside the parsers.

import fc from 'fast-check';
import t from 'tap';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { encodeGrpcMessage, formatGrpcTimeout, GRPC, grpcStatusOf, grpcStatusValue, isGrpc, parseGrpcTimeout } from '../../src/h2/grpc.js';
import { h2Classifier } from '../../src/router/stages/forward/classifier.js';

t.test('grpc-timeout: units, the 8-digit bound, and garbage refused', async (t) => {
  t.equal(parseGrpcTimeout('100m'), 100);
  t.equal(parseGrpcTimeout('2S'), 2000);
  t.equal(parseGrpcTimeout('1H'), 3_600_000);
  t.equal(parseGrpcTimeout('1500u'), 1.5);
  for (const bad of ['', '1', 'm', '123456789m', '-1m', '1.5S', '1 S', '1x']) t.equal(parseGrpcTimeout(bad), undefined, JSON.stringify(bad));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }), (ms) => {
      const wire = formatGrpcTimeout(ms);
      t.ok(/^\d{1,8}[mSM]$/.test(wire), wire);
      const back = parseGrpcTimeout(wire) as number;
      // Never less time than asked; coarser units round up by at most one unit.
      return back >= ms && back - ms < (wire.endsWith('m') ? 1 : wire.endsWith('S') ? 1000 : 60_000);
    }),
  );
  fc.assert(fc.property(fc.string(), (s) => parseGrpcTimeout(s) === undefined || /^\d{1,8}[HMSmun]$/.test(s.trim())));
});

t.test('grpc-message: printable ASCII but % kept, the rest percent-encoded UTF-8', async (t) => {
  t.equal(encodeGrpcMessage('no route to /svc/x'), 'no route to /svc/x');
  t.equal(encodeGrpcMessage('100% é\n'), '100%25 %C3%A9%0A');
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => decodeURIComponent(encodeGrpcMessage(s)) === Buffer.from(s, 'utf8').toString('utf8')));
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => /^[\x20-\x7e]*$/.test(encodeGrpcMessage(s))));
});

t.test('every catalog error has a gRPC status; the ones the issue names', async (t) => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) t.ok(grpcStatusValue(String(grpcStatusOf(code))) !== undefined, code);
  t.equal(grpcStatusOf('NO_ROUTE'), GRPC.UNAVAILABLE);
  t.equal(grpcStatusOf('NO_ENDPOINTS'), GRPC.UNAVAILABLE);
  t.equal(grpcStatusOf('TIMEOUT'), GRPC.DEADLINE_EXCEEDED);
  t.equal(grpcStatusOf('AUTHZ_DENIED'), GRPC.PERMISSION_DENIED);
  t.equal(grpcStatusOf('SHED'), GRPC.RESOURCE_EXHAUSTED);
});

t.test('content types and status values', async (t) => {
  t.ok(isGrpc('application/grpc'));
  t.ok(isGrpc('application/grpc+proto'));
  t.notOk(isGrpc('application/grpc-web'));
  t.notOk(isGrpc(undefined));
  t.equal(grpcStatusValue('14'), 14);
  t.equal(grpcStatusValue('17'), undefined);
  t.equal(grpcStatusValue('x'), undefined);
});

t.test("Linkerd 1's h2 classifiers", async (t) => {
  const def = h2Classifier(undefined);
  t.equal(def('POST', 200, GRPC.OK), 'success');
  t.equal(def('POST', 200, GRPC.UNAVAILABLE), 'retryable');
  t.equal(def('POST', 200, GRPC.INTERNAL), 'failure');
  t.equal(def('POST', 503, undefined), 'failure');
  t.equal(h2Classifier('io.l5d.h2.grpc.neverRetryable')('POST', 200, GRPC.UNAVAILABLE), 'failure');
  t.equal(h2Classifier('io.l5d.h2.grpc.alwaysRetryable')('POST', 200, GRPC.INTERNAL), 'retryable');
  const codes = h2Classifier('io.l5d.h2.grpc.retryableStatusCodes', [GRPC.RESOURCE_EXHAUSTED]);
  t.equal(codes('POST', 200, GRPC.RESOURCE_EXHAUSTED), 'retryable');
  t.equal(codes('POST', 200, GRPC.UNAVAILABLE), 'failure');
  t.equal(h2Classifier('io.l5d.h2.retryableRead5XX')('GET', 503, undefined), 'retryable');
  t.equal(h2Classifier('io.l5d.h2.allSuccessful')('GET', 503, undefined), 'success');
  t.equal(h2Classifier('io.l5d.h2.retryableAll5XX')('POST', 503, undefined), 'retryable');
});

t.test("Linkerd 1's successStatusCodes and io.l5d.h2.grpc.compliant", async (t) => {
  const lenient = h2Classifier('io.l5d.h2.grpc.default', undefined, [GRPC.OK, GRPC.NOT_FOUND]);
  t.equal(lenient('POST', 200, GRPC.NOT_FOUND), 'success', 'a listed code is a success');
  t.equal(lenient('POST', 200, GRPC.UNAVAILABLE), 'retryable');
  t.equal(h2Classifier('io.l5d.h2.grpc.default', undefined, [GRPC.NOT_FOUND])('POST', 200, GRPC.OK), 'failure', 'OK too only when listed, as Linkerd 1');
  const compliant = h2Classifier('io.l5d.h2.grpc.compliant');
  t.equal(compliant('POST', 200, GRPC.UNAVAILABLE), 'retryable');
  t.equal(compliant('POST', 200, GRPC.INTERNAL), 'failure');
  t.equal(compliant('POST', 503, undefined), 'retryable', 'HTTP 503 is UNAVAILABLE to gRPC');
  t.equal(compliant('POST', 500, undefined), 'failure');
});
