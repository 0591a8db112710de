// The lifecycle both providers share (StreamSession: connect, wait for ready while queueing audio, stream, finish,
// cancel, and turn every way a socket can end into accurate events) and SessionClient, the public face the
// protocol modules extend.
import { FrameQueue, deferred } from './frame-queue.js';
import { checkGrant, closeSummary, displayUrl, providerLabel, redact } from './grant.js';
import { DEFAULTS, EVENT, STATE } from './protocol.js';
import { toInt16 } from './wire.js';

/** @typedef {import('./grant.js').Grant} Grant */
/** @typedef {import('./protocol.js').ClientOptions} ClientOptions */
/** @typedef {import('./protocol.js').ClientState} ClientState */
/** @typedef {import('./protocol.js').ErrorCause} ErrorCause */
/** @typedef {import('./protocol.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./protocol.js').Timers} Timers */

// WebSocket.readyState values, spelled out because an injected implementation may lack the static constants.
const CONNECTING = 0;
const OPEN = 1;

/** @param {WebSocket} ws  bytes queued by send() and not yet handed to the network (0 where not reported) */
const bufferedOf = (ws) => (typeof ws.bufferedAmount === 'number' ? ws.bufferedAmount : 0);

/** @type {Timers} */
const GLOBAL_TIMERS = {
  // Wrapped: calling window.setTimeout with another `this` throws "Illegal invocation" in browsers.
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (id)),
};

/**
 * When `grant` runs out, in ms on the clock of `receivedAt`: its `expires_in` counted from `receivedAt`, so a
 * browser clock minutes off the server's changes nothing. A grant without it (an older server, an adopter's own
 * backend) is taken at its `expires_at`, the server's clock read as ours. Null when it says neither.
 * @param {Grant} grant
 * @param {number} receivedAt  ms: when the grant arrived (the client is made in the same task as a session gets
 *   its grant)
 * @returns {number | null}
 */
export function localExpiry(grant, receivedAt) {
  /** @param {unknown} v @returns {v is number} */
  const finite = (v) => typeof v === 'number' && Number.isFinite(v);
  if (finite(grant.expires_in) && grant.expires_in >= 0 && finite(receivedAt)) return receivedAt + grant.expires_in * 1000;
  if (finite(grant.expires_at)) return grant.expires_at * 1000;
  return null;
}

/**
 * What a protocol module plugs into a StreamSession.
 * @typedef {object} SessionProtocol
 * @property {string} url                 may carry the credential: never shown
 * @property {string} readyEvent          what "ready" is called on the wire, for the timeout message
 * @property {() => void} onOpen
 * @property {(text: string) => void} onText
 * @property {(pcm: Int16Array) => ArrayBuffer | ArrayBufferView} encodeFrame
 * @property {() => void} onStop          send the end-of-stream message
 * @property {() => void} onCancel        last words before the socket is closed (socket still open)
 * @property {() => void} [onEnd]         the session is over, whichever way: deliver what is pending
 */

/**
 * The lifecycle both providers share: connect, wait for ready (with a timeout) while queueing audio, stream,
 * finish gracefully (with a timeout), cancel, and turn every way a socket can end into accurate events.
 *
 * `closed.clean` is true when the session ended the way this client or the protocol decided (end confirmed,
 * cancel(), or a fatal error the client reported and closed on, a stop that timed out among them), and false when
 * the transport went away without the protocol saying so.
 */
