// The captions viewer's pure parts: overlay parameters and the lines kept on screen.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaptionLines, DEFAULTS, SIZE_MAX, endNotice, parseOverlay } from '../../static/captions/overlay.js';

test('no parameters: the defaults (white on black, the whole transcript)', () => {
  assert.deepEqual(parseOverlay(''), DEFAULTS);
});

test('an OBS overlay: transparent, sized, a few lines, centred', () => {
  assert.deepEqual(parseOverlay('?bg=transparent&size=56&lines=2&align=center'),
    { bg: 'transparent', theme: 'dark', size: 56, lines: 2, align: 'center' });
});

test('light alone gives dark text on white; bad values fall back or are clamped', () => {
  assert.deepEqual(parseOverlay('?bg=light'), { ...DEFAULTS, bg: 'light', theme: 'light' });
  assert.deepEqual(parseOverlay('?theme=light'), { ...DEFAULTS, bg: 'light', theme: 'light' });
  const odd = parseOverlay('?bg=url(x)&size=9999&lines=-3&align=justify&theme=neon');
  assert.deepEqual(odd, { ...DEFAULTS, size: SIZE_MAX, lines: 0 });
  assert.equal(parseOverlay('?size=abc').size, DEFAULTS.size);
  assert.equal(parseOverlay('?size=').size, DEFAULTS.size);
});

test('a final is shown once, by its number, and clears the line being recognised', () => {
  const lines = new CaptionLines(0);
  lines.setInterim('hel');
  assert.deepEqual(lines.addFinal(1, ' hello. '), { added: true, dropped: 0 });
  assert.equal(lines.interim, '');
  assert.deepEqual(lines.addFinal(1, 'hello.'), { added: false, dropped: 0 });
  assert.deepEqual(lines.addFinal(3, 'three.'), { added: true, dropped: 0 });
  assert.deepEqual(lines.addFinal(2, 'late two.'), { added: false, dropped: 0 });
  assert.deepEqual(lines.finals.map((f) => f.text), ['hello.', 'three.']);
});

test('with lines=N only the last N stay', () => {
  const lines = new CaptionLines(2);
  lines.addFinal(1, 'a');
  lines.addFinal(2, 'b');
  assert.deepEqual(lines.addFinal(3, 'c'), { added: true, dropped: 1 });
  assert.deepEqual(lines.finals.map((f) => f.seq), [2, 3]);
  // An empty final (silence) advances the number but shows nothing.
  assert.deepEqual(lines.addFinal(4, '  '), { added: false, dropped: 0 });
  assert.equal(lines.lastSeq, 4);
});

test('the notices say plainly what happened', () => {
  assert.match(endNotice('revoked'), /stopped sharing/);
  assert.match(endNotice('expired'), /expired/);
  assert.match(endNotice('full'), /as many viewers/);
  assert.match(endNotice('paused'), /Paused/);
});
