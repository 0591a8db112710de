// Transcript exports: what is written is parsed back and checked against the subtitle rules and the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  MAX_CUE_MS, MAX_LINE_CHARS, estimateTimes, exportAs, formatTimestamp, toCues, toJson, toSrt, toTxt, toVtt,
} from '../../static/export.js';

/** No lone surrogate (half an emoji). Not String.prototype.isWellFormed: that is Node 20+, and Debian 12's and
 * Ubuntu 24.04's own nodejs is 18. @param {string} s */
const wellFormed = (s) => !/\p{Cs}/u.test(s);

const TIME = /^(\d{2,}):(\d{2}):(\d{2})([,.])(\d{3})$/;

/** @param {string} stamp @param {string} sep */
function parseTime(stamp, sep) {
  const m = TIME.exec(stamp);
  assert.ok(m, `bad timestamp ${JSON.stringify(stamp)}`);
  assert.equal(m[4], sep, `separator in ${stamp}`);
  assert.ok(Number(m[2]) < 60 && Number(m[3]) < 60, stamp);
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[5]);
}

/** @param {string} line @param {string} sep */
function parseTiming(line, sep) {
  const parts = line.split(' --> ');
  assert.equal(parts.length, 2, `timing line ${JSON.stringify(line)}`);
  return { startMs: parseTime(parts[0], sep), endMs: parseTime(parts[1], sep) };
}

/** @param {string} text */
function parseSrt(text) {
  if (!text) return [];
  assert.ok(text.endsWith('\n\n'), 'every SRT block ends with a blank line');
  return text.slice(0, -2).split('\n\n').map((block, i) => {
    const lines = block.split('\n');
    assert.equal(lines[0], String(i + 1), 'SRT indices count from 1');
    assert.ok(lines.length >= 3, 'index, timing, at least one text line');
    return { ...parseTiming(lines[1], ','), lines: lines.slice(2) };
  });
}

/** @param {string} text */
function parseVtt(text) {
  assert.ok(text.startsWith('WEBVTT\n\n'), 'WEBVTT header and a blank line');
  const body = text.slice('WEBVTT\n\n'.length);
  if (!body) return [];
  assert.ok(body.endsWith('\n\n'));
  return body.slice(0, -2).split('\n\n').map((block) => {
    // An optional cue identifier first: the export names cues with estimated times "estimated-<n>".
    const all = block.split('\n');
    const estimated = /^estimated-\d+$/.test(all[0]);
    const lines = estimated ? all.slice(1) : all;
    for (const line of lines.slice(1)) {
      assert.ok(!line.includes('-->'), `"-->" inside cue text: ${line}`);
      assert.ok(!/[<>]|&(?!amp;|lt;|gt;)/.test(line), `unescaped markup: ${line}`);
    }
    const unescape = (/** @type {string} */ l) => l.replace(/&lt;/g, '<').replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
    return { ...parseTiming(lines[0], '.'), lines: lines.slice(1).map(unescape), estimated };
  });
}

/** @param {string} text */
const words = (text) => text.split(/\s+/).filter(Boolean);

/**
 * The subtitle rules every export must keep.
 * @param {{startMs: number, endMs: number, lines: string[]}[]} cues
 * @param {{durationMs?: number, texts: string[], maxCueMs?: number}} expect
 */
function checkCues(cues, { durationMs, texts, maxCueMs = MAX_CUE_MS }) {
  let prevEnd = 0;
  for (const cue of cues) {
    assert.ok(cue.startMs >= prevEnd, `cue at ${cue.startMs} overlaps the previous one ending at ${prevEnd}`);
    assert.ok(cue.endMs > cue.startMs, `cue ${cue.startMs}..${cue.endMs} is empty`);
    if (durationMs !== undefined) assert.ok(cue.endMs <= durationMs, `cue ends at ${cue.endMs} > ${durationMs}`);
    assert.ok(cue.lines.length >= 1 && cue.lines.length <= 2, `${cue.lines.length} lines`);
    for (const line of cue.lines) {
      assert.ok(line.length <= MAX_LINE_CHARS, `line of ${line.length} chars: ${line}`);
      assert.equal(line, line.trim());
      assert.ok(line.length > 0);
    }
    if (words(cue.lines.join(' ')).length > 1) {
      assert.ok(cue.endMs - cue.startMs <= maxCueMs + 1, `cue of ${cue.endMs - cue.startMs} ms`);
    }
    prevEnd = cue.endMs;
  }
  // Nothing lost, nothing repeated, order kept.
  assert.deepEqual(words(cues.map((c) => c.lines.join(' ')).join(' ')), words(texts.join(' ')));
}

