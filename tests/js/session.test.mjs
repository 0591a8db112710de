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
  // Nor is a word that shares letters with one of the tail, where it is not the rest of a word cut by the replay's
  // start: past the first word, longer than the tail word, or too little of it shared ("is" in "this").
  assert.equal(stripOverlap(['the', 'weather', 'is'], 'this is it'), 'this is it');
  assert.equal(stripOverlap(['and', 'the', 'weather'], 'then leather goods'), 'then leather goods');
  assert.equal(stripOverlap(['and', 'the', 'weather'], 'then weather is nice'), 'then weather is nice');
  assert.equal(stripOverlap(['sales', 'in', '2023'], 'in 2024 they fell'), 'in 2024 they fell');
  assert.equal(stripOverlap(['early', 'in', 'the', 'morning'], 'The mornings are cool here.'), 'The mornings are cool here.');
  assert.equal(stripOverlap(['this', 'present', 'for', 'you.'], 'For your birthday we will go out.'), 'For your birthday we will go out.');
  assert.equal(stripOverlap(['now', 'do', 'step', 'seven.'], 'Step seventeen is the last one.'), 'Step seventeen is the last one.');
  assert.equal(stripOverlap(['went', 'over', 'there.'], 'Over the hill is a village.'), 'Over the hill is a village.');
  assert.equal(stripOverlap(['take', 'the', 'one'], 'Then one more thing'), 'Then one more thing');
});

test('the longest overlap wins', () => {
  assert.equal(stripOverlap(['go', 'go', 'go'], 'go go go now'), 'now');
});
