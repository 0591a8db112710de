// static/captions/wire.js: the captions API's JSON checked into typed shapes. What the server writes (server/wire.py,
// server/captions.py _sse) passes; anything else (wrong types, fields missing, null, arrays, values that would become
// NaN) is refused with null, never half-read.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  errorMessage, parseCaptionEvent, parsePublishResult, parseShareGrant, parseShareStatus, shareExpiry,
} from '../../static/captions/wire.js';

/** Shapes every parser must refuse, whatever it parses. */
const NOT_OBJECTS = [null, undefined, 0, 1, NaN, '', 'active', true, [], [{}], () => {}];

/** What an expires_in (seconds left, optional) must not be. */
const BAD_LEFT = [null, '60', -1, -0.001, NaN, Infinity, [60], true];

/** `good` with `key` set to each of `values` (undefined: the key left out). */
function variants(good, key, values) {
  return values.map((v) => {
    const copy = { ...good };
    if (v === undefined) delete copy[key];
    else copy[key] = v;
    return copy;
  });
}

test('parseShareStatus: the status GET /api/captions/{id} answers', () => {
  const good = { status: 'active', live: true, expires_at: 1_700_000_000.5, viewers: 3, max_viewers: 300 };
  assert.deepEqual(parseShareStatus(good), good);
  assert.deepEqual(parseShareStatus({ ...good, status: 'revoked', live: false, viewers: 0 }),
    { ...good, status: 'revoked', live: false, viewers: 0 });
  assert.deepEqual(parseShareStatus({ ...good, extra: 'ignored' }), good, 'fields it does not read are left out');
  for (const left of [0, 1799.5]) assert.deepEqual(parseShareStatus({ ...good, expires_in: left }), { ...good, expires_in: left });
  for (const bad of [
    ...NOT_OBJECTS,
    ...variants(good, 'status', [undefined, null, 'ended', 'ACTIVE', 1, true]),
    ...variants(good, 'live', [undefined, null, 'true', 1, 0]),
    ...variants(good, 'expires_at', [undefined, null, '1700000000', NaN, Infinity, [1]]),
    ...variants(good, 'viewers', [undefined, null, '3', -1, 1.5, NaN, Infinity, true, 2 ** 53]),
    ...variants(good, 'max_viewers', [undefined, null, '300', 0, 2.5, NaN]),
    ...variants(good, 'expires_in', BAD_LEFT),
  ]) assert.equal(parseShareStatus(bad), null, JSON.stringify(bad) ?? String(bad));
});

test('parseShareGrant: the new share POST /api/captions answers', () => {
  const good = { share_id: 'S'.repeat(22), viewer_url: '/captions/SSS', publish_token: 't'.repeat(43), expires_at: 1_700_000_000 };
  const full = { ...good, deadline: 1_700_010_000, max_viewers: 300 };
  assert.deepEqual(parseShareGrant(full), good);
  assert.deepEqual(parseShareGrant({ ...full, expires_in: 1800 }), { ...good, expires_in: 1800 });
  for (const bad of [
    ...NOT_OBJECTS,
    ...variants(good, 'share_id', [undefined, null, '', 5, ['S']]),
    ...variants(good, 'viewer_url', [undefined, null, '', {}]),
    ...variants(good, 'publish_token', [undefined, null, '', 1234]),
    ...variants(good, 'expires_at', [undefined, null, '0', NaN, -Infinity]),
    ...variants(good, 'expires_in', BAD_LEFT),
  ]) assert.equal(parseShareGrant(bad), null, JSON.stringify(bad) ?? String(bad));
});

test('parsePublishResult: what a publish request is answered with', () => {
  const good = { viewers: 2, expires_at: 1_700_000_000.25, live: false };
  assert.deepEqual(parsePublishResult({ seq: 7, ...good }), good);
  assert.deepEqual(parsePublishResult({ seq: 7, ...good, expires_in: 0.25 }), { ...good, expires_in: 0.25 });
  for (const bad of [
    ...NOT_OBJECTS,
    ...variants(good, 'viewers', [undefined, null, '2', -1, 0.5, NaN]),
    ...variants(good, 'expires_at', [undefined, null, '1', NaN, Infinity]),
    ...variants(good, 'live', [undefined, null, 'false', 0]),
    ...variants(good, 'expires_in', BAD_LEFT),
  ]) assert.equal(parsePublishResult(bad), null, JSON.stringify(bad) ?? String(bad));
});