// A deterministic generator, so a failing case can be replayed.
/** @param {number} seed */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VOCAB = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'speech', 'recognition',
  'works', 'surprisingly', 'well,', 'today.', 'Ljubljana', 'internationalisation', 'OK?', 'and', 'then'];

/** Timed segments with word times, in order, with pauses between them. @param {() => number} rand */
function timedTranscript(rand, n) {
  const segs = [];
  let t = Math.floor(rand() * 2000);
  for (let i = 0; i < n; i++) {
    const count = 1 + Math.floor(rand() * 60);
    const ws = [];
    const start = t;
    for (let k = 0; k < count; k++) {
      const d = 150 + Math.floor(rand() * 500);
      ws.push({ text: VOCAB[Math.floor(rand() * VOCAB.length)], startMs: t, endMs: t + d });
      t += d + (rand() < 0.1 ? Math.floor(rand() * 3000) : Math.floor(rand() * 80));
    }
    segs.push({ text: ws.map((w) => w.text).join(' '), startMs: start, endMs: t, words: ws });
    t += Math.floor(rand() * 4000);
  }
  return { segs, durationMs: t + 500 };
}

test('SRT of timed finals parses back ordered, inside the audio, within line and duration limits', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const { segs, durationMs } = timedTranscript(rng(seed), 12);
    const srt = toSrt(segs, { durationMs });
    const cues = parseSrt(srt);
    assert.ok(cues.length >= segs.length, `seed ${seed}`);
    checkCues(cues, { durationMs, texts: segs.map((s) => s.text) });
    // Cue boundaries come from word times: each cue starts at the start of its first word.
    const starts = new Set(segs.flatMap((s) => s.words.map((w) => w.startMs)));
    for (const cue of cues) {
      assert.ok(starts.has(cue.startMs), `seed ${seed}: cue start ${cue.startMs} is no word start`);
    }
  }
});

test('a long final without words is split proportionally to characters', () => {
  const text = Array.from({ length: 80 }, (_, i) => VOCAB[i % VOCAB.length]).join(' ');
  const seg = { text, startMs: 10_000, endMs: 40_000 };
  const cues = parseSrt(toSrt([seg]));
  assert.ok(cues.length >= Math.ceil(30_000 / MAX_CUE_MS), `${cues.length} cues`);
  checkCues(cues, { texts: [text] });
  assert.equal(cues[0].startMs, 10_000);
  assert.equal(cues[cues.length - 1].endMs, 40_000);
  // Inside one final the cues follow each other without a flicker gap.
  for (let i = 1; i < cues.length; i++) assert.equal(cues[i].startMs, cues[i - 1].endMs);
  // Each cue's start is where its first character falls on a linear map of the text onto 10..40 s.
  let offset = 0;
  for (const cue of cues) {
    const cueText = cue.lines.join(' ');
    const at = text.indexOf(cueText.split(' ')[0], offset);
    const expected = 10_000 + (30_000 * at) / text.length;
    assert.ok(Math.abs(cue.startMs - expected) <= 1, `cue "${cueText}" at ${cue.startMs}, expected ${expected}`);
    offset = at + cueText.length;
  }
});

