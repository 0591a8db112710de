// The session's replay accounting: what audio is held for a replay, what is lost and when that is said, where a
// new provider session's times sit on the recording's clock, and the words a replay may repeat. Pure (no DOM, no
// timers, no sockets): each method returns the `dropped` events to emit instead of emitting them, so the session
// executes them and the rules are tested on their own.
import { OffsetClock, ReplayBuffer } from './replay.js';

/** @typedef {{type: 'dropped', droppedMs: number}} DroppedEvent */
/** @typedef {import('./replay.js').HeldFrame} HeldFrame */

// A provider without timestamps (Wiro) gives no audio position for its text: keep this much extra audio before
// the estimated end of the last final, so a replay repeats a little rather than loses words; the repeat is then
// cut from the new session's first utterance where it matches the end of what was already final. The estimate is
// its client's, and has to be no later than the audio the provider can have heard (providers/wiro.js: not the audio
// sent, which runs ahead after a burst): audio committed before it is heard is lost unreported when the socket drops.
export const UNTIMED_COMMIT_MARGIN_MS = 2000;
const OVERLAP_MIN_WORDS = 2;
// While disconnected, loss grows with every frame the replay buffer pushes out: it is announced when it starts and
// then only when it has grown this much more (the exact figure follows with the reconnect or the end), so the
// page's live region is not read out several times a second.
export const DROP_REPORT_STEP_MS = 5000;
const TAIL_WORDS = 40;

/** @param {string} word */
const plain = (word) => word.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '');

// A replay begins inside a word as often as not, and the new session hears the rest of it as another, shorter word
// that keeps a run of its letters ("weather is" came back "there is": "ther"). So the first word of the new text,
// and only it (elsewhere "the" inside "then", "2023" beside "2024" are different words), counts as a matching word
// of the repeat when it is shorter than the tail word and shares with it at least this many letters in a row, and
// this share of itself; it still costs what a substitution costs.
const FRAGMENT_MIN_LETTERS = 3;
const FRAGMENT_MIN_SHARE = 0.6;

/** The longest run of letters two words share. @param {string} a @param {string} b */
function commonRun(a, b) {
  let best = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < b.length; j++) {
      let n = 0;
      while (i + n < a.length && j + n < b.length && a[i + n] === b[j + n]) n++;
      best = Math.max(best, n);
    }
  }
  return best;
}

/**
 * `heard` is likely the rest of `word`, cut where the replay began (see FRAGMENT_MIN_LETTERS).
 * @param {string} word  a word of the tail
 * @param {string} heard  the first word of the new text
 */
function fragmentOf(word, heard) {
  const run = commonRun(word, heard);
  return heard.length < word.length && run >= FRAGMENT_MIN_LETTERS && run >= FRAGMENT_MIN_SHARE * heard.length;
}

/**
 * Drop the words at the start of `text` that repeat the end of `tail`: a replay after a reconnect without the
 * provider's times sends audio again from before the estimated end of the last final, so the next session hears
 * those words a second time, from a point that may fall inside a word, and not always as they were heard the first
 * time ("though weather is nigh" came back as "the lead is nigh"). The repeat is the prefix of `text` that best
 * matches an end of `tail` word by word (a word heard otherwise costs one, a word more or less costs one); it is cut
 * when at least OVERLAP_MIN_WORDS words match (a first word that is the rest of a tail word counts, see
 * FRAGMENT_MIN_LETTERS) and at most half of its words differ.
 * @param {string[]} tail  the last final words before a reconnect
 * @param {string} text
 */