export class StreamSession {
  /**
   * @param {Grant} grant
   * @param {ClientOptions} opts
   * @param {SessionProtocol} protocol
   */
  constructor(grant, opts, protocol) {
    checkGrant(grant);
    const WebSocketImpl = opts.WebSocketImpl ?? globalThis.WebSocket;
    if (typeof WebSocketImpl !== 'function') throw new TypeError('No WebSocket implementation is available.');
    this.label = providerLabel(grant);
    this.sampleRate = grant.sample_rate;
    this._secret = grant.token;
    this._WebSocketImpl = WebSocketImpl;
    this._protocol = protocol;
    this._onEvent = opts.onEvent ?? (() => {});
    /** @type {Timers} shared with the protocol module's own timers */
    this.timers = opts.timers ?? GLOBAL_TIMERS;
    this._readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs;
    this._finishTimeoutMs = opts.finishTimeoutMs ?? DEFAULTS.finishTimeoutMs;
    this._frameMs = (grant.frame_samples * 1000) / grant.sample_rate;
    this._now = opts.now ?? Date.now;
    /** When the grant runs out, ms on this._now's clock; null when the grant does not say. */
    this._expiresAt = localExpiry(grant, this._now());
    this._queue = new FrameQueue(Math.ceil((opts.maxQueuedMs ?? DEFAULTS.maxQueuedMs) / this._frameMs));
    this._livenessMs = opts.livenessTimeoutMs ?? DEFAULTS.livenessTimeoutMs;
    const maxBufferedMs = opts.maxBufferedMs ?? DEFAULTS.maxBufferedMs;
    const giveUpGraceMs = Math.min(DEFAULTS.uplinkGraceMs, maxBufferedMs / 2);
    /** The give-up of _checkUplink: above levelMs for graceMs, so never more than maxBufferedMs waiting. */
    this._giveUp = { levelMs: maxBufferedMs - giveUpGraceMs, graceMs: giveUpGraceMs };
    /** When (this._now) the socket last showed it was alive: a message came, or its send buffer drained. */
    this._aliveAt = 0;
    this._lastBuffered = 0;
    this._warnedSlow = false;
    /** When (this._now) the audio waiting in the send buffer went above each level of _checkUplink; null: below. */
    this._uplink = { slowSince: /** @type {number | null} */ (null), stuckSince: /** @type {number | null} */ (null) };
    /** How far into the audio sent a provider that listens in real time has got: ms of audio, as of `at` (this._now). */
    this._heard = { ms: 0, at: 0 };

    /** @type {ClientState} */
    this.state = STATE.IDLE;
    this.framesSent = 0;
    this.bytesSent = 0;
    this.samplesSent = 0;

    /** @type {WebSocket | null} */
    this._ws = null;
    this._opened = false;
    this._gotMessage = false;
    /** @type {null | 'finished' | 'cancelled' | 'failed'} how the session ended, once it has */
    this._ended = null;
    this._closedEmitted = false;
    /** @type {Promise<void> | null} */
    this._stopping = null;
    this._ready = /** @type {ReturnType<typeof deferred<void>>} */ (deferred());
    this._finished = /** @type {ReturnType<typeof deferred<void>>} */ (deferred());
    this._closed = /** @type {ReturnType<typeof deferred<void>>} */ (deferred());
    /** @type {Record<'ready'|'finish'|'close', unknown>} */
    this._timerIds = { ready: null, finish: null, close: null };
  }

  /** Milliseconds of audio sent so far (the only clock a provider without timestamps shares with us). */
  audioMs() {
    return this._samplesToMs(this.samplesSent);
  }

  /**
   * Milliseconds of the audio sent that a provider listening in real time can have heard by now. Audio goes out in
   * bursts (what was queued until the provider was ready, a replay after a reconnect) that such a provider hears at
   * 1x from when they went out: after a burst of B ms it stays B ms behind audioMs() until the audio pauses long
   * enough for it to catch up.
   */
  heardMs() {
    return Math.round(this._hear(this._now()));
  }

  /**
   * The listener moved on to `now` through the audio sent before it (ms of audio, unrounded). Called before each
   * frame goes out too, so a frame is heard from when it was sent and not before.
   * @param {number} now  ms, this._now()
   */
  _hear(now) {
    const sentMs = (this.samplesSent * 1000) / this.sampleRate;
    this._heard.ms = Math.min(sentMs, this._heard.ms + Math.max(0, now - this._heard.at));
    this._heard.at = now;
    return this._heard.ms;
  }

  /** @returns {Promise<void>} resolves when audio flows to the provider */
  start() {
    if (this.state !== STATE.IDLE) return this._ready.promise;
    this._setState(STATE.CONNECTING);
    this._arm('ready', this._readyTimeoutMs, () => this._onReadyTimeout());
    let ws;
    try {
      ws = new this._WebSocketImpl(this._protocol.url);
    } catch (err) {
      const detail = err instanceof Error ? `: ${this.redact(err.message)}` : '';
      this.fail(`Could not open a connection to ${this.label} at ${displayUrl(this._protocol.url)}${detail}`, 'transport');
      return this._ready.promise;
    }
    this._ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('open', () => this._onOpen());
    ws.addEventListener('message', (ev) => this._onMessage(ev));
    ws.addEventListener('close', (ev) => this._onClose(ev.code, ev.reason));
    // A browser's `error` event carries no detail and is always followed by `close`, which is handled there.
    ws.addEventListener('error', () => {});
    return this._ready.promise;
  }

