// Truebar streaming STT (wss://…/api/pipelines/stream), per ../shared/specs/truebar.md and the vendor's
// guide. Pure message parsing and building first (unit-tested without sockets), then the client over a
// WebSocket.
//
// CONFIG goes out as soon as the socket opens instead of after STATUS INITIALIZED: the vendor's own Node and
// Java examples do this and the protocol accepts it, and it saves a round trip. Audio is still held back
// until STATUS CONFIGURED, because a server that rejects the tag answers with ERROR and audio sent before
// that would be wasted.

import { EVENT } from './protocol.js';
import { SessionClient, StreamSession } from './stream-session.js';
import { pcm16leBytes } from './wire.js';
import { withQueryParam } from './grant.js';

/** The seed's fallback; a grant normally names the tag the account can stream with. */
export const DEFAULT_TAG = 'KALDI:en-US:*:*';

/** End of stream: the server finishes what it has, sends the last segments, then STATUS FINISHED. */
export const EOS = JSON.stringify({ type: 'EOS', lockSession: false });

/** Abandon the session without closing the socket; the server answers STATUS CANCELED. */
export const CANCEL = JSON.stringify({ type: 'CANCEL' });

/**
 * What the Truebar protocol gives: segment and word times on the session's audio clock, an end-of-utterance
 * decision of its own (so a file may be sent as fast as the socket takes it), finals that never repeat replayed
 * audio (their times say exactly what they cover).
 * @type {import('./protocol.js').ProtocolCapabilities}
 */
export const CAPABILITIES = Object.freeze({ timedWords: true, pacing: 'fast', replayRepeats: false });

/** @typedef {{text: string, isLeftHanded?: boolean, isRightHanded?: boolean}} Token */
/** @typedef {import('./protocol.js').Word} Word */

/**
 * @typedef {{kind: 'status', status: string}
 *   | {kind: 'segment', isFinal: boolean, text: string, startMs: number|null, endMs: number|null,
 *      words: Word[]}
 *   | {kind: 'warning', message: string}
 *   | {kind: 'error', message: string}
 *   | {kind: 'unknown', type: string|null}
 *   | {kind: 'invalid'}} TruebarMessage
 */

/**
 * The CONFIG message for a pipeline with one streaming ASR stage.
 * @param {string} tag  e.g. "KALDI:en-US:*:*"
 * @param {{interims?: boolean}} [options]
 * @returns {string}
 */
export function configMessage(tag, { interims = true } = {}) {
  return JSON.stringify({
    type: 'CONFIG',
    pipeline: [
      {
        task: 'ASR',
        exceptionHandlingPolicy: 'THROW',
        config: { tag, parameters: { enableInterims: interims } },
      },
    ],
  });
}

/**
 * Text of a segment by the vendor's rule: a space between two adjacent tokens unless the first is
 * right-handed or the second left-handed. Tokens with empty text are skipped entirely (they neither add a
 * space nor change the handedness the next token sees).
 * @param {unknown} tokens
 * @returns {string}
 */
export function tokensToText(tokens) {
  if (!Array.isArray(tokens)) return '';
  let out = '';
  let prevRight = false;
  for (const token of tokens) {
    const text = isObject(token) && typeof token.text === 'string' ? token.text : '';
    if (!text) continue;
    const left = token.isLeftHanded === true;
    if (out && !prevRight && !left) out += ' ';
    out += text;
    prevRight = token.isRightHanded === true;
  }
  return out;
}

/**
 * Words with absolute times: token offsets count from the segment start, segment times from the session
 * start. Tokens without usable times are left out (their text is still in the segment text).
 * @param {Record<string, unknown>} segment
 * @returns {Word[]}
 */
export function segmentWords(segment) {
  const base = finiteOrNull(segment.startTimeMs);
  if (base === null || !Array.isArray(segment.tokens)) return [];
  /** @type {Word[]} */
  const words = [];
  for (const token of segment.tokens) {
    if (!isObject(token) || typeof token.text !== 'string' || !token.text) continue;
    const start = finiteOrNull(token.startOffsetMs);
    const end = finiteOrNull(token.endOffsetMs);
    if (start === null || end === null) continue;
    words.push({ text: token.text, startMs: base + start, endMs: base + end });
  }
  return words;
}

/**
 * An ERROR's text: `error.message`, falling back to a top-level `message`; '' when neither is there.
 * @param {unknown} msg  the parsed JSON message
 * @returns {string}
 */
export function errorMessage(msg) {
  if (!isObject(msg)) return '';
  const nested = isObject(msg.error) ? msg.error.message : undefined;
  if (typeof nested === 'string' && nested) return nested;
  return typeof msg.message === 'string' ? msg.message : '';
}

