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

test('the longest overlap wins', () => {
  assert.equal(stripOverlap(['go', 'go', 'go'], 'go go go now'), 'now');
});
