// The captions viewer's pure parts: overlay parameters and the lines kept on screen.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaptionLines, DEFAULTS, MISSED_NOTE, SIZE_MAX, endNotice, parseOverlay } from '../../static/captions/overlay.js';

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
  assert.deepEqual(lines.addFinal(1, ' hello. '), { added: [{ seq: 1, text: 'hello.' }], dropped: 0 });
  assert.equal(lines.interim, '');
  assert.deepEqual(lines.addFinal(1, 'hello.'), { added: [], dropped: 0 });
  assert.deepEqual(lines.addFinal(2, 'two.').added, [{ seq: 2, text: 'two.' }]);
  assert.deepEqual(lines.addFinal(2, 'late two.'), { added: [], dropped: 0 });
  assert.deepEqual(lines.finals.map((f) => f.text), ['hello.', 'two.']);
});

test('a number skipped is finals missed: a line says so before the next final, once', () => {
  const lines = new CaptionLines(0);
  // Joining late: the first final's number says nothing about what this viewer missed.
  assert.deepEqual(lines.addFinal(101, 'a').added, [{ seq: 101, text: 'a' }]);
  assert.deepEqual(lines.addFinal(105, 'b').added, [
    { seq: 104, text: MISSED_NOTE, gap: { from: 102, to: 104 } }, { seq: 105, text: 'b' },
  ]);
  assert.deepEqual(lines.addFinal(103, 'late').added, [], 'a missed one arriving late stays missed');
  // The server's own word for it: the finals after the gap then follow on, with no second note.
  assert.deepEqual(lines.addGap(106, 200).added, [{ seq: 200, text: MISSED_NOTE, gap: { from: 106, to: 200 } }]);
  assert.deepEqual(lines.addFinal(201, 'c').added, [{ seq: 201, text: 'c' }]);
  assert.deepEqual(lines.addGap(150, 180).added, [], 'a gap already passed');
  assert.deepEqual(lines.finals.map((f) => f.text), ['a', MISSED_NOTE, 'b', MISSED_NOTE, 'c']);
  // With lines=1, the note and its final in one step: only the final stays.
  const one = new CaptionLines(1);
  one.addFinal(1, 'x');
  assert.deepEqual(one.addFinal(3, 'y').dropped, 2);
  assert.deepEqual(one.finals.map((f) => f.text), ['y']);
});

test('with lines=N only the last N stay', () => {
  const lines = new CaptionLines(2);
  lines.addFinal(1, 'a');
  lines.addFinal(2, 'b');
  assert.deepEqual(lines.addFinal(3, 'c'), { added: [{ seq: 3, text: 'c' }], dropped: 1 });
  assert.deepEqual(lines.finals.map((f) => f.seq), [2, 3]);
  // An empty final (silence) advances the number but shows nothing.
  assert.deepEqual(lines.addFinal(4, '  '), { added: [], dropped: 0 });
  assert.equal(lines.lastSeq, 4);
});

test('the notices say plainly what happened', () => {
  assert.match(endNotice('revoked'), /stopped sharing/);
  assert.match(endNotice('expired'), /expired/);
  assert.match(endNotice('full'), /as many viewers/);
  assert.match(endNotice('paused'), /Paused/);
});

test('long words and URLs wrap, on the lines and the line being recognised', async () => {
  const { readFile } = await import('node:fs/promises');
  const css = await readFile(new URL('../../static/captions/viewer.css', import.meta.url), 'utf8');
  const rule = css.match(/([^{}]*)\{[^}]*overflow-wrap:\s*anywhere/);
  assert.ok(rule, 'an overflow-wrap: anywhere rule');
  assert.deepEqual(rule[1].split(',').map((s) => s.trim().replace(/^\/\*[\s\S]*\*\/\s*/, '')).sort(), ['.interim', '.line']);
});