/**
 * Truebar's segments carry the provider's own times; one without them has none to trust.
 * @param {number|null} startMs
 * @param {number|null} endMs
 * @returns {import('./protocol.js').Timing}
 */
const timingOf = (startMs, endMs) => (startMs !== null && endMs !== null ? 'provider' : 'estimated');

/**
 * Parse one text frame. The envelope key is `type` in the vendor's guide and `messageType` in community
 * clients: both are read. Unknown types, statuses and fields are passed over, never an error.
 * @param {string} text
 * @returns {TruebarMessage}
 */
export function parseMessage(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'invalid' };
  }
  if (!isObject(msg)) return { kind: 'invalid' };
  const type = msg.type ?? msg.messageType;
  switch (type) {
    case 'STATUS':
      return { kind: 'status', status: typeof msg.status === 'string' ? msg.status : '' };
    case 'TEXT_SEGMENT': {
      const segment = isObject(msg.textSegment) ? msg.textSegment : {};
      return {
        kind: 'segment',
        // The guide's field table writes "<boolean>"; a string "true" is taken at its word too.
        isFinal: segment.isFinal === true || segment.isFinal === 'true',
        text: tokensToText(segment.tokens),
        startMs: finiteOrNull(segment.startTimeMs),
        endMs: finiteOrNull(segment.endTimeMs),
        words: segmentWords(segment),
      };
    }
    case 'WARNING':
      return { kind: 'warning', message: errorMessage(msg) };
    case 'ERROR':
      return { kind: 'error', message: errorMessage(msg) };
    default:
      return { kind: 'unknown', type: typeof type === 'string' ? type : null };
  }
}

/**
 * A Truebar streaming session. Events and methods are those of the contract in client.js.
 */
export class TruebarClient extends SessionClient {
  static capabilities = CAPABILITIES;

  /**
   * @param {import('./grant.js').Grant} grant
   * @param {import('./protocol.js').ClientOptions} [opts]
   */
  constructor(grant, opts = {}) {
    const config = configMessage(grant.tag || DEFAULT_TAG, { interims: opts.interims ?? true });
    super(new StreamSession(grant, opts, {
      // Browsers cannot set an Authorization header on a WebSocket: the token rides in the query.
      url: withQueryParam(grant.ws_url, 'access_token', grant.token),
      readyEvent: 'STATUS CONFIGURED',
      onOpen: () => this._session.sendText(config),
      onText: (text) => this._onText(text),
      encodeFrame: (pcm) => pcm16leBytes(pcm),
      onStop: () => this._session.sendText(EOS),
      onCancel: () => this._session.sendText(CANCEL),
    }));
  }

  /** @param {string} text */
  _onText(text) {
    const session = this._session;
    const msg = parseMessage(text);
    switch (msg.kind) {
      case 'status':
        if (msg.status === 'CONFIGURED') {
          session.markReady();
        } else if (msg.status === 'FINISHED' && session.state === 'streaming') {
          // Not asked for (a session length limit, say): the audio sent since its last final, and any sent after
          // this, has no session to go to. A transport failure, so the caller replays it to a new one; an end
          // would leave it held and never counted as lost.
          session.fail(`${session.label} ended the session on its own.`, 'transport');
        } else if (msg.status === 'FINISHED') {
          session.finish(); // the end asked for, or (before CONFIGURED) a start that failed
        }
        // INITIALIZED and CONFIG_REQUIRED need nothing: CONFIG went out on open, before any audio or EOS, so
        // either one crossed it on the wire. The spec says neither when CONFIG_REQUIRED is sent nor that a client
        // should answer it (only the seed's Python example names it, as a cue to send its first CONFIG), and a
        // second CONFIG is refused with ERROR: sending CONFIG again would end a session that was being
        // configured. A server that dropped ours never says CONFIGURED, which readyTimeoutMs bounds. Unknown
        // statuses are ignored.
        return;
      case 'segment':
        if (!msg.isFinal) {
          const { text, startMs, endMs } = msg;
          session.emit({ type: EVENT.PARTIAL, text, startMs, endMs, timing: timingOf(startMs, endMs) });
        } else {
          // A final with no words (silence) is still a final: it says the audio up to endMs needs no replay.
          const { text, startMs, endMs, words } = msg;
          session.emit({ type: EVENT.FINAL, text, startMs, endMs, words, timing: timingOf(startMs, endMs) });
        }
        return;
      case 'warning':
        session.warn(`${session.label}: ${session.redact(msg.message) || 'warning without a message'}`);
        return;
      case 'error':
        session.fail(`${session.label} error: ${session.redact(msg.message) || 'no message given'}`, 'protocol');
        return;
      default:
        return;
    }
  }
}

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * @param {unknown} v
 * @returns {number|null}
 */
function finiteOrNull(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
