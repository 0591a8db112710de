// Transcript downloads: plain text, SubRip, WebVTT and JSON from the finals of one recording.
//
// Pure ES module (no DOM, no imports): the page turns the returned text into a Blob, Node tests call it directly.
// Every time here is in milliseconds on the recording's audio clock (0 = first sample captured), the clock the
// finals carry once a reconnect's offsets have been applied (replay.js OffsetClock).

/** @typedef {{text: string, startMs: number, endMs: number}} Word */

/**
 * One final. Wiro finals carry no provider times: null, or the client's estimate from when the words arrived
 * (`estimated`); see estimateTimes() for how missing ones are placed.
 * @typedef {{text: string, startMs: number|null, endMs: number|null, words?: Word[], estimated?: boolean, rough?: boolean}} Segment
 */

/**
 * A segment with times filled in. `estimated` is true when either time was not given by the provider (missing, or
 * the client's own estimate).
 * @typedef {{text: string, startMs: number, endMs: number, words: Word[], estimated: boolean}} TimedSegment
 */

/**
 * @typedef {object} ExportMeta  free-form; these keys are read, every key is written to the JSON export
 * @property {number} [durationMs]  length of the recording: no time is placed after it
 * @property {string} [title]       file name stem (sanitised); default "transcript"
 */

/**
 * @typedef {object} CueOptions
 * @property {number} [durationMs]    length of the recording: cues are clamped into [0, durationMs]
 * @property {number} [maxCueMs]      longest cue a segment is cut into (default 7000)
 * @property {number} [maxLineChars]  characters per subtitle line (default 42, the common broadcast limit)
 * @property {number} [maxLines]      lines per cue (default 2)
 */

/** @typedef {{startMs: number, endMs: number, lines: string[], estimated: boolean}} Cue  estimated: its times are not the provider's */

export const MAX_CUE_MS = 7000;
export const MAX_LINE_CHARS = 42;
export const MAX_LINES = 2;
// Speaking-rate guess for segments without times: about 14 characters (2.5 words) per second of speech.
export const ESTIMATE_MS_PER_CHAR = 70;
const MIN_ESTIMATE_MS = 600;
// An untimed run squeezed between known neighbours is stretched to at most this factor of its natural length;
// the rest of the gap is treated as silence between the segments.
const MAX_STRETCH = 1.5;
// Gaps shorter than this between cues of one final are closed (the earlier cue ends when the next starts).
const CLOSE_GAP_MS = 500;

/** @param {unknown} v @returns {v is number} */
const isTime = (v) => typeof v === 'number' && Number.isFinite(v);

/** @param {string} text */
const normalise = (text) => String(text ?? '').replace(/\s+/g, ' ').trim();

/** @param {number} unit  a UTF-16 code unit */
const isHighSurrogate = (unit) => unit >= 0xd800 && unit <= 0xdbff;

/**
 * Lower case that keeps every offset: one character at a time, and a character whose lower case is longer (İ gives
 * i + U+0307) left as it is. text.toLowerCase() would shift every offset after such a character.
 * @param {string} text
 */
const foldCase = (text) => text.replace(/[^]/gu, (ch) => {
  const lower = ch.toLowerCase();
  return lower.length === ch.length ? lower : ch;
});

/** @param {string} text */
const naturalMs = (text) => (text ? Math.max(MIN_ESTIMATE_MS, text.length * ESTIMATE_MS_PER_CHAR) : 0);

/**
 * @param {Word[]|undefined} words
 * @returns {Word[]}
 */
function timedWords(words) {
  if (!Array.isArray(words)) return [];
  return words.filter((w) => w && typeof w.text === 'string' && isTime(w.startMs) && isTime(w.endMs)
    && w.endMs >= w.startMs);
}

/**
 * Fill in missing segment times, so every segment can be placed on the audio clock.
 *
 * Estimation rules (times the provider gave are kept, only clamped into [0, durationMs]):
 * - a segment with timed words but no start/end takes them from its first and last word;
 * - a segment with only a start lasts its natural length (70 ms per character, at least 600 ms; 0 without
 *   text), cut short by the next known time; one with only an end starts its natural length earlier, not
 *   before the previous end;
 * - a run of segments with no times at all (Wiro) fills the gap between the previous segment's end (or 0) and
 *   the next known start (or durationMs): each segment gets its natural length, scaled to fit, stretched at most
 *   1.5 times, and the slack is spread as equal pauses around them. With no upper bound the run is laid end to
 *   end at natural lengths.
 * Estimated times are guesses good enough to navigate a recording, not word-accurate subtitles.
 * @param {Segment[]} segments  in spoken order (the order the finals arrived)
 * @param {{durationMs?: number}} [options]
 * @returns {TimedSegment[]}  same order and length as `segments`
 */
