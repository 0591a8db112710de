// Recognition latency measured on the audio clock: how long after speech the interim text and the final come.
//
// Pure ES module (no DOM, no timers): every time is milliseconds of audio sent so far (the "audio clock"), so a
// measurement does not depend on how busy the page or the machine is, only on how far the audio had got when the
// provider's event arrived. Provider times (startMs/endMs) must already be on the recording's clock (after a
// reconnect, shift them with replay.js OffsetClock first).

/**
 * Nearest-rank percentile: the smallest value such that at least p % of the values are at or below it
 * (sorted[ceil(p/100 * n) - 1]; p = 0 gives the minimum). Always one of the inputs, never interpolated.
 * Non-finite values are ignored.
 * @param {ArrayLike<number>} values
 * @param {number} p  0..100
 * @returns {number|null}  null when there is no finite value
 */
export function percentile(values, p) {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/**
 * @typedef {object} LatencyOptions
 * @property {number} [threshold]     RMS (full scale = 1) at or above which a level counts as speech; default
 *                                    0.015, about -36 dBFS: above a quiet room, below normal speech at a headset
 * @property {number} [hangoverMs]    speech ends once the level has stayed below the threshold this long
 *                                    (default 400): shorter dips between words do not end it
 * @property {number} [maxLatencyMs]  larger samples are rejected as absurd (default 30000)
 */

/** @typedef {{count: number, p50: number|null, p95: number|null, last: number|null, rejected: number}} Metric */

/** @typedef {{startMs?: number|null, endMs?: number|null}} TimedEvent  a partial or final ProviderEvent */

/** @param {unknown} v @returns {v is number} */
const isTime = (v) => typeof v === 'number' && Number.isFinite(v);

class Samples {
  constructor() {
    /** @type {number[]} */
    this.values = [];
    this.rejected = 0;
  }

  /**
   * Robustness rule: a sample is kept only when it is finite and within [0, max]. A negative value means the
   * provider's time and the audio clock disagree (it cannot answer before it heard the audio) and a huge one
   * means a missed boundary (e.g. no speech detected before a long silence): both are counted as rejected.
   * @param {number} value
   * @param {number} max
   */
  add(value, max) {
    if (Number.isFinite(value) && value >= 0 && value <= max) this.values.push(value);
    else this.rejected++;
  }

  /** @returns {Metric} */
  stats() {
    const v = this.values;
    return {
      count: v.length,
      p50: percentile(v, 50),
      p95: percentile(v, 95),
      last: v.length ? v[v.length - 1] : null,
      rejected: this.rejected,
    };
  }
}

/**
 * Per utterance: time to first interim (the first partial's arrival minus the speech start: the partial's own
 * startMs when the provider gives one, else the energy detector's onset) and end of speech to final (the final's
 * arrival minus its endMs, else minus the detected speech end).
 *
 * An utterance starts with the first partial after a final (or the session start) and ends with the next final.
 * Detected onsets and ends before the previous final's end of speech belong to earlier utterances and are not
 * used again; the utterance's onset is the first one after it.
 */
export class LatencyTracker {
  /** @param {LatencyOptions} [options] */
  constructor(options = {}) {
    this.threshold = options.threshold ?? 0.015;
    this.hangoverMs = options.hangoverMs ?? 400;
    this.maxLatencyMs = options.maxLatencyMs ?? 30000;
    /** Audio clock: total ms of audio sent so far. */
    this.audioMs = 0;
    this.speaking = false;
    /** @type {number|null} audio time of the last level at or above the threshold */
    this.lastLoudMs = null;
    /** @type {number[]} detected speech onsets not yet claimed by an utterance, oldest first */
    this.onsets = [];
    /** @type {number[]} detected speech ends (the last loud level before a hangover), oldest first */
    this.ends = [];
    /** @type {number} audio time up to which speech belongs to finished utterances */
    this.boundaryMs = -Infinity;
    this.awaitingFirstPartial = true;
    this.firstInterim = new Samples();
    this.finalLag = new Samples();
  }

  reset() {
    this.audioMs = 0;
    this.speaking = false;
    this.lastLoudMs = null;
    this.onsets = [];
    this.ends = [];
    this.boundaryMs = -Infinity;
    this.awaitingFirstPartial = true;
    this.firstInterim = new Samples();
    this.finalLag = new Samples();
  }

  /** @param {number} msSent  total audio sent so far */
  onAudio(msSent) {
    if (isTime(msSent)) this.audioMs = Math.max(this.audioMs, msSent);
  }

  /**
   * Energy detector with hangover. `atMs` is the audio time of the measured block (its end, as the level is
   * known once the block is captured); it defaults to the audio clock.
   * @param {number} rms  full scale = 1
   * @param {number} [atMs]
   */
  onLevel(rms, atMs = this.audioMs) {
    if (!isTime(atMs) || !Number.isFinite(rms)) return;
    if (rms >= this.threshold) {
      if (!this.speaking) {
        this.speaking = true;
        this.onsets.push(atMs);
      }
      this.lastLoudMs = atMs;
    } else if (this.speaking && this.lastLoudMs !== null && atMs - this.lastLoudMs >= this.hangoverMs) {
      this.speaking = false;
      this.ends.push(this.lastLoudMs);
    }
  }

  /**
   * @param {TimedEvent} event
   * @param {number} [atMs]  audio clock when the event arrived
   */
  onPartial(event, atMs = this.audioMs) {
    if (!this.awaitingFirstPartial) return;
    this.awaitingFirstPartial = false;
    let start = isTime(event.startMs) ? event.startMs : null;
    if (start === null) {
      const onset = this.onsets.find((t) => t > this.boundaryMs && t <= atMs);
      start = onset ?? null;
    }
    if (start !== null) this.firstInterim.add(atMs - start, this.maxLatencyMs);
  }

  /**
   * @param {TimedEvent} event
   * @param {number} [atMs]  audio clock when the event arrived
   */
  onFinal(event, atMs = this.audioMs) {
    let end = isTime(event.endMs) ? event.endMs : null;
    if (end === null) {
      const candidates = this.ends.filter((t) => t > this.boundaryMs && t <= atMs);
      end = candidates.length ? candidates[candidates.length - 1] : null;
    }
    if (end !== null) this.finalLag.add(atMs - end, this.maxLatencyMs);
    // Whatever speech was detected up to this final's end is now accounted for.
    const boundary = end ?? atMs;
    if (boundary > this.boundaryMs) this.boundaryMs = boundary;
    this.onsets = this.onsets.filter((t) => t > this.boundaryMs);
    this.ends = this.ends.filter((t) => t > this.boundaryMs);
    this.awaitingFirstPartial = true;
  }

  /** @returns {{firstInterim: Metric, finalLag: Metric}}  milliseconds of audio */
  stats() {
    return { firstInterim: this.firstInterim.stats(), finalLag: this.finalLag.stats() };
  }
}
