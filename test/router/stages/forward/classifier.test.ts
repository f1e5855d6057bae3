// Response classifiers as Linkerd 1 documents them: a table of (kind, method, status, headers)
// and the class each gives, plus the l5d-success-class value of each class.

import t from 'tap';
import { classifier, CLASSIFIER_KINDS, successClass, type ClassifierKind, type ResponseClass } from '../../../../src/router/stages/forward/classifier.js';
import { RESPONSE_CLASSIFIERS } from '../../../../src/config/schema.js';

type Row = [ClassifierKind, string, number, Record<string, string>, ResponseClass, boolean?];

const rows: Row[] = [
  // nonRetryable5XX (the default): 5XX fail, nothing is retried unless the answer says so.
  ['io.l5d.http.nonRetryable5XX', 'GET', 200, {}, 'success'],
  ['io.l5d.http.nonRetryable5XX', 'GET', 404, {}, 'success'],
  ['io.l5d.http.nonRetryable5XX', 'GET', 503, {}, 'failure'],
  ['io.l5d.http.nonRetryable5XX', 'POST', 500, {}, 'failure'],
  ['io.l5d.http.nonRetryable5XX', 'POST', 503, { 'l5d-retryable': 'true' }, 'retryable'],
  ['io.l5d.http.nonRetryable5XX', 'POST', 503, { 'l5d-retryable': 'false' }, 'failure'],
  // retryableRead5XX: GET HEAD OPTIONS TRACE.
  ['io.l5d.http.retryableRead5XX', 'GET', 503, {}, 'retryable'],
  ['io.l5d.http.retryableRead5XX', 'HEAD', 500, {}, 'retryable'],
  ['io.l5d.http.retryableRead5XX', 'OPTIONS', 502, {}, 'retryable'],
  ['io.l5d.http.retryableRead5XX', 'TRACE', 504, {}, 'retryable'],
  ['io.l5d.http.retryableRead5XX', 'get', 503, {}, 'retryable'],
  ['io.l5d.http.retryableRead5XX', 'PUT', 503, {}, 'failure'],
  ['io.l5d.http.retryableRead5XX', 'DELETE', 503, {}, 'failure'],
  ['io.l5d.http.retryableRead5XX', 'POST', 503, {}, 'failure'],
  ['io.l5d.http.retryableRead5XX', 'GET', 499, {}, 'success'],
  // retryableIdempotent5XX: also PUT and DELETE, never POST or PATCH.
  ['io.l5d.http.retryableIdempotent5XX', 'PUT', 503, {}, 'retryable'],
  ['io.l5d.http.retryableIdempotent5XX', 'DELETE', 500, {}, 'retryable'],
  ['io.l5d.http.retryableIdempotent5XX', 'GET', 500, {}, 'retryable'],
  ['io.l5d.http.retryableIdempotent5XX', 'POST', 500, {}, 'failure'],
  ['io.l5d.http.retryableIdempotent5XX', 'PATCH', 500, {}, 'failure'],
  // retryableAll5XX: any method, POST and PATCH too (not a chunked body, below).
  ['io.l5d.http.retryableAll5XX', 'POST', 502, {}, 'retryable'],
  ['io.l5d.http.retryableAll5XX', 'PATCH', 500, {}, 'retryable'],
  ['io.l5d.http.retryableAll5XX', 'POST', 404, {}, 'success'],
  ['io.l5d.http.retryableAll5XX', 'POST', 503, {}, 'failure', true],
  // Chunked request bodies are never retryable (Linkerd 1's warning), even when marked.
  ['io.l5d.http.retryableIdempotent5XX', 'PUT', 503, {}, 'failure', true],
  ['io.l5d.http.nonRetryable5XX', 'PUT', 503, { 'l5d-retryable': 'true' }, 'failure', true],
  // allSuccessful: everything counts as a success.
  ['io.l5d.http.allSuccessful', 'GET', 500, {}, 'success'],
  ['io.l5d.http.allSuccessful', 'GET', 503, { 'l5d-retryable': 'true' }, 'success'],
  // The names without `http.` (older Linkerd 1 docs) mean the same.
  ['io.l5d.retryableRead5XX', 'GET', 503, {}, 'retryable'],
  ['io.l5d.nonRetryable5XX', 'GET', 503, {}, 'failure'],
];

t.test('classes by kind, method, status and l5d-retryable', async (t) => {
  for (const [kind, method, status, headers, want, chunked] of rows) {
    t.equal(
      classifier(kind)({ method, chunked: chunked === true }, status, headers),
      want,
      `${kind} ${method} ${status} ${JSON.stringify(headers)}${chunked ? ' chunked' : ''}`,
    );
  }
});

t.test('the default is nonRetryable5XX', async (t) => {
  t.equal(classifier()({ method: 'GET', chunked: false }, 503, {}), 'failure');
});

t.test('l5d-success-class: 1.0 for a success, 0.0 for a failure of either kind', async (t) => {
  t.equal(successClass('success'), '1.0');
  t.equal(successClass('failure'), '0.0');
  t.equal(successClass('retryable'), '0.0');
});

t.test('the config schema accepts exactly the kinds the router implements', async (t) => {
  t.same([...RESPONSE_CLASSIFIERS].sort(), [...CLASSIFIER_KINDS].sort());
});