  /**
   * @param {Int16Array | ArrayBuffer} frame
   * @returns {boolean} whether the frame was sent or queued
   */
  sendAudio(frame) {
    const pcm = toInt16(frame);
    if (this._ended) return false;
    switch (this.state) {
      case STATE.IDLE:
      case STATE.CONNECTING:
      case STATE.CONFIGURING:
        // A copy: the caller owns its buffer and may reuse it before the queue drains.
        if (this._queue.push(pcm.slice())) return true;
        if (this._queue.dropped === 1) {
          const waitingMs = Math.round(this._queue.limit * this._frameMs);
          this.warn(
            `${this.label} is not ready yet and ${waitingMs} ms of audio are waiting; ` +
              'audio from now until it is ready is not sent.',
          );
        }
        return false;
      case STATE.STREAMING:
        this._transmit(pcm);
        return true;
      default:
        return false;
    }
  }

  /**
   * Graceful end: the protocol's end-of-stream message, then wait for the provider to confirm (or the
   * timeout), delivering every trailing result, then close. Never rejects: failures arrive as events.
   * @returns {Promise<void>}
   */
  stop() {
    this._stopping ??= this._stop();
    return this._stopping;
  }

  async _stop() {
    if (this.state === STATE.IDLE) {
      this._endIdle();
      return;
    }
    if (this.state === STATE.CONNECTING || this.state === STATE.CONFIGURING) {
      // Queued audio is worth finishing: it goes out once the provider is ready.
      await this._ready.promise.catch(() => {});
    }
    if (this.state === STATE.STREAMING && !this._ended) {
      this._setState(STATE.FINISHING);
      this._arm('finish', this._finishTimeoutMs, () => this._onFinishTimeout());
      this._protocol.onStop();
    }
    await this._finished.promise;
    await this._closed.promise;
  }

  /** Abandon the session now: pending results are not waited for. */
  cancel() {
    if (this.state === STATE.IDLE) {
      this._endIdle();
      return;
    }
    if (this._ended) return;
    this._ended = 'cancelled';
    this._clearTimers();
    this._queue.drain();
    if (this._ws && this._ws.readyState === OPEN) this._protocol.onCancel();
    this._protocol.onEnd?.();
    this._ready.reject(new Error(`The ${this.label} session was cancelled.`));
    this._finished.resolve();
    this._closeSocket(1000, 'cancelled');
  }

  /** Ended before start(): a later start() rejects instead of waiting forever. */
  _endIdle() {
    this._ended = 'cancelled';
    this._setState(STATE.CLOSED);
    this._ready.reject(new Error(`The ${this.label} session was cancelled.`));
    this._finished.resolve();
    this._closed.resolve();
  }

  // ---- for the protocol modules ----

  /** @param {string} text */
  sendText(text) {
    if (this._ws && this._ws.readyState === OPEN) this._ws.send(text);
  }

  /** The provider accepts audio now: flush the queue in order. */
  markReady() {
    if (this._ended || this.state !== STATE.CONFIGURING) return;
    this._disarm('ready');
    this._aliveAt = this._now();
    this._setState(STATE.STREAMING);
    for (const frame of this._queue.drain()) this._transmit(frame);
    if (this._queue.dropped > 0) {
      const droppedMs = this._samplesToMs(this._queue.droppedSamples);
      const dropped = this._queue.dropped;
      this.warn(`${dropped} audio frames (${droppedMs} ms) were not sent while waiting for ${this.label}.`);
    }
    this._ready.resolve();
  }

  /** The provider confirmed the end of the session: deliver what is pending, then close. */
  finish() {
    if (this._ended) return;
    if (!this._ready.settled) {
      this.fail(`${this.label} ended the session before it was ready.`);
      return;
    }
    this._ended = 'finished';
    this._clearTimers();
    this._protocol.onEnd?.();
    this._finished.resolve();
    this._closeSocket(1000, 'done');
  }