export function estimateTimes(segments, options = {}) {
  const limit = isTime(options.durationMs) && options.durationMs > 0 ? options.durationMs : Infinity;
  /** @param {number} t */
  const clamp = (t) => Math.min(Math.max(t, 0), limit);
  const n = segments.length;
  /** @type {(number|null)[]} */
  const starts = new Array(n).fill(null);
  /** @type {(number|null)[]} */
  const ends = new Array(n).fill(null);
  /** @type {Word[][]} */
  const wordLists = [];
  /** @type {string[]} */
  const texts = [];
  for (let i = 0; i < n; i++) {
    const seg = segments[i];
    const words = timedWords(seg.words);
    wordLists.push(words);
    texts.push(normalise(seg.text));
    let s = isTime(seg.startMs) ? seg.startMs : words.length ? words[0].startMs : null;
    let e = isTime(seg.endMs) ? seg.endMs : words.length ? words[words.length - 1].endMs : null;
    if (s !== null) s = clamp(s);
    if (e !== null) e = clamp(e);
    if (s !== null && e !== null && e < s) e = null;
    starts[i] = s;
    ends[i] = e;
  }
  /** @param {number} i  earliest known time of segment i or later, else the recording's end */
  const nextKnown = (i) => {
    for (let j = i; j < n; j++) {
      const t = starts[j] ?? ends[j];
      if (t !== null) return t;
    }
    return limit;
  };
  const estimated = starts.map((s, i) => s === null || ends[i] === null || segments[i].estimated === true);
  let prevEnd = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i];
    const e = ends[i];
    if (s !== null && e === null) {
      const bound = Math.max(nextKnown(i + 1), s);
      ends[i] = Math.min(s + naturalMs(texts[i]), bound);
    } else if (s === null && e !== null) {
      starts[i] = Math.max(Math.min(e - naturalMs(texts[i]), e), Math.min(prevEnd, e), 0);
    } else if (s === null && e === null) {
      let j = i;
      while (j < n && starts[j] === null && ends[j] === null) j++;
      placeRun(i, j, prevEnd, Math.max(nextKnown(j), prevEnd));
      i = j - 1;
    }
    prevEnd = Math.max(prevEnd, /** @type {number} */ (ends[i]));
  }

  /**
   * @param {number} from first index of the untimed run
   * @param {number} to   one past its last index
   * @param {number} lo   earliest start
   * @param {number} hi   latest end (Infinity: unbounded)
   */
  function placeRun(from, to, lo, hi) {
    const natural = texts.slice(from, to).map(naturalMs);
    const total = natural.reduce((a, b) => a + b, 0);
    const room = hi - lo;
    const scale = Number.isFinite(room) && total > 0 ? Math.min(room / total, MAX_STRETCH) : 1;
    const pause = Number.isFinite(room) ? (room - total * scale) / (to - from + 1) : 0;
    let t = lo;
    for (let k = from; k < to; k++) {
      t += pause;
      starts[k] = t;
      t += natural[k - from] * scale;
      ends[k] = t;
    }
  }

  return segments.map((_, i) => ({
    text: texts[i],
    startMs: /** @type {number} */ (starts[i]),
    endMs: /** @type {number} */ (ends[i]),
    words: wordLists[i],
    estimated: estimated[i],
  }));
}

/**
 * Piecewise-linear map from a character offset in `text` to audio time: word times where the words can be found
 * in the text, proportional to characters in between (and everywhere when there are no words).
 * @param {string} text
 * @param {TimedSegment} seg
 * @returns {(chars: number, late: boolean) => number}  `late` picks the latest time when knots share an offset
 */