test('a pause between words becomes a gap between cues', () => {
  const seg = {
    text: 'Hello there, general. Welcome back!',
    startMs: 0,
    endMs: 12_000,
    words: [
      { text: 'Hello', startMs: 0, endMs: 400 },
      { text: 'there', startMs: 450, endMs: 800 },
      { text: ',', startMs: 800, endMs: 800 },
      { text: 'general', startMs: 850, endMs: 1500 },
      { text: '.', startMs: 1500, endMs: 1500 },
      { text: 'Welcome', startMs: 10_000, endMs: 10_600 },
      { text: 'back', startMs: 10_650, endMs: 11_000 },
      { text: '!', startMs: 11_000, endMs: 11_000 },
    ],
  };
  const cues = parseSrt(toSrt([seg]));
  checkCues(cues, { texts: [seg.text] });
  assert.deepEqual(cues.map((c) => c.lines.join(' ')), ['Hello there, general.', 'Welcome back!']);
  assert.equal(cues[0].startMs, 0);
  assert.equal(cues[0].endMs, 1500);
  assert.equal(cues[1].startMs, 10_000);
  assert.equal(cues[1].endMs, 12_000);
});

test('two lines are balanced and never longer than 42 characters', () => {
  const text = 'one two three four five six seven eight nine ten eleven twelve thirteen';
  const [cue] = toCues([{ text, startMs: 0, endMs: 4000 }]);
  assert.equal(cue.lines.length, 2);
  assert.ok(Math.abs(cue.lines[0].length - cue.lines[1].length) <= 6, JSON.stringify(cue.lines));
  const long = `see ${'x'.repeat(100)} here`;
  const cues = toCues([{ text: long, startMs: 0, endMs: 3000 }]);
  for (const c of cues) for (const line of c.lines) assert.ok(line.length <= MAX_LINE_CHARS);
  assert.equal(cues.map((c) => c.lines.join('')).join('').replace(/ /g, ''), long.replace(/ /g, ''));
});

test('a word longer than a line is cut between characters, never inside an emoji (a surrogate pair)', () => {
  for (const text of [`a${'😀'.repeat(21)}`, '😀'.repeat(30), `x${'𠀀'.repeat(40)} end`]) {
    for (const [format, parse] of /** @type {const} */ ([['srt', parseSrt], ['vtt', parseVtt]])) {
      const out = exportAs(format, [{ text, startMs: 0, endMs: 3000 }]).text;
      assert.ok(wellFormed(out), `${format}: ${JSON.stringify(out)}`);
      const cues = parse(out);
      for (const line of cues.flatMap((c) => c.lines)) {
        assert.ok(wellFormed(line) && line.length <= MAX_LINE_CHARS, `${format}: ${JSON.stringify(line)}`);
      }
      assert.equal(cues.map((c) => c.lines.join('')).join('').replace(/ /g, ''), text.replace(/ /g, ''), format);
    }
  }
});

test('Wiro finals without times are spread over the recording in order', () => {
  const texts = ['Dober dan.', 'Kako ste danes?', 'Hvala, dobro. In vi? To je malo daljši stavek za preizkus.'];
  const segs = texts.map((text) => ({ text, startMs: null, endMs: null }));
  const durationMs = 20_000;
  const timed = estimateTimes(segs, { durationMs });
  assert.ok(timed.every((s) => s.estimated));
  let prev = 0;
  for (const s of timed) {
    assert.ok(s.startMs >= prev && s.endMs > s.startMs && s.endMs <= durationMs, JSON.stringify(s));
    prev = s.endMs;
  }
  // Longer text, longer estimate.
  assert.ok(timed[2].endMs - timed[2].startMs > timed[0].endMs - timed[0].startMs);
  checkCues(parseSrt(toSrt(segs, { durationMs })), { durationMs, texts });
  checkCues(parseVtt(toVtt(segs, { durationMs })), { durationMs, texts });
  // Unbounded (no duration known): laid end to end from 0.
  const open = estimateTimes(segs);
  assert.equal(open[0].startMs, 0);
  assert.equal(open[1].startMs, open[0].endMs);
  // A recording too short for the text: squeezed in, still valid cues.
  checkCues(parseSrt(toSrt(segs, { durationMs: 1500 })), { durationMs: 1500, texts, maxCueMs: Infinity });
});

