// static/page/share.js: how the page words a share's expiry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeExpiry } from '../../static/page/share.js';

test('the expiry is said in minutes, hours when long, and whether a recording keeps it alive', () => {
  const now = 1_000_000;
  assert.equal(describeExpiry(null, false, now), '');
  assert.equal(describeExpiry(now + 30 * 60000, false, now), 'ends in 30 min unless a recording starts');
  assert.equal(describeExpiry(now + 4 * 3600000, true, now), 'ends at the latest in 4 h');
  assert.equal(describeExpiry(now - 5000, false, now), 'ends in 0 min unless a recording starts');
});
