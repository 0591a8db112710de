// Loss-free reconnect: keep the audio no final has covered yet, send it again to the next session, and map that
// session's times back onto the recording's clock.
//
// Pure ES module (no DOM, no timers). The recording's audio clock counts samples pushed since capture started;
// a sample's time is sample / sampleRate seconds. A new provider session starts its own clock at 0 with the
// first replayed sample, so its times are shifted by that sample's recording time (OffsetClock).

/** @typedef {{startSample: number, startMs: number, samples: Int16Array}} HeldFrame */

/** @typedef {{text: string, startMs: number, endMs: number}} Word */

export class ReplayBuffer {
  /**
   * @param {{sampleRate: number, maxMs?: number}} options  maxMs: most audio held (default 30000); beyond it the
   *   oldest frames are dropped and counted in droppedMs
   */
  constructor({ sampleRate, maxMs = 30000 }) {
    if (!(Number.isInteger(sampleRate) && sampleRate > 0)) {
      throw new RangeError(`bad sampleRate: ${sampleRate}`);
    }
    if (!(maxMs >= 0)) throw new RangeError(`bad maxMs: ${maxMs}`);
    this.sampleRate = sampleRate;
    this.maxMs = maxMs;
    this.maxSamples = Math.floor((maxMs * sampleRate) / 1000);
    /** @type {HeldFrame[]} oldest first, contiguous except where frames were dropped */
    this.frames = [];
    /** Samples pushed since the start: the next frame's start sample. */
    this.totalSamples = 0;
    this.heldSamples = 0;
    this.droppedSamples = 0;
    /** Recording sample up to which the audio is safe: covered by a final, or already counted as a gap. */
    this.coveredSample = 0;
  }

  /** @param {number} sample */
  sampleToMs(sample) {
    return (sample * 1000) / this.sampleRate;
  }

  /**
   * Record one frame. It is copied, so the caller may transfer or reuse its buffer (100–200 ms frames: the copy
   * is a few kilobytes). Empty frames are ignored.
   * @param {Int16Array} frame
   * @returns {number} the frame's start sample on the recording's clock
   */
  push(frame) {
    const startSample = this.totalSamples;
    if (!frame.length) return startSample;
    this.frames.push({ startSample, startMs: this.sampleToMs(startSample), samples: frame.slice() });
    this.totalSamples += frame.length;
    this.heldSamples += frame.length;
    // Whole frames are dropped, oldest first, so what is held stays a run of complete frames.
    while (this.heldSamples > this.maxSamples && this.frames.length) {
      const old = /** @type {HeldFrame} */ (this.frames.shift());
      this.heldSamples -= old.samples.length;
      this.droppedSamples += old.samples.length;
    }
    return startSample;
  }

  /**
   * Forget the frames that end at or before `untilMs` (audio a final already covers). A frame that straddles
   * `untilMs` stays whole, so a replay may repeat up to one frame of audio before it.
   * @param {number} untilMs  recording time
   * @returns {number} how many frames were forgotten
   */
  commit(untilMs) {
    if (!Number.isFinite(untilMs)) return 0;
    const until = Math.min(this.totalSamples, Math.max(0, Math.floor((untilMs * this.sampleRate) / 1000)));
    this.coveredSample = Math.max(this.coveredSample, until);
    let n = 0;
    while (n < this.frames.length && this.frames[n].startSample + this.frames[n].samples.length <= until) {
      this.heldSamples -= this.frames[n].samples.length;
      n++;
    }
    this.frames.splice(0, n);
    return n;
  }

  /**
   * The held frames, oldest first, each with its start on the recording's clock, for a new session. They stay
   * held until committed. The arrays are the buffer's own: send them (WebSocket.send copies), do not transfer.
   * @returns {HeldFrame[]}
   */
  replay() {
    return this.frames.slice();
  }

  /** Recording sample of the first held frame; the audio clock when nothing is held. */
  get heldFromSample() {
    return this.frames.length ? this.frames[0].startSample : this.totalSamples;
  }

  /**
   * Audio no final covers and no replay can bring back, in ms: everything between the last final (or the last
   * replay) and the oldest frame still held. Frames the bound pushed out while connected were sent, but a
   * session that dies before its final loses them too, so they count here once the session is lost.
   */
  get gapMs() {
    return this.sampleToMs(Math.max(0, this.heldFromSample - this.coveredSample));
  }

  /** The held frames went to a new session: the gap before them is counted, not to be counted again. */
  markReplayed() {
    this.coveredSample = Math.max(this.coveredSample, this.heldFromSample);
  }

  /** Audio currently held, in ms. */
  get pendingMs() {
    return this.sampleToMs(this.heldSamples);
  }

  /** Audio pushed out because more than maxMs was held (sent, but no longer replayable). */
  get droppedMs() {
    return this.sampleToMs(this.droppedSamples);
  }

  /** Recording time of the first held sample; null when nothing is held. */
  get heldFromMs() {
    return this.frames.length ? this.frames[0].startMs : null;
  }

  /** The audio clock: ms of audio pushed since the start. */
  get totalMs() {
    return this.sampleToMs(this.totalSamples);
  }
}

/**
 * Offset stitching: a session that started with the sample at recording time `offsetMs` reports times from 0;
 * adding the offset puts them back on the recording's clock.
 */
export class OffsetClock {
  constructor() {
    this.offsetMs = 0;
  }

  /** @param {number} offsetMs  recording time of the first sample the new session receives (first replayed) */
  startSession(offsetMs) {
    if (!Number.isFinite(offsetMs) || offsetMs < 0) throw new RangeError(`bad session offset: ${offsetMs}`);
    this.offsetMs = offsetMs;
  }

  /**
   * @template {number|null|undefined} T
   * @param {T} ms  session time; null/undefined (no time given) passes through
   * @returns {T}
   */
  toRecording(ms) {
    return /** @type {T} */ (typeof ms === 'number' ? ms + this.offsetMs : ms);
  }

  /**
   * A copy of a partial or final event with startMs, endMs and word times on the recording's clock; other
   * fields are kept as they are.
   * @template {{startMs?: number|null, endMs?: number|null, words?: Word[]}} E
   * @param {E} event
   * @returns {E}
   */
  shiftEvent(event) {
    const out = { ...event };
    if ('startMs' in event) out.startMs = this.toRecording(event.startMs);
    if ('endMs' in event) out.endMs = this.toRecording(event.endMs);
    if (Array.isArray(event.words)) {
      const shift = this.offsetMs;
      out.words = event.words.map((w) => ({ ...w, startMs: w.startMs + shift, endMs: w.endMs + shift }));
    }
    return out;
  }
}

/**
 * Exponential backoff with full jitter (uniform in [0, min(maxMs, baseMs * 2^attempt))), so clients that lost
 * the same server do not all come back at once.
 * @param {number} attempt  0 for the first retry
 * @param {{baseMs?: number, maxMs?: number, random?: () => number}} [options]
 * @returns {number} whole ms to wait
 */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 15000, random = Math.random } = {}) {
  const n = Number.isFinite(attempt) && attempt > 0 ? Math.min(Math.floor(attempt), 52) : 0;
  const cap = Math.min(maxMs, baseMs * 2 ** n);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(cap * r);
}