function charClock(text, seg) {
  const { startMs, endMs } = seg;
  /** @type {{c: number, t: number}[]} */
  const knots = [{ c: 0, t: startMs }];
  /** @param {number} c @param {number} t */
  const add = (c, t) => {
    const last = knots[knots.length - 1];
    if (c < last.c) return;
    knots.push({ c, t: Math.min(Math.max(t, last.t), endMs) });
  };
  const lower = foldCase(text);
  let cursor = 0;
  for (const word of seg.words) {
    const needle = foldCase(normalise(word.text));
    if (!needle) continue;
    const at = lower.indexOf(needle, cursor);
    if (at < 0) continue;
    add(at, word.startMs);
    add(at + needle.length, word.endMs);
    cursor = at + needle.length;
  }
  add(text.length, endMs);
  return (chars, late) => {
    let result = late ? startMs : endMs;
    for (let k = 0; k < knots.length; k++) {
      const a = knots[k];
      if (a.c === chars) {
        result = late ? Math.max(result, a.t) : Math.min(result, a.t);
      } else if (k + 1 < knots.length && a.c < chars && chars < knots[k + 1].c) {
        const b = knots[k + 1];
        return a.t + ((b.t - a.t) * (chars - a.c)) / (b.c - a.c);
      }
    }
    return result;
  };
}

/**
 * Words of `text` with their offsets; a word longer than a line is cut into line-sized pieces.
 * @param {string} text  normalised
 * @param {number} maxLineChars
 * @returns {{text: string, start: number, end: number}[]}
 */
function tokens(text, maxLineChars) {
  const out = [];
  for (const m of text.matchAll(/\S+/g)) {
    const start = /** @type {number} */ (m.index);
    const word = m[0];
    for (let k = 0; k < word.length;) {
      let end = Math.min(k + maxLineChars, word.length);
      // Cut between characters: a piece ending on the first half of a surrogate pair (an emoji, a rare CJK
      // character) leaves both halves unreadable, so it ends one unit sooner.
      if (end < word.length && end - k > 1 && isHighSurrogate(word.charCodeAt(end - 1))) end -= 1;
      out.push({ text: word.slice(k, end), start: start + k, end: start + end });
      k = end;
    }
  }
  return out;
}

/**
 * Greedy wrap of words into lines of at most `width` characters.
 * @param {string[]} words
 * @param {number} width
 */
function wrap(words, width) {
  /** @type {string[]} */
  const lines = [];
  for (const w of words) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + w.length <= width) lines[last] += ` ${w}`;
    else lines.push(w);
  }
  return lines;
}

/**
 * Two lines as even as possible (easier to read than a full first line and a stub).
 * @param {string[]} words
 * @param {number} width
 * @param {number} maxLines
 */
function layout(words, width, maxLines) {
  const greedy = wrap(words, width);
  if (greedy.length !== 2 || maxLines !== 2) return greedy;
  let best = greedy;
  let bestWidth = Math.max(greedy[0].length, greedy[1].length);
  for (let k = 1; k < words.length; k++) {
    const a = words.slice(0, k).join(' ');
    const b = words.slice(k).join(' ');
    const w = Math.max(a.length, b.length);
    if (w < bestWidth) {
      best = [a, b];
      bestWidth = w;
    }
  }
  return best;
}

/**
 * Subtitle cues for a transcript: ordered, non-overlapping, each ending after it starts, at most `maxLines`
 * lines of `maxLineChars`, and cut at word boundaries so no cue lasts longer than `maxCueMs` (a single word that
 * itself lasts longer stays one cue). A cue moved past an overlapping one keeps its length, and one with no length
 * gets its natural length, as far as the recording has room. Times are whole milliseconds.
 * @param {Segment[]} segments
 * @param {CueOptions} [options]
 * @returns {Cue[]}
 */
