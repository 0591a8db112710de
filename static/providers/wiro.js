// Wiro realtime STT (wss://socket.wiro.ai/v1), per ../shared/specs/wiro.md and the vendor's Realtime Speech
// to Text page. Pure frame/event handling first (unit-tested without sockets), then the client over a
// WebSocket.
//
// Wiro sends transcript increments with no interim/final distinction and no timestamps. The client groups
// them into utterances: each increment extends the current one (a `partial` with its text so far) and the
// utterance becomes `final` after utteranceGapMs without increments, at task_stream_end, or when the session
// ends.

import { EVENT } from './protocol.js';
import { SessionClient, StreamSession } from './stream-session.js';
import { pcm16leBytes } from './wire.js';

export const TRANSCRIPT_PREFIX = 'TRANSCRIPT_USER:';

/** The byte between the token and the PCM in an audio frame; the server splits on its first occurrence. */
export const FRAME_SEPARATOR = 0x7c;

/**
 * What the Wiro protocol gives: no times at all (the client dates text by the audio Wiro can have heard when it
 * arrived), an utterance ends only with a pause in wall-clock time (so a file must be paced at 1x), and a replay
 * after a reconnect may repeat words already final (the audio a final covers is not known exactly).
 * @type {import('./protocol.js').ProtocolCapabilities}
 */
export const CAPABILITIES = Object.freeze({ timedWords: false, pacing: 'realtime', replayRepeats: true });

export const DEFAULT_UTTERANCE_GAP_MS = 1500;
export const DEFAULT_END_GRACE_MS = 2000;

/**
 * The fields of a server event this client relies on; everything else (id, result, success, terminal, …) is
 * ignored on purpose.
 * @typedef {object} WiroEvent
 * @property {string} type
 * @property {string|null} message
 * @property {number|null} turnCost        USD
 * @property {number|null} cumulativeCost  USD
 */

/**
 * One audio frame: the ASCII token, "|", then signed 16-bit little-endian PCM.
 * @param {string} token  the socketaccesstoken (alphanumeric)
 * @param {Int16Array} pcm
 * @returns {ArrayBuffer}
 */
export function encodeFrame(token, pcm) {
  const pcmBytes = pcm16leBytes(pcm);
  const frame = new Uint8Array(token.length + 1 + pcmBytes.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    // The message names no value: the token is a credential.
    if (c > 0x7e || c < 0x21 || c === FRAME_SEPARATOR) {
      throw new TypeError('The Wiro task token is not printable ASCII without "|".');
    }
    frame[i] = c;
  }
  frame[token.length] = FRAME_SEPARATOR;
  frame.set(pcmBytes, token.length + 1);
  return frame.buffer;
}

/** @param {string} token */
export function taskInfo(token) {
  return JSON.stringify({ type: 'task_info', tasktoken: token });
}

/** @param {string} token */
export function sessionEnd(token) {
  return JSON.stringify({ type: 'task_session_end', tasktoken: token });
}

/**
 * Parse one text frame; null when it is not a JSON object with a string `type`.
 * @param {string} text
 * @returns {WiroEvent|null}
 */
export function parseEvent(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const msg = /** @type {Record<string, unknown>} */ (parsed);
  if (typeof msg.type !== 'string') return null;
  return {
    type: msg.type,
    message: typeof msg.message === 'string' ? msg.message : null,
    turnCost: costOrNull(msg.turnCost),
    cumulativeCost: costOrNull(msg.cumulativeCost),
  };
}

/**
 * The transcript text a `task_output` carries, without its prefix; null for every other event (other
 * `task_output` messages are logs, not transcripts).
 * @param {WiroEvent} event
 * @returns {string|null}
 */
export function transcriptIncrement(event) {
  if (event.type !== 'task_output' || typeof event.message !== 'string') return null;
  return event.message.startsWith(TRANSCRIPT_PREFIX) ? event.message.slice(TRANSCRIPT_PREFIX.length) : null;
}

// Punctuation that belongs to the word before it when it arrives as an increment of its own.
const ATTACHES_LEFT = /^[,.;:!?%…)\]}]/;

/**
 * The text of a run of increments with normalised whitespace. Whether increments carry their own leading
 * space is not documented. If any does (`selfSpaced` unset) or the caller knows the stream does (`selfSpaced:
 * true`), the increments are pieces of text and are concatenated as they are; otherwise they are words and
 * are joined with one space, except punctuation, which attaches to the word before it.
 * @param {readonly string[]} increments
 * @param {{selfSpaced?: boolean}} [options]
 * @returns {string}
 */
export function joinIncrements(increments, { selfSpaced } = {}) {
  const pieces = increments.filter((s) => typeof s === 'string' && s !== '');
  const spaced = selfSpaced ?? pieces.some((s) => /^\s/.test(s));
  let out = '';
  for (const piece of pieces) {
    if (spaced || out === '' || ATTACHES_LEFT.test(piece)) {
      out += piece;
    } else {
      out += ` ${piece}`;
    }
  }
  return out.replace(/\s+/g, ' ').trim();
}

/**
 * A Wiro realtime STT session. Events and methods are those of the contract in client.js, plus the options
 * `utteranceGapMs` and `endGraceMs`.
 */
export class WiroClient extends SessionClient {
  static capabilities = CAPABILITIES;