test("shareExpiry: expires_in counted from the answer's arrival, else expires_at on the server's clock", () => {
  const receivedAt = 5_000_000;
  assert.equal(shareExpiry({ expires_at: 1_700_000_000, expires_in: 90.5 }, receivedAt), receivedAt + 90500);
  assert.equal(shareExpiry({ expires_at: 1_700_000_000, expires_in: 0 }, receivedAt), receivedAt);
  assert.equal(shareExpiry({ expires_at: 1_700_000_000 }, receivedAt), 1_700_000_000_000);
});

test("errorMessage: the app's error answer's message, or ''", () => {
  assert.equal(errorMessage({ error: { code: 'bad_events', message: 'Each final needs a seq.' } }), 'Each final needs a seq.');
  for (const bad of [...NOT_OBJECTS, {}, { error: null }, { error: 'boom' }, { error: [] }, { error: { message: 5 } },
    { error: { code: 'x' } }, { message: 'not under error' }]) {
    assert.equal(errorMessage(bad), '', JSON.stringify(bad) ?? String(bad));
  }
});

test('parseCaptionEvent: the events the server streams pass, typed', () => {
  assert.deepEqual(parseCaptionEvent('final', '{"text": "Hello.", "seq": 1}'), { type: 'final', seq: 1, text: 'Hello.' });
  assert.deepEqual(parseCaptionEvent('final', '{"text": "", "seq": 9007199254740991}'), { type: 'final', seq: 2 ** 53 - 1, text: '' });
  assert.deepEqual(parseCaptionEvent('partial', '{"text": "hel"}'), { type: 'partial', text: 'hel' });
  assert.deepEqual(parseCaptionEvent('state', '{"live": false}'), { type: 'state', live: false });
  assert.deepEqual(parseCaptionEvent('state', '{"live": true}'), { type: 'state', live: true });
  assert.deepEqual(parseCaptionEvent('end', '{"reason": "revoked"}'), { type: 'end', reason: 'revoked' });
  assert.deepEqual(parseCaptionEvent('end', '{"reason": "expired"}'), { type: 'end', reason: 'expired' });
  assert.deepEqual(parseCaptionEvent('end', '{"reason": "something new"}'), { type: 'end', reason: 'expired' },
    'an end is an end, whatever its reason');
});

test('parseCaptionEvent: malformed events are refused, never half-read', () => {
  /** @type {[string, unknown][]} */
  const cases = [
    // Not a JSON text at all.
    ['final', undefined], ['final', null], ['final', 1], ['final', { text: 'x', seq: 1 }], ['final', ''],
    ['final', 'not json'], ['final', '{"text": "x", "seq": 1'],
    // JSON, but not an object.
    ['final', 'null'], ['final', '1'], ['final', '"text"'], ['final', '[{"text": "x", "seq": 1}]'], ['partial', '[]'],
    // A final whose seq would be NaN, 0, fractional or past exact integers, or whose text is not a string.
    ['final', '{"text": "x"}'], ['final', '{"text": "x", "seq": "1"}'], ['final', '{"text": "x", "seq": null}'],
    ['final', '{"text": "x", "seq": 0}'], ['final', '{"text": "x", "seq": -3}'], ['final', '{"text": "x", "seq": 1.5}'],
    ['final', '{"text": "x", "seq": 1e300}'], ['final', '{"text": "x", "seq": true}'], ['final', '{"seq": 1}'],
    ['final', '{"text": null, "seq": 1}'], ['final', '{"text": ["x"], "seq": 1}'], ['final', '{"text": 5, "seq": 1}'],
    ['partial', '{}'], ['partial', '{"text": null}'], ['partial', '{"text": 1}'], ['partial', '{"text": {}}'],
    ['state', '{}'], ['state', '{"live": "false"}'], ['state', '{"live": 0}'], ['state', '{"live": null}'],
    ['end', '{}'], ['end', '{"reason": null}'], ['end', '{"reason": 1}'], ['end', '{"reason": ["revoked"]}'],
    // An event name the stream does not have.
    ['resync', '{"text": "x", "seq": 1}'],
  ];
  for (const [type, text] of cases) {
    assert.equal(parseCaptionEvent(/** @type {any} */ (type), text), null, `${type} ${String(text)}`);
  }
});