export function toCues(segments, options = {}) {
  const maxCueMs = options.maxCueMs ?? MAX_CUE_MS;
  const width = options.maxLineChars ?? MAX_LINE_CHARS;
  const maxLines = options.maxLines ?? MAX_LINES;
  const limit = isTime(options.durationMs) && options.durationMs > 0 ? options.durationMs : Infinity;
  const timed = estimateTimes(segments, options)
    .filter((s) => s.text)
    .map((s, i) => ({ s, i }))
    .sort((a, b) => a.s.startMs - b.s.startMs || a.i - b.i)
    .map(({ s }) => s);
  /** @type {Cue[]} */
  const cues = [];
  for (const seg of timed) {
    const clock = charClock(seg.text, seg);
    const toks = tokens(seg.text, width);
    let first = 0;
    while (first < toks.length) {
      const cueStart = clock(toks[first].start, false);
      let last = first;
      while (last + 1 < toks.length) {
        const words = toks.slice(first, last + 2).map((t) => t.text);
        if (wrap(words, width).length > maxLines) break;
        if (clock(toks[last + 1].end, true) - cueStart > maxCueMs) break;
        last++;
      }
      const words = toks.slice(first, last + 1).map((t) => t.text);
      const prev = cues[cues.length - 1];
      // A short gap inside one final is the space between two words, not a pause: close it, so the text does not
      // flicker off and on between cues.
      if (first > 0 && cueStart - prev.endMs < CLOSE_GAP_MS && cueStart - prev.startMs <= maxCueMs) {
        prev.endMs = Math.round(cueStart);
      }
      cues.push({
        startMs: Math.round(cueStart),
        endMs: Math.round(clock(toks[last].end, true)),
        lines: layout(words, width, maxLines),
        estimated: seg.estimated,
      });
      first = last + 1;
    }
  }
  // Providers' segments may touch or overlap (a final heard inside the previous one), and a cue may have no length
  // (a provider's empty span, rounding, a start at the recording's end): a cue that starts before the previous one
  // ends starts when it ends and keeps its own end where that leaves it MIN_ESTIMATE_MS or more (so overlaps do not
  // push every later cue on: a review measured 3.5 s of drift over eight finals each overlapping the last by 500 ms),
  // else is shown that long at most; one heard wholly inside the previous one is shown after it for its own length,
  // and one without a length for its natural length. Then the tail is pulled back inside the recording, the cues before it making room as
  // far as they can.
  /** @param {Cue} cue  how long it is shown: its own length, or its natural length when it has none */
  const keptMs = (cue) => (cue.endMs - cue.startMs >= 1 ? cue.endMs - cue.startMs
    : Math.max(1, Math.min(naturalMs(cue.lines.join(' ')), maxCueMs)));
  let prevEnd = 0;
  for (const cue of cues) {
    const length = keptMs(cue);
    // Shown for all of its length: one heard wholly inside the previous one, or one with no span of its own.
    const whole = cue.endMs <= prevEnd || cue.endMs - cue.startMs < 1;
    cue.startMs = Math.max(cue.startMs, prevEnd, 0);
    cue.endMs = Math.max(cue.endMs, cue.startMs + (whole ? length : Math.min(length, MIN_ESTIMATE_MS)));
    prevEnd = cue.endMs;
  }
  let bound = limit;
  for (let k = cues.length - 1; k >= 0 && Number.isFinite(bound); k--) {
    const cue = cues[k];
    if (cue.endMs <= bound) break;
    const length = keptMs(cue);
    cue.endMs = bound;
    // At least 1 ms left for each cue before it.
    cue.startMs = Math.min(cue.startMs, Math.max(bound - length, Math.min(k, bound - 1)));
    bound = cue.startMs;
  }
  return cues;
}

/**
 * @param {number} ms
 * @param {string} sep  ',' for SubRip, '.' for WebVTT
 */