test('an untimed final between timed ones is placed in the gap between them', () => {
  const segs = [
    { text: 'first part', startMs: 1000, endMs: 2000 },
    { text: 'no times here', startMs: null, endMs: null },
    { text: 'only a start', startMs: 9000, endMs: null },
    { text: 'last part', startMs: 9500, endMs: 11_000 },
  ];
  const timed = estimateTimes(segs, { durationMs: 12_000 });
  assert.deepEqual(timed.map((s) => s.estimated), [false, true, true, false]);
  assert.ok(timed[1].startMs >= 2000 && timed[1].endMs <= 9000);
  assert.equal(timed[2].startMs, 9000);
  assert.ok(timed[2].endMs > 9000 && timed[2].endMs <= 9500);
  checkCues(parseSrt(toSrt(segs, { durationMs: 12_000 })), { durationMs: 12_000, texts: segs.map((s) => s.text) });
});

test('overlapping or unordered provider times still give ordered, disjoint cues', () => {
  const segs = [
    { text: 'alpha beta', startMs: 5000, endMs: 6000 },
    { text: 'gamma delta', startMs: 5500, endMs: 5500 },
    { text: 'epsilon', startMs: 5200, endMs: 5800 },
    { text: 'zeta', startMs: 7000, endMs: 6000 },
    { text: '   ', startMs: 100, endMs: 200 },
  ];
  const cues = parseSrt(toSrt(segs, { durationMs: 8000 }));
  // Sorted by start: alpha (5000), epsilon (5200), gamma (5500), zeta (7000).
  checkCues(cues, { durationMs: 8000, texts: ['alpha beta', 'epsilon', 'gamma delta', 'zeta'] });
  // A recording that ends before the last cue: cues are pulled back inside it.
  const short = parseSrt(toSrt(segs, { durationMs: 6500 }));
  checkCues(short, { durationMs: 6500, texts: ['alpha beta', 'epsilon', 'gamma delta', 'zeta'] });
});

test('a final heard inside the previous one is shown after it for as long as it was spoken, never for 1 ms', () => {
  const long = { text: 'a long sentence spoken here', startMs: 0, endMs: 5000 };
  const yes = { text: 'yes', startMs: 1000, endMs: 2000 };
  const shown = (/** @type {any[]} */ segs, /** @type {number} */ durationMs) => parseSrt(toSrt(segs, { durationMs }))
    .map((c) => [c.startMs, c.endMs, c.lines.join(' ')]);
  assert.deepEqual(shown([long, yes], 8000), [[0, 5000, long.text], [5000, 6000, 'yes']]);
  // At the end of the recording the cue before makes room, rather than the pushed one shrinking to nothing.
  assert.deepEqual(shown([long, yes], 5000), [[0, 4000, long.text], [4000, 5000, 'yes']]);
  // No span of its own (start and end the same): its natural length instead (600 ms at least).
  assert.deepEqual(shown([long, { text: 'yes', startMs: 3000, endMs: 3000 }], 8000), [[0, 5000, long.text], [5000, 5600, 'yes']]);
  assert.deepEqual(shown([{ text: 'yes', startMs: 3000, endMs: 3000 }], 8000), [[3000, 3600, 'yes']]);
  // Words whose start is the recording's end (cut off right after their first interim) end with it.
  const cutOff = { text: 'And then we went home.', startMs: 10_000, endMs: null };
  assert.deepEqual(shown([long, cutOff], 10_000), [[0, 5000, long.text], [8460, 10_000, cutOff.text]]);
  const overlapping = [
    { text: 'alpha beta', startMs: 5000, endMs: 6000 },
    { text: 'gamma delta', startMs: 5500, endMs: 5500 },
    { text: 'epsilon', startMs: 5200, endMs: 5800 },
    { text: 'zeta', startMs: 7000, endMs: 6000 },
  ];
  for (const durationMs of [8000, 6500]) {
    const cues = parseSrt(toSrt(overlapping, { durationMs }));
    checkCues(cues, { durationMs, texts: ['alpha beta', 'epsilon', 'gamma delta', 'zeta'] });
    for (const c of cues) assert.ok(c.endMs - c.startMs >= 600, `${durationMs}: ${c.lines} for ${c.endMs - c.startMs} ms`);
  }
});