  /**
   * A fatal error: report it, fail start() if it is pending, and close. Any failure once the grant has run out
   * is reported as 'expired': that is what a fresh grant cures, whatever the provider's words for it.
   * @param {string} message  already free of secrets
   * @param {ErrorCause} [cause]
   */
  fail(message, cause = 'protocol') {
    if (this._ended) return;
    this._ended = 'failed';
    this._clearTimers();
    this._queue.drain();
    this._protocol.onEnd?.();
    this.emit({ type: EVENT.ERROR, message, fatal: true, cause: this._expired() ? 'expired' : cause });
    this._setState(STATE.ERROR);
    this._ready.reject(new Error(message));
    this._finished.resolve();
    if (this._ws) {
      this._closeSocket(1000, 'client error');
    } else {
      this._closed.resolve();
    }
  }

  /** The grant has run out by now, or is within the skew of it (see DEFAULTS.expirySkewS). */
  _expired() {
    return this._expiresAt !== null && this._now() >= this._expiresAt - DEFAULTS.expirySkewS * 1000;
  }

  /** @param {string} message */
  warn(message) {
    this.emit({ type: EVENT.WARNING, message });
  }

  /** @param {ProviderEvent} event */
  emit(event) {
    try {
      this._onEvent(event);
    } catch (err) {
      // A broken listener must not break the protocol; the event itself holds no secret.
      console.error('provider event listener failed', err);
    }
  }

  /** @param {string} text */
  redact(text) {
    return redact(text, this._secret);
  }

  // ---- internals ----

  /** @param {ClientState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    if (state !== STATE.IDLE) this.emit({ type: EVENT.STATE, state });
  }

  /**
   * @param {'ready'|'finish'|'close'} name
   * @param {number} ms
   * @param {() => void} fn
   */
  _arm(name, ms, fn) {
    this._disarm(name);
    this._timerIds[name] = this.timers.setTimeout(() => {
      this._timerIds[name] = null;
      fn();
    }, ms);
  }

  /** @param {'ready'|'finish'|'close'} name */
  _disarm(name) {
    if (this._timerIds[name] !== null) {
      this.timers.clearTimeout(this._timerIds[name]);
      this._timerIds[name] = null;
    }
  }

  _clearTimers() {
    this._disarm('ready');
    this._disarm('finish');
  }

  /** @param {number} samples */
  _samplesToMs(samples) {
    return Math.round((samples * 1000) / this.sampleRate);
  }

  /** @param {Int16Array} pcm */
  _transmit(pcm) {
    // Given up on while the queue was flushing: a closing socket takes nothing more.
    if (this._ended) return;
    const ws = /** @type {WebSocket} */ (this._ws);
    const now = this._now();
    if (!this._alive(ws, now)) return;
    this._hear(now);
    const payload = this._protocol.encodeFrame(pcm);
    ws.send(payload);
    this._lastBuffered = bufferedOf(ws);
    this.framesSent += 1;
    this.bytesSent += payload.byteLength;
    this.samplesSent += pcm.length;
    this._checkUplink();
  }

  /**
   * Milliseconds of audio sent but still in the socket's send buffer (not yet handed to the network), from the
   * bytes each ms of audio has cost on the wire so far (a protocol's framing included).
   */
  bufferedMs() {
    const ws = this._ws;
    if (!ws) return 0;
    const sentMs = (this.samplesSent * 1000) / this.sampleRate;
    const bytesPerMs = sentMs > 0 ? this.bytesSent / sentMs : (2 * this.sampleRate) / 1000;
    return bufferedOf(ws) / bytesPerMs;
  }

