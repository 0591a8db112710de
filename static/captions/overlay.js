// The viewer's pure parts (no DOM): the overlay parameters from the query string, and the caption lines kept on
// screen. Shared by viewer.js and the node tests.

/**
 * @typedef {object} OverlayOptions
 * @property {'dark'|'light'|'transparent'} bg  transparent: for an OBS browser source over video
 * @property {'dark'|'light'} theme  the text's colours (light text for dark backgrounds, and the reverse)
 * @property {number} size  font size in CSS px
 * @property {number} lines  finished lines kept on screen (0: the whole transcript, scrolled to the latest)
 * @property {'left'|'center'} align
 */

export const SIZE_MIN = 12;
export const SIZE_MAX = 200;
export const LINES_MAX = 50;

/** @type {OverlayOptions} */
export const DEFAULTS = Object.freeze({ bg: 'dark', theme: 'dark', size: 40, lines: 0, align: 'left' });

/**
 * Overlay options from a query string (?bg=transparent&size=48&lines=2&theme=light&align=center). Unknown or
 * out-of-range values fall back to the defaults (or are clamped), so a typo in an OBS URL still shows captions.
 * @param {string} search
 * @returns {OverlayOptions}
 */
export function parseOverlay(search) {
  const q = new URLSearchParams(search);
  /** @param {string} name @param {number} low @param {number} high @param {number} fallback */
  const int = (name, low, high, fallback) => {
    const raw = q.get(name);
    const n = raw === null || raw.trim() === '' ? NaN : Number(raw);
    return Number.isFinite(n) ? Math.min(high, Math.max(low, Math.round(n))) : fallback;
  };
  const bg = q.get('bg');
  const theme = q.get('theme');
  const align = q.get('align');
  /** @type {OverlayOptions['theme']} */
  const resolvedTheme = theme === 'light' || theme === 'dark' ? theme : (bg === 'light' ? 'light' : DEFAULTS.theme);
  return {
    bg: bg === 'transparent' || bg === 'light' || bg === 'dark' ? bg : (resolvedTheme === 'light' ? 'light' : 'dark'),
    theme: resolvedTheme,
    size: int('size', SIZE_MIN, SIZE_MAX, DEFAULTS.size),
    lines: int('lines', 0, LINES_MAX, DEFAULTS.lines),
    align: align === 'center' ? 'center' : 'left',
  };
}

/**
 * A line on screen: a final, or (with `gap`) the note that finals were missed there.
 * @typedef {object} CaptionLine
 * @property {number} seq  the final's number; for a gap, the last one missed
 * @property {string} text
 * @property {{from: number, to: number}} [gap]  the finals missed
 */

export const MISSED_NOTE = 'Some captions were missed here.';

/**
 * The finals on screen, by the server's number: a final seen twice (it never should be, but a proxy may replay) is
 * shown once, and only the last `keep` stay (0: all, up to a bound so a day-long share cannot grow the page forever).
 * The server numbers finals 1, 2, 3, … with none left out, so a number skipped means finals this viewer never got
 * (the server no longer kept them when it resumed): a line says so, rather than the text running on as if whole.
 */
export class CaptionLines {
  /** @param {number} keep */
  constructor(keep) {
    this.keep = keep > 0 ? keep : 2000;
    /** @type {CaptionLine[]} */
    this.finals = [];
    this.lastSeq = 0;
    this.interim = '';
  }

  /**
   * @param {number} seq @param {string} text
   * @returns {{added: CaptionLine[], dropped: number}} the lines to show (a gap note before the final when numbers
   *   were skipped), and how many old lines fell off the top
   */
  addFinal(seq, text) {
    if (!(seq > this.lastSeq)) return { added: [], dropped: 0 };
    /** @type {CaptionLine[]} */
    const added = [];
    // Before the first final there is no place to have skipped from: a viewer joining late sees what is kept.
    if (this.lastSeq > 0 && seq > this.lastSeq + 1) added.push(missed(this.lastSeq + 1, seq - 1));
    this.lastSeq = seq;
    this.interim = '';
    if (text.trim()) added.push({ seq, text: text.trim() });
    return this.show(added);
  }

  /**
   * The server says finals `from` to `to` are missed (before it sends the ones after them).
   * @param {number} from @param {number} to
   * @returns {{added: CaptionLine[], dropped: number}}
   */
  addGap(from, to) {
    if (!(to > this.lastSeq)) return { added: [], dropped: 0 };
    const line = missed(this.lastSeq > 0 ? this.lastSeq + 1 : from, to);
    this.lastSeq = to;
    return this.show([line]);
  }

  /** @param {CaptionLine[]} added */
  show(added) {
    this.finals.push(...added);
    const dropped = Math.max(0, this.finals.length - this.keep);
    if (dropped) this.finals.splice(0, dropped);
    return { added, dropped };
  }

  /** @param {string} text */
  setInterim(text) {
    this.interim = text.trim();
  }
}

/** @param {number} from @param {number} to @returns {CaptionLine} */
const missed = (from, to) => ({ seq: to, text: MISSED_NOTE, gap: { from, to } });

/**
 * What the notice says when the stream ends or cannot be opened.
 * @param {'revoked'|'expired'|'gone'|'full'|'offline'|'paused'|'waiting'} reason
 */
export function endNotice(reason) {
  switch (reason) {
    case 'paused': return 'Paused: the captions continue when the speaker records again.';
    case 'waiting': return 'Waiting for the speaker…';
    case 'revoked': return 'The person sharing these captions stopped sharing them.';
    case 'expired':
    case 'gone': return 'These captions have ended: the link has expired.';
    case 'full': return 'This link has as many viewers as it allows. Trying again shortly…';
    default: return 'Connection lost. Reconnecting…';
  }
}