test('finals that overlap the one before a little start when it ends and keep their own end: no drift', () => {
  // Eight finals of 3 s, each beginning 500 ms before the last one ends (a review: shown for their whole length
  // after the one before, the eighth came 3.5 s late, and later ones later still).
  const segs = Array.from({ length: 8 }, (_, i) => ({ text: `sentence ${i}`, startMs: i * 2500, endMs: i * 2500 + 3000 }));
  const cues = parseSrt(toSrt(segs, { durationMs: 30_000 }));
  assert.deepEqual(cues.map((c) => [c.startMs, c.endMs]), [
    [0, 3000], ...Array.from({ length: 7 }, (_, i) => [(i + 1) * 2500 + 500, (i + 1) * 2500 + 3000]),
  ]);
  // One that overlaps all but 100 ms of itself is shown for 600 ms (MIN_ESTIMATE_MS), its own length if shorter.
  const nearly = parseSrt(toSrt([segs[0], { text: 'yes', startMs: 1100, endMs: 3100 }], { durationMs: 30_000 }));
  assert.deepEqual(nearly.map((c) => [c.startMs, c.endMs]), [[0, 3000], [3000, 3600]]);
});

test('WebVTT: header, dot timestamps, markup escaped so "-->" never appears in a cue', () => {
  const segs = [
    { text: 'a --> b & <c> ok', startMs: 0, endMs: 2000 },
    { text: 'plain words', startMs: 3_600_000, endMs: 3_601_500 },
  ];
  const vtt = toVtt(segs);
  const cues = parseVtt(vtt);
  checkCues(cues, { texts: segs.map((s) => s.text) });
  assert.equal(cues[1].startMs, 3_600_000);
  assert.ok(vtt.includes('01:00:00.000 --> 01:00:01.500'));
  assert.equal(toVtt([]), 'WEBVTT\n\n');
  assert.equal(toSrt([]), '');
});

test('timestamps are zero-padded HH:MM:SS with milliseconds', () => {
  for (const ms of [0, 1, 999, 1000, 59_999, 60_000, 3_599_999, 3_723_004, 360_000_000]) {
    assert.equal(parseTime(formatTimestamp(ms, ','), ','), ms);
    assert.equal(parseTime(formatTimestamp(ms, '.'), '.'), ms);
  }
  assert.equal(formatTimestamp(3_723_004, ','), '01:02:03,004');
});

test('plain text: one paragraph per final, optional [mm:ss] prefix', () => {
  const segs = [
    { text: '  Hello\n world ', startMs: 65_400, endMs: 67_000 },
    { text: '', startMs: null, endMs: null },
    { text: 'Later.', startMs: 3_725_000, endMs: 3_726_000 },
  ];
  assert.equal(toTxt(segs), 'Hello world\n\nLater.\n');
  assert.equal(toTxt(segs, { timestamps: true }), '[01:05] Hello world\n\n[1:02:05] Later.\n');
  assert.equal(toTxt([]), '');
});

test('JSON round-trips the finals exactly, missing times stay null', () => {
  const segs = [
    { text: 'Timed  text', startMs: 120, endMs: 900, words: [{ text: 'Timed', startMs: 120, endMs: 500 }] },
    { text: 'Wiro text', startMs: null, endMs: null },
  ];
  const meta = { provider: 'wiro', durationMs: 5000, title: 'Meeting' };
  const text = toJson(segs, meta);
  assert.ok(text.includes('\n  "meta"'), 'pretty-printed');
  assert.deepEqual(JSON.parse(text), {
    meta,
    segments: [
      {
        text: 'Timed  text', startMs: 120, endMs: 900, words: [{ text: 'Timed', startMs: 120, endMs: 500 }],
        estimated: false,
      },
      { text: 'Wiro text', startMs: null, endMs: null, words: [], estimated: false },
    ],
  });
});