  /**
   * An uplink slower than the audio: said once past DEFAULTS.slowUplinkWarnMs held for DEFAULTS.uplinkGraceMs, then
   * given up on before more than maxBufferedMs wait (see this._giveUp and DEFAULTS).
   */
  _checkUplink() {
    const waitingMs = this.bufferedMs();
    const seconds = Math.round(waitingMs / 100) / 10;
    const now = this._now();
    /** @param {number | null} since @param {number} levelMs @returns {number | null} */
    const over = (since, levelMs) => (waitingMs > levelMs ? since ?? now : null);
    this._uplink.slowSince = over(this._uplink.slowSince, DEFAULTS.slowUplinkWarnMs);
    this._uplink.stuckSince = over(this._uplink.stuckSince, this._giveUp.levelMs);
    /** @param {number | null} since @param {number} graceMs */
    const held = (since, graceMs) => since !== null && now - since >= graceMs;
    if (held(this._uplink.stuckSince, this._giveUp.graceMs)) {
      this.fail(`The connection to ${this.label} is too slow for the audio: ${seconds} s of audio were waiting to be `
        + 'sent.', 'transport');
    } else if (held(this._uplink.slowSince, DEFAULTS.uplinkGraceMs) && !this._warnedSlow) {
      this._warnedSlow = true;
      this.emit({ type: EVENT.WARNING, code: 'slow_uplink', message: `The connection to ${this.label} is slower than `
        + `the audio: ${seconds} s of audio are waiting to be sent, so the words come late.` });
    }
  }

  /**
   * The liveness check of _alive() while no audio goes out: a source held back until the send buffer drains (a
   * file) sends nothing, so on a socket whose buffer never drains the check that runs as audio goes out would never
   * run again, and the session would wait for ever. Such a source asks bufferedMs() as it waits: the check runs there.
   */
  checkAlive() {
    if (this._ended || this.state !== STATE.STREAMING || !this._ws) return;
    this._alive(this._ws, this._now());
  }

  /**
   * Liveness, checked as audio goes out and as a held source waits for the send buffer (no timer of its own): a
   * socket whose peer vanished without a close (a NAT or Wi-Fi change) keeps accepting send() while its buffer only
   * grows. Nothing received and nothing drained for livenessTimeoutMs means dead: it fails as a transport error,
   * which the session answers with a reconnect. A quiet provider is not dead as long as the buffer drains.
   * @param {WebSocket} ws
   * @param {number} now  ms, this._now()
   * @returns {boolean} false when the socket was given up
   */
  _alive(ws, now) {
    const buffered = bufferedOf(ws);
    if (buffered === 0 || buffered < this._lastBuffered) this._aliveAt = now;
    // Drained since the last look, not since the last send: a buffer that drained once and then stopped is stuck.
    this._lastBuffered = buffered;
    if (!(this._livenessMs > 0) || now - this._aliveAt < this._livenessMs) return true;
    const seconds = Math.round((now - this._aliveAt) / 100) / 10;
    this.fail(`The connection to ${this.label} stopped responding (nothing received for ${seconds} s, `
      + `${Math.round(buffered / 1024)} KiB of audio stuck in the send buffer).`, 'transport');
    return false;
  }

  _onOpen() {
    if (this._ended) return;
    this._opened = true;
    this._setState(STATE.CONFIGURING);
    this._protocol.onOpen();
  }

  /** @param {MessageEvent} ev */
  _onMessage(ev) {
    this._gotMessage = true;
    this._aliveAt = this._now();
    // Both providers speak JSON text only; a binary frame from them carries nothing we use.
    if (this._ended || typeof ev.data !== 'string') return;
    // Still answering after the end of the stream (finals of held audio replayed after a drop, a provider's
    // post-processing): the wait for its end counts from its last word, not from the end of the stream.
    if (this.state === STATE.FINISHING) this._arm('finish', this._finishTimeoutMs, () => this._onFinishTimeout());
    this._protocol.onText(ev.data);
  }

  _onReadyTimeout() {
    const seconds = Math.round(this._readyTimeoutMs / 100) / 10;
    if (!this._opened) {
      const where = displayUrl(this._protocol.url);
      this.fail(`Could not connect to ${this.label} at ${where} within ${seconds} s.`, 'transport');
    } else {
      this.fail(`${this.label} did not get ready within ${seconds} s (no ${this._protocol.readyEvent}).`);
    }
  }