  /**
   * @param {import('./grant.js').Grant} grant
   * @param {import('./protocol.js').ClientOptions} [opts]
   */
  constructor(grant, opts = {}) {
    const token = grant.token;
    super(new StreamSession(grant, opts, {
      url: grant.ws_url,
      readyEvent: 'task_stream_ready',
      onOpen: () => this._session.sendText(taskInfo(token)),
      onText: (text) => this._onText(text),
      encodeFrame: (pcm) => encodeFrame(token, pcm),
      onStop: () => this._session.sendText(sessionEnd(token)),
      // Closing is the cancel: the server terminates a task whose socket goes away without task_session_end.
      onCancel: () => {},
      onEnd: () => this._onEnd(),
    }));
    this._gapMs = opts.utteranceGapMs ?? DEFAULT_UTTERANCE_GAP_MS;
    this._endGraceMs = opts.endGraceMs ?? DEFAULT_END_GRACE_MS;
    /** @type {{parts: string[], startMs: number, endMs: number} | null} */
    this._utterance = null;
    /** @type {unknown} */
    this._gapTimer = null;
    /** @type {unknown} */
    this._graceTimer = null;
    // Once one increment carries its own leading space, the stream is taken to be self-spaced for good.
    this._selfSpaced = false;
  }

  /** @param {string} text */
  _onText(text) {
    const session = this._session;
    const event = parseEvent(text);
    if (event === null) return;
    const increment = transcriptIncrement(event);
    if (increment !== null) {
      this._addIncrement(increment);
      return;
    }
    switch (event.type) {
      case 'task_stream_ready':
        session.markReady();
        return;
      case 'task_cost':
        session.emit({ type: EVENT.COST, turnCost: event.turnCost, cumulativeCost: event.cumulativeCost });
        return;
      case 'task_error':
        // A log line from the task, not a failure of the session.
        session.warn(`${session.label} task log: ${session.redact(event.message ?? '(no message)')}`);
        return;
      case 'task_stream_end':
        this._commitUtterance();
        // "No more transcripts will arrive": the answer to task_session_end. Before it, the audio sent from here on
        // would go into a stream nobody transcribes, and the session end cleanly without it: a lost connection
        // instead, so the session replays to a new task what no final covered.
        if (session.state !== 'finishing') {
          session.fail(`${session.label} ended its transcript stream before it was asked to.`, 'transport');
        }
        return;
      case 'task_end':
        this._commitUtterance();
        if (session.state === 'finishing') {
          // Post-processing normally follows; when the balance ran out it never comes.
          this._clearGraceTimer();
          this._graceTimer = session.timers.setTimeout(() => {
            this._graceTimer = null;
            session.finish();
          }, this._endGraceMs);
        } else {
          session.fail(
            `${session.label} ended the task before it was asked to (balance used up or the model exited).`,
          );
        }
        return;
      case 'task_postprocess_end':
        if (session.state === 'finishing') {
          session.finish();
        } else {
          session.fail(`${session.label} ended the task before it was asked to.`);
        }
        return;
      case 'task_cancel':
        if (session.state === 'finishing') {
          session.finish();
        } else {
          session.fail(`${session.label} cancelled the task.`);
        }
        return;
      default:
        // `connected`, the task lifecycle (task_queue … task_start) and non-transcript task_output: nothing
        // to do.
        return;
    }
  }

  /** @param {string} increment */
  _addIncrement(increment) {
    if (/^\s/.test(increment)) this._selfSpaced = true;
    if (this._utterance === null && increment.trim() === '') return;
    const session = this._session;
    // No timestamps from Wiro: the best estimate of where the words are is how far it can have listened when they
    // came. Not the audio sent: Wiro listens in real time, so a burst (the audio queued until task_stream_ready, a
    // replay) is heard over as long as it lasts, and words soon after it are not at its end. Dated there, a final
    // shows late and lets the session forget audio Wiro has not heard yet (a drop then loses it unreported).
    const nowMs = session.heardMs();
    this._utterance ??= { parts: [], startMs: nowMs, endMs: nowMs };
    this._utterance.parts.push(increment);
    this._utterance.endMs = nowMs;
    session.emit({
      type: EVENT.PARTIAL,
      text: this._utteranceText(),
      startMs: this._utterance.startMs,
      endMs: this._utterance.endMs,
      timing: 'estimated',
    });
    this._clearGapTimer();
    this._gapTimer = session.timers.setTimeout(() => {
      this._gapTimer = null;
      this._commitUtterance();
    }, this._gapMs);
  }

  _utteranceText() {
    const parts = this._utterance?.parts ?? [];
    return joinIncrements(parts, this._selfSpaced ? { selfSpaced: true } : {});
  }

  _commitUtterance() {
    this._clearGapTimer();
    const utterance = this._utterance;
    if (utterance === null) return;
    const text = this._utteranceText();
    this._utterance = null;
    if (!text) return;
    const { startMs, endMs } = utterance;
    // Times from when the words arrived, never Wiro's: said here, once, for every layer after this one.
    this._session.emit({ type: EVENT.FINAL, text, startMs, endMs, words: [], timing: 'estimated' });
  }

  _clearGapTimer() {
    if (this._gapTimer !== null) {
      this._session.timers.clearTimeout(this._gapTimer);
      this._gapTimer = null;
    }
  }

  _clearGraceTimer() {
    if (this._graceTimer !== null) {
      this._session.timers.clearTimeout(this._graceTimer);
      this._graceTimer = null;
    }
  }

  _onEnd() {
    this._commitUtterance();
    this._clearGraceTimer();
  }
}

/**
 * Costs are USD numbers; numeric strings (as the REST API uses for costs) are accepted too.
 * @param {unknown} v
 * @returns {number|null}
 */
function costOrNull(v) {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}
