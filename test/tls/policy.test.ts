// Linkerd 1's `protocols`/`ciphers` names as tables: what each maps to in Node, which are refused
// or warned about, and the default policy (forward-secret AEAD only).

import t from 'tap';
import fc from 'fast-check';
import { classifyCipher, classifyProtocol, tlsPolicy, tlsPolicyNotes, tlsPolicyProblems } from '../../src/tls/policy.js';

t.test('protocol names', async (t) => {
  const table: [string, string][] = [
    ['TLSv1.2', 'ok TLSv1.2'],
    ['TLSv1.3', 'ok TLSv1.3'],
    ['tlsv1.3', 'ok TLSv1.3'],
    ['TLSv1.1', 'refused'],
    ['TLSv1', 'refused'],
    ['SSLv3', 'refused'],
    ['SSLv2Hello', 'refused'],
    ['TLSv9', 'unknown'],
    ['TLS1.2', 'unknown'],
    ['', 'unknown'],
  ];
  for (const [name, want] of table) {
    const v = classifyProtocol(name);
    t.equal(v.kind === 'ok' ? `ok ${v.version}` : v.kind, want, name);
  }
});

t.test('cipher names: IANA/JSSE and OpenSSL spellings', async (t) => {
  const table: [string, string][] = [
    ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ok ECDHE-RSA-AES128-GCM-SHA256'],
    ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ok ECDHE-ECDSA-AES256-GCM-SHA384'],
    ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ok ECDHE-RSA-CHACHA20-POLY1305'],
    ['TLS_DHE_RSA_WITH_AES_128_GCM_SHA256', 'ok DHE-RSA-AES128-GCM-SHA256'],
    ['TLS_AES_128_GCM_SHA256', 'ok TLS_AES_128_GCM_SHA256'],
    ['ecdhe-rsa-aes128-gcm-sha256', 'ok ECDHE-RSA-AES128-GCM-SHA256'],
    ['TLS_RSA_WITH_AES_128_CBC_SHA', 'weak AES128-SHA has no forward secrecy and is not AEAD (CBC)'],
    ['TLS_RSA_WITH_AES_128_GCM_SHA256', 'weak AES128-GCM-SHA256 has no forward secrecy'],
    ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'weak ECDHE-RSA-AES128-SHA is not AEAD (CBC)'],
    ['SSL_RSA_WITH_3DES_EDE_CBC_SHA', 'unavailable DES-CBC3-SHA'],
    ['TLS_RSA_WITH_RC4_128_MD5', 'unavailable RC4-MD5'],
    ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265', 'unknown'],
    ['NOT_A_CIPHER', 'unknown'],
    ['HIGH', 'unknown'],
    ['ALL:!aNULL', 'unknown'],
  ];
  for (const [name, want] of table) {
    const v = classifyCipher(name);
    const got =
      v.kind === 'ok'
        ? v.weakness !== undefined
          ? `weak ${v.openssl} ${v.weakness}`
          : `ok ${v.openssl}`
        : v.kind === 'unavailable'
          ? `unavailable ${v.openssl}`
          : v.kind;
    t.equal(got, want, name);
  }
});

t.test('the default is TLS 1.2-1.3 with forward-secret AEAD suites only', async (t) => {
  const p = tlsPolicy();
  t.equal(p.minVersion, 'TLSv1.2');
  t.equal(p.maxVersion, 'TLSv1.3');
  for (const suite of p.ciphers.split(':'))
    t.match(suite, /^(TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+|ECDHE-(RSA|ECDSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305))$/, suite);
});

t.test('lists combine: TLS 1.3 keeps its suites unless some are listed; problems and notes carry their index', async (t) => {
  t.same(tlsPolicy(['TLSv1.2'], ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384']), {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES256-GCM-SHA384',
  });
  t.same(
    tlsPolicy(undefined, ['TLS_AES_256_GCM_SHA384']),
    { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' },
    'only TLS 1.3 suites listed: TLS 1.3 only',
  );
  t.same(tlsPolicy(['TLSv1.1', 'TLSv1.2']).minVersion, 'TLSv1.2');
  t.same(tlsPolicyProblems(['TLSv1.2', 'bogus']), [{ path: ['protocols', 1], message: "unknown TLS protocol 'bogus' (expected TLSv1.2 or TLSv1.3)" }]);
  t.match(tlsPolicyProblems(['TLSv1.1']), [{ path: ['protocols'], message: /none of these protocols/ }]);
  t.match(tlsPolicyProblems(['TLSv1.2'], ['TLS_AES_128_GCM_SHA256']), [{ path: ['ciphers'], message: /no listed suite is usable/ }]);
  t.match(tlsPolicyNotes(['TLSv1', 'TLSv1.2'], ['TLS_RSA_WITH_AES_128_CBC_SHA', 'SSL_RSA_WITH_3DES_EDE_CBC_SHA']), [
    { path: ['protocols', 0], message: /TLSv1 is not offered/ },
    { path: ['ciphers', 0], message: /no forward secrecy/ },
    { path: ['ciphers', 1], message: /not available/ },
  ]);
});

t.test('classifying never throws, whatever the name', async () => {
  fc.assert(
    fc.property(fc.string(), fc.array(fc.string(), { maxLength: 5 }), (name, list) => {
      classifyProtocol(name);
      classifyCipher(name);
      tlsPolicyProblems(list, list);
      tlsPolicyNotes(list, list);
    }),
  );
});