  /**
   * Nothing for finishTimeoutMs since the end of the stream or the provider's last message: a half-open socket or
   * a provider that went quiet, and the last finals are not coming. A transport failure, not an end: the session
   * replays to a new connection what no final covered (an end would have left that audio held, never sent again
   * and never counted as lost).
   */
  _onFinishTimeout() {
    if (this._ended) return;
    const seconds = Math.round(this._finishTimeoutMs / 100) / 10;
    this.fail(`${this.label} did not confirm the end: nothing came for ${seconds} s; the last words did not come.`, 'transport');
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  _closeSocket(code, reason) {
    const ws = this._ws;
    if (!ws || this._closedEmitted) return;
    if (ws.readyState === CONNECTING || ws.readyState === OPEN) ws.close(code, reason);
    this._arm('close', DEFAULTS.closeWaitMs, () => this._onClose(1006, 'no close handshake'));
  }

  /**
   * @param {number | undefined} rawCode
   * @param {string | undefined} rawReason
   */
  _onClose(rawCode, rawReason) {
    if (this._closedEmitted) return;
    this._closedEmitted = true;
    this._clearTimers();
    this._disarm('close');
    const code = typeof rawCode === 'number' ? rawCode : 1005;
    const reason = this.redact(rawReason ?? '');
    let clean = true;
    if (!this._ended && this.state === STATE.FINISHING && code === 1000) {
      // The provider closed normally while we waited for its confirmation: its decision, and it loses nothing.
      this._ended = 'finished';
      this._protocol.onEnd?.();
      this._finished.resolve();
    } else if (!this._ended) {
      // Gone without the protocol saying so, finishing or not: the last results may never come, so the caller
      // has to be told (it replays what no final covered to a new session).
      clean = false;
      this.fail(this._unexpectedCloseMessage(code, reason), 'transport');
    }
    this.emit({ type: EVENT.CLOSED, code, reason, clean });
    if (this.state !== STATE.ERROR) this._setState(STATE.CLOSED);
    this._closed.resolve();
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  _unexpectedCloseMessage(code, reason) {
    const summary = closeSummary(code, reason);
    if (!this._gotMessage && (!this._opened || code === 1006)) {
      // A refused upgrade (HTTP 401) reaches a browser only as close code 1006, without a message.
      return `${this.label} refused the connection (token expired or invalid?) [${summary}].`;
    }
    if (!this._ready.settled) {
      return `${this.label} closed the connection before the session was ready (${summary}).`;
    }
    return `The connection to ${this.label} was lost (${summary}).`;
  }
}

/**
 * What the page holds: the public face of a provider client over its StreamSession. Protocol modules extend it
 * and hand their protocol hooks to the StreamSession they pass to super().
 */
export class SessionClient {
  /** @param {StreamSession} session */
  constructor(session) {
    this._session = session;
  }

  /** @returns {ClientState} */
  get state() {
    return this._session.state;
  }

  get framesSent() {
    return this._session.framesSent;
  }

  get bytesSent() {
    return this._session.bytesSent;
  }

  /**
   * When the grant runs out, ms on the client's clock (`now`, default Date.now): the grant's `expires_in` counted
   * from when the client was made, else its `expires_at`; null when the grant says neither.
   * @returns {number | null}
   */
  get expiresAt() {
    return this._session._expiresAt;
  }

  /**
   * Whether the grant has run out by now on the client's clock (less the skew a failure near the expiry is given):
   * a client not yet started with such a grant would only be refused.
   */
  expired() {
    return this._session._expired();
  }

  /** 'connecting' | 'open' | 'closing' | 'closed' | 'none': the socket's own state, for diagnostics */
  get socketState() {
    const ws = this._session._ws;
    return ws ? ['connecting', 'open', 'closing', 'closed'][ws.readyState] ?? String(ws.readyState) : 'none';
  }

  /** Milliseconds of audio sent in this session. */
  audioMs() {
    return this._session.audioMs();
  }

  /** @returns {Promise<void>} resolves when the provider accepts audio */
  start() {
    return this._session.start();
  }

  /**
   * Milliseconds of audio sent but still waiting in the socket's send buffer (0 before it opens). Asking runs the
   * liveness check too (see livenessTimeoutMs): a source that holds its audio back on this number sends nothing, and
   * a socket whose buffer never drains is then given up here (a transport error) rather than waited on for ever.
   */
  bufferedMs() {
    this._session.checkAlive();
    return this._session.bufferedMs();
  }

  /** @param {Int16Array | ArrayBuffer} frame */
  sendAudio(frame) {
    return this._session.sendAudio(frame);
  }

  /** @returns {Promise<void>} the end-of-stream message, every remaining result, the provider's confirmation */
  stop() {
    return this._session.stop();
  }

  cancel() {
    this._session.cancel();
  }
}
