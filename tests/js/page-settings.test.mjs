// static/page/settings.js: what the page remembers, with a storage double (and one that refuses).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { loadFolded, saveFolded } from '../../static/page/settings.js';

function memory() {
  const items = new Map();
  return { getItem: (k) => (items.has(k) ? items.get(k) : null), setItem: (k, v) => { items.set(k, String(v)); } };
}

test('the settings panel starts folded, and stays as the reader left it', () => {
  const storage = memory();
  assert.equal(loadFolded(storage), true);
  saveFolded(storage, false);
  assert.equal(loadFolded(storage), false);
  saveFolded(storage, true);
  assert.equal(loadFolded(storage), true);
});

test('a storage that refuses (private mode) folds it and remembers nothing, without throwing', () => {
  const refusing = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); } };
  assert.equal(loadFolded(refusing), true);
  saveFolded(refusing, false);
  assert.equal(loadFolded(null), true);
});