export function formatTimestamp(ms, sep) {
  const total = Math.max(0, Math.round(ms));
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor(total / 60_000) % 60;
  const s = Math.floor(total / 1000) % 60;
  const pad = (/** @type {number} */ v, /** @type {number} */ w) => String(v).padStart(w, '0');
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${sep}${pad(total % 1000, 3)}`;
}

/** @param {number} ms  "[mm:ss]", or "[h:mm:ss]" from one hour on */
function shortStamp(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const mm = String(Math.floor(total / 60) % 60).padStart(2, '0');
  const ss = String(total % 60).padStart(2, '0');
  return h ? `[${h}:${mm}:${ss}]` : `[${mm}:${ss}]`;
}

/**
 * Plain text: one paragraph per final, blank line between paragraphs.
 * @param {Segment[]} segments
 * @param {{timestamps?: boolean, durationMs?: number}} [options]  timestamps: prefix each paragraph with its
 *   start as [mm:ss] (estimated for finals without times, see estimateTimes)
 * @returns {string}
 */
export function toTxt(segments, options = {}) {
  const paragraphs = estimateTimes(segments, options)
    .filter((s) => s.text)
    .map((s) => (options.timestamps ? `${s.estimated ? '≈' : ''}${shortStamp(s.startMs)} ${s.text}` : s.text));
  return paragraphs.length ? `${paragraphs.join('\n\n')}\n` : '';
}

/**
 * SubRip: "index, HH:MM:SS,mmm --> HH:MM:SS,mmm, text, blank line" per cue. Nothing is escaped: SubRip has no
 * escapes, and cue text never holds a line break of its own (whitespace is collapsed).
 * @param {Segment[]} segments
 * @param {CueOptions} [options]
 * @returns {string}
 */
export function toSrt(segments, options = {}) {
  return toCues(segments, options)
    .map((c, i) => `${i + 1}\n${formatTimestamp(c.startMs, ',')} --> ${formatTimestamp(c.endMs, ',')}\n`
      + `${c.lines.join('\n')}\n\n`)
    .join('');
}

/**
 * WebVTT cue text is markup: & and < must be escaped, and escaping > too means "-->" cannot appear in a cue.
 * @param {string} line
 */
const vttEscape = (line) => line.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * WebVTT: "WEBVTT" header, then "HH:MM:SS.mmm --> HH:MM:SS.mmm" and text per cue. A cue whose times are not the
 * provider's carries the identifier "estimated-<n>" (players ignore identifiers; a reader or a script sees them),
 * so the timing provenance survives the export. SubRip has no place for it: its cue line must be the number.
 * @param {Segment[]} segments
 * @param {CueOptions} [options]
 * @returns {string}
 */
export function toVtt(segments, options = {}) {
  const cues = toCues(segments, options)
    .map((c, i) => `${c.estimated ? `estimated-${i + 1}\n` : ''}`
      + `${formatTimestamp(c.startMs, '.')} --> ${formatTimestamp(c.endMs, '.')}\n`
      + `${c.lines.map(vttEscape).join('\n')}\n\n`);
  return `WEBVTT\n\n${cues.join('')}`;
}

/**
 * Pretty JSON `{meta, segments: [{text, startMs, endMs, words, estimated, rough?}]}`: the finals as received, text
 * untouched and missing times left null (estimates belong to the subtitle formats, not to the data); `estimated` marks
 * times the client guessed (Wiro's, from when the words arrived), so nobody takes them for the provider's; `rough:
 * true` marks a final the engine gave without its better pass (only on those: older readers see the same fields).
 * @param {Segment[]} segments
 * @param {object} [meta]
 * @returns {string}
 */
export function toJson(segments, meta = {}) {
  const out = segments.map((s) => ({
    text: s.text,
    startMs: isTime(s.startMs) ? s.startMs : null,
    endMs: isTime(s.endMs) ? s.endMs : null,
    words: Array.isArray(s.words)
      ? s.words.map((w) => ({ text: w.text, startMs: w.startMs, endMs: w.endMs }))
      : [],
    estimated: s.estimated === true,
    ...(s.rough === true ? { rough: true } : {}),
  }));
  return `${JSON.stringify({ meta, segments: out }, null, 2)}\n`;
}

export const FORMATS = Object.freeze({
  txt: { ext: 'txt', mime: 'text/plain;charset=utf-8' },
  srt: { ext: 'srt', mime: 'application/x-subrip;charset=utf-8' },
  vtt: { ext: 'vtt', mime: 'text/vtt;charset=utf-8' },
  json: { ext: 'json', mime: 'application/json;charset=utf-8' },
});

/** @typedef {keyof typeof FORMATS} ExportFormat */

/** @param {unknown} title */
function fileStem(title) {
  const stem = typeof title === 'string' ? title.normalize('NFKC').replace(/[^\p{L}\p{N}._-]+/gu, '-') : '';
  // Cut by code points, so no surrogate pair is split, and trimmed after the cut, which can leave a separator last.
  const cut = Array.from(stem.replace(/^[-.]+/, '')).slice(0, 100).join('');
  return cut.replace(/[-.]+$/, '') || 'transcript';
}

/**
 * One download. Cue and timestamp options come from meta (durationMs) and `options`.
 * @param {ExportFormat} format  'txt' | 'srt' | 'vtt' | 'json'
 * @param {Segment[]} segments
 * @param {ExportMeta & Record<string, unknown>} [meta]
 * @param {CueOptions & {timestamps?: boolean}} [options]
 * @returns {{filename: string, mime: string, text: string}}
 */
export function exportAs(format, segments, meta = {}, options = {}) {
  if (!Object.hasOwn(FORMATS, format)) throw new RangeError(`Unknown export format: ${String(format)}`);
  const { ext, mime } = FORMATS[format];
  const opts = { durationMs: meta.durationMs, ...options };
  const writers = {
    txt: () => toTxt(segments, opts),
    srt: () => toSrt(segments, opts),
    vtt: () => toVtt(segments, opts),
    json: () => toJson(segments, meta),
  };
  return { filename: `${fileStem(meta.title)}.${ext}`, mime, text: writers[format]() };
}