export function stripOverlap(tail, text) {
  const words = text.split(/\s+/).filter(Boolean);
  const a = tail.map(plain);
  const b = words.map(plain);
  // cost[k] / matched[k]: the best alignment of the first i words of `text` with the words of `tail` that end at k,
  // starting anywhere in `tail` (so row 0 costs nothing: the repeat may begin at any word).
  let cost = new Array(a.length + 1).fill(0);
  let matched = new Array(a.length + 1).fill(0);
  let best = { cut: 0, cost: Infinity };
  for (let i = 1; i <= Math.min(b.length, a.length + OVERLAP_MIN_WORDS); i++) {
    const nextCost = [i];
    const nextMatched = [0];
    for (let k = 1; k <= a.length; k++) {
      const same = a[k - 1] === b[i - 1];
      const alike = same || (i === 1 && fragmentOf(a[k - 1], b[0]));
      /** @type {[number, number][]} (cost, matched) of: a word of `text` more, of `tail` more, the pair */
      const ways = [
        [cost[k] + 1, matched[k]],
        [nextCost[k - 1] + 1, nextMatched[k - 1]],
        [cost[k - 1] + (same ? 0 : 1), matched[k - 1] + (alike ? 1 : 0)],
      ];
      const [c, m] = ways.reduce((x, y) => (y[0] < x[0] || (y[0] === x[0] && y[1] > x[1]) ? y : x));
      nextCost.push(c);
      nextMatched.push(m);
    }
    cost = nextCost;
    matched = nextMatched;
    const c = cost[a.length];
    // The cheapest cut wins; on a tie the longer one (a repeated word at the seam is the repeat, "go go go").
    if (matched[a.length] >= OVERLAP_MIN_WORDS && 2 * c <= i && c <= best.cost) best = { cut: i, cost: c };
  }
  return words.slice(best.cut).join(' ');
}

export class ReplayAccounting {
  /** Audio reported lost before the current disconnect (ms). */
  #lostBeforeMs = 0;
  /** Audio known lost so far (ms), whether or not announced yet. */
  #reportedMs = 0;
  /** The figure the last `dropped` event carried, and the one it carried when the current outage began. */
  #announcedMs = 0;
  #outageAnnouncedMs = 0;
  /** @type {string[]} the last final words, for cutting a replay's repeat */
  #finalTail = [];
  /** @type {string[] | null} set after a replay that may repeat words, until its first final */
  #overlapTail = null;
  /** @type {number | null} when (the caller's clock) a source was first held back with no final since */
  #heldSince = null;

  /**
   * @param {{sampleRate: number, maxMs?: number, stallMs?: number}} options  stallMs: how long a source may be held
   *   back with no final before it goes on anyway (default 15000)
   */
  constructor({ sampleRate, maxMs = 30000, stallMs = 15000 }) {
    this.buffer = new ReplayBuffer({ sampleRate, maxMs });
    this.clock = new OffsetClock();
    this.stallMs = stallMs;
  }

  /** ms of audio captured so far, at the provider's rate. */
  get audioMs() {
    return Math.round(this.buffer.totalMs);
  }

  /** ms held that no final covers yet. */
  get bufferedMs() {
    return Math.round(this.buffer.pendingMs);
  }

  /** ms known lost so far. */
  get droppedMs() {
    return this.#reportedMs;
  }

  /**
   * A frame captured. While disconnected (`outage`), what it pushes out of the buffer is lost and said so (in steps).
   * @param {Int16Array} pcm
   * @param {boolean} outage
   * @returns {DroppedEvent[]}
   */
  push(pcm, outage) {
    this.buffer.push(pcm);
    return outage ? this.#drops(true) : [];
  }

