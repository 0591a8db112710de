import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stripOverlap } from '../../static/session.js';

test('a replay repeat is cut where it matches the end of the finals', () => {
  assert.equal(stripOverlap(['the', 'weather', 'is', 'nice'], 'The weather is nice today'), 'today');
  assert.equal(stripOverlap(['we', 'are', 'going', 'to'], 'going, to the park'), 'the park');
});

test('fewer than two matching words are kept: a lone repeated word is more likely speech', () => {
  assert.equal(stripOverlap(['a', 'b'], 'b c'), 'b c');
  assert.equal(stripOverlap([], 'hello there'), 'hello there');
  assert.equal(stripOverlap(['x', 'y'], ''), '');
});

test('a repeat heard otherwise is still cut: the seam is where the end of the finals matches best', () => {
  // CI, Wiro in Firefox: the replay began inside "weather", and the engine heard the repeat otherwise.
  assert.equal(stripOverlap(['though', 'weather', 'is', 'nigh'], 'the lead is nigh today and we'), 'today and we');
  // A fragment of a word before the repeat, and a word dropped in it.
  assert.equal(stripOverlap(['we', 'are', 'going', 'to', 'the', 'park'], 'um going the park now'), 'now');
  // CI, Wiro in Chromium: the replay began inside "weather" again, and the rest of it was heard as "there"; only
  // "is" matched as written, and one word was not enough.
  assert.equal(stripOverlap(['the', 'weather', 'is'], 'there is nice today'), 'nice today');
  // Not a repeat: new words that happen to share one with the end of the finals stay.
  assert.equal(stripOverlap(['the', 'weather', 'is', 'nice'], 'it is cold today'), 'it is cold today');
  assert.equal(stripOverlap(['the', 'weather', 'is', 'nice'], 'nice to meet you'), 'nice to meet you');
  // Nor is a short word inside a longer one, or a short run of letters shared ("is" in "this", "the" in "then").
  assert.equal(stripOverlap(['the', 'weather', 'is'], 'this is it'), 'this is it');
  assert.equal(stripOverlap(['and', 'the', 'weather'], 'then leather goods'), 'then leather goods');
});

test('the longest overlap wins', () => {
  assert.equal(stripOverlap(['go', 'go', 'go'], 'go go go now'), 'now');
});