test('exportAs names the file and picks the MIME type per format', () => {
  const segs = [{ text: 'hello', startMs: 0, endMs: 1000 }];
  const meta = { title: 'Sestanek 3/5: načrt', durationMs: 2000 };
  const expected = {
    txt: ['text/plain', toTxt(segs)],
    srt: ['application/x-subrip', toSrt(segs, { durationMs: 2000 })],
    vtt: ['text/vtt', toVtt(segs, { durationMs: 2000 })],
    json: ['application/json', toJson(segs, meta)],
  };
  for (const [format, [mime, text]] of Object.entries(expected)) {
    const out = exportAs(/** @type {any} */ (format), segs, meta);
    assert.equal(out.filename, `Sestanek-3-5-načrt.${format}`);
    assert.ok(out.mime.startsWith(mime), out.mime);
    assert.equal(out.text, text);
  }
  assert.equal(exportAs('txt', segs).filename, 'transcript.txt');
  assert.equal(exportAs('txt', segs, {}, { timestamps: true }).text, '[00:00] hello\n');
  assert.throws(() => exportAs(/** @type {any} */ ('docx'), segs), RangeError);
});

test("times the client estimated (Wiro's arrival times) are exported as estimates, not as exact", () => {
  const segs = [
    { text: 'exact', startMs: 0, endMs: 900, words: [] },
    { text: 'guessed', startMs: 1000, endMs: 2400, words: [], estimated: true },
  ];
  const json = JSON.parse(toJson(segs, {}));
  assert.deepEqual(json.segments.map((s) => s.estimated), [false, true]);
  assert.deepEqual(estimateTimes(segs).map((s) => s.estimated), [false, true]);
  assert.equal(toTxt(segs, { timestamps: true }), '[00:00] exact\n\n≈[00:01] guessed\n');
  assert.deepEqual(parseVtt(toVtt(segs)).map((c) => [c.lines.join(' '), c.estimated]), [['exact', false], ['guessed', true]]);
  assert.match(toVtt(segs), /\n\nestimated-2\n00:00:01\.000 --> /);
});

test('a long title is cut to 100 characters without splitting one, and no separator is left before the extension', () => {
  const segs = [{ text: 'hello', startMs: 0, endMs: 1000 }];
  const cases = [
    ['a'.repeat(99) + '𠀀𠀀', 'a'.repeat(99) + '𠀀'],
    ['a'.repeat(99) + '.b', 'a'.repeat(99)],
    ['a'.repeat(99) + ' and more', 'a'.repeat(99)],
    ['--' + 'b'.repeat(120), 'b'.repeat(100)],
  ];
  for (const [title, stem] of cases) {
    for (const format of /** @type {const} */ (['txt', 'json'])) {
      const { filename } = exportAs(format, segs, { title });
      assert.ok(wellFormed(filename), JSON.stringify(filename));
      assert.doesNotMatch(filename, /[-.]\.[a-z]+$/, filename);
      assert.equal(filename, `${stem}.${format}`);
    }
  }
});

test('word times are found at their place in the text whatever its letters lowercase to (İ is two units lowercased)', () => {
  const texts = ['is', 'a', 'city', 'on', 'two', 'continents', 'and', 'its', 'old', 'town', 'sits', 'on', 'a', 'hill',
    'over', 'the', 'water', 'where', 'ships', 'pass', 'all', 'day'];
  /** @param {string} first */
  const final = (first) => {
    const words = [first, ...texts].map((text, i) => ({ text, startMs: i * 700 + (i % 3) * 200, endMs: i * 700 + (i % 3) * 200 + 400 }));
    return [{ text: words.map((w) => w.text).join(' '), startMs: 0, endMs: 16_500, words }];
  };
  /** @param {string} first */
  const times = (first) => toCues(final(first)).map((c) => [c.startMs, c.endMs]);
  assert.ok(times('Istanbul').length > 2, 'the final is cut into several cues');
  assert.deepEqual(times('İstanbul'), times('Istanbul'));
  assert.deepEqual(times('İSTANBUL'), times('Istanbul'), 'any case');
});