  /**
   * May a source that can wait send one more frame of `frameMs`? Not when it would push audio no final covers out
   * of the buffer (it could not be sent again after a drop), unless held that long already with no final: a provider
   * that needs more audio before its next final must not wait for ever, so one frame goes on per stallMs.
   * @param {number} frameMs
   * @param {number} now  ms, the caller's clock
   */
  roomFor(frameMs, now) {
    if (this.buffer.pendingMs + frameMs <= this.buffer.maxMs) {
      this.#heldSince = null;
      return true;
    }
    this.#heldSince ??= now;
    if (now - this.#heldSince < this.stallMs) return false;
    // One frame, then the wait starts again: left open, the escape let every later frame through until a final, and
    // a file at full speed then went out whole, pushing minutes of unreplayable audio out of the buffer.
    this.#heldSince = null;
    return true;
  }

  /** The connection is lost: what no final covered and the buffer could not keep is lost from here on. */
  beginOutage() {
    this.#outageAnnouncedMs = this.#announcedMs;
    return this.#drops(false);
  }

  /**
   * A new provider session is ready: the frames to send it (held ones, then live ones captured meanwhile, in order),
   * with the `dropped` event that says what could not be kept. Its times now count from the first of them.
   * @param {boolean} repeats  the provider may say again words already final (untimed: the margin above)
   * @returns {{frames: HeldFrame[], offsetMs: number, events: DroppedEvent[]}}
   */
  replay(repeats) {
    const events = this.#drops(false);
    const frames = this.buffer.replay();
    const offsetMs = frames.length ? frames[0].startMs : this.audioMs;
    this.clock.startSession(offsetMs);
    if (repeats && frames.length) this.#overlapTail = [...this.#finalTail];
    this.buffer.markReplayed();
    // The stall escape is for a session that had its chance to give a final: this one has not had any yet.
    this.#heldSince = null;
    this.#lostBeforeMs = this.#reportedMs;
    return { frames, offsetMs, events };
  }

  /**
   * A final from the provider, on the recording's clock, its repeat of a replay cut; the audio it covers is no
   * longer held.
   * @template {{text: string, startMs: number|null, endMs: number|null, words: import('./replay.js').Word[]}} F
   * @param {F} event
   * @param {boolean} timed  its times are the provider's (else estimates: keep a margin)
   * @returns {F}
   */
  final(event, timed) {
    const shifted = this.clock.shiftEvent(event);
    if (this.#overlapTail && shifted.text) {
      shifted.text = stripOverlap(this.#overlapTail, shifted.text);
      this.#overlapTail = null;
    }
    if (shifted.endMs !== null && shifted.endMs !== undefined) {
      this.buffer.commit(timed ? shifted.endMs : shifted.endMs - UNTIMED_COMMIT_MARGIN_MS);
      this.#heldSince = null;
    }
    this.#finalTail = [...this.#finalTail, ...shifted.text.split(/\s+/).filter(Boolean)].slice(-TAIL_WORDS);
    return shifted;
  }

  /**
   * @template {{text: string, startMs: number|null, endMs: number|null}} P
   * @param {P} event
   * @returns {P}
   */
  partial(event) {
    const shifted = this.clock.shiftEvent(event);
    if (this.#overlapTail) shifted.text = stripOverlap(this.#overlapTail, shifted.text);
    return shifted;
  }

  /** The session ends without a replay: the audio no final covered, held or already pushed out, is lost. */
  terminalLoss() {
    return this.#announce(Math.round(this.#lostBeforeMs + this.buffer.gapMs + this.buffer.pendingMs), false);
  }

  /** @param {boolean} ongoing  per frame during an outage: announce the start of a loss, then only steps */
  #drops(ongoing) {
    return this.#announce(Math.round(this.#lostBeforeMs + this.buffer.gapMs), ongoing);
  }

  /**
   * @param {number} dropped  audio lost so far (ms)
   * @param {boolean} ongoing
   * @returns {DroppedEvent[]}
   */
  #announce(dropped, ongoing) {
    if (dropped > this.#reportedMs) this.#reportedMs = dropped;
    const grown = this.#reportedMs - this.#announcedMs;
    if (grown <= 0) return [];
    const firstOfOutage = this.#announcedMs === this.#outageAnnouncedMs;
    if (ongoing && !firstOfOutage && grown < DROP_REPORT_STEP_MS) return [];
    this.#announcedMs = this.#reportedMs;
    return [{ type: 'dropped', droppedMs: this.#reportedMs }];
  }
}
