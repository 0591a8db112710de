// The shared part of the browser's provider clients: the event vocabulary every provider is normalised to, the
// small socket helpers both protocols need, the session lifecycle they share (StreamSession), and SessionClient,
// the base of TruebarClient and WiroClient. Imports nothing, so the protocol modules can extend it.

/** @typedef {'idle'|'connecting'|'configuring'|'streaming'|'finishing'|'closed'|'error'} ClientState */

/** @typedef {{text: string, startMs: number, endMs: number}} Word */

/**
 * Why a session failed, decided where it is known rather than read back from the message:
 * 'transport' the connection went away without the protocol saying so (worth a reconnect);
 * 'expired'   the grant's token ran out (a fresh grant continues);
 * 'protocol'  the provider reported an error or broke the protocol (another attempt would fail the same way).
 * @typedef {'transport'|'protocol'|'expired'} ErrorCause
 */

/**
 * @typedef {{type: 'state', state: Exclude<ClientState, 'idle'>}
 *   | {type: 'partial', text: string, startMs: number|null, endMs: number|null}
 *   | {type: 'final', text: string, startMs: number|null, endMs: number|null, words: Word[]}
 *   | {type: 'warning', message: string}
 *   | {type: 'error', message: string, fatal: boolean, cause: ErrorCause}
 *   | {type: 'cost', turnCost: number|null, cumulativeCost: number|null}
 *   | {type: 'closed', code: number, reason: string, clean: boolean}} ProviderEvent
 */

/**
 * What a protocol can and cannot do, for the session and the page to ask instead of testing provider names.
 * @typedef {object} ProtocolCapabilities
 * @property {boolean} timedWords      finals carry the provider's own times (else they are the client's estimates)
 * @property {'fast'|'realtime'} pacing how fast a file may be sent: as fast as accepted, or at 1x
 * @property {boolean} replayRepeats   audio replayed after a reconnect may come back as words already final
 */

/**
 * @typedef {ProtocolCapabilities & {tagsListing: boolean}} Capabilities  a provider's: its protocol's, plus
 *   whether it lists models (ASR tags) the page may offer
 */

/**
 * The session grant from POST /api/sessions. `token` is a credential: it never appears in an event or a
 * message.
 * @typedef {object} Grant
 * @property {string} provider        'truebar' | 'wiro' | 'local' (for messages)
 * @property {'truebar'|'wiro'} protocol
 * @property {string} ws_url
 * @property {string} token
 * @property {number} sample_rate     Hz of the PCM the provider expects
 * @property {number} frame_samples   samples per audio frame the page sends
 * @property {string} [tag]           Truebar ASR stage tag
 * @property {string} [task_id]       Wiro task id
 * @property {string} [session_id]    the app server's handle, for POST /api/sessions/{provider}/{session_id}/end
 * @property {boolean} [offline]      the embedded engine: no audio leaves the machine
 * @property {number} [expires_at]      seconds since the epoch (the server's clock)
 */

/**
 * @typedef {object} Timers  injectable so tests can drive time; defaults to the global timers
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 * @property {(id: unknown) => void} clearTimeout
 */

/**
 * @typedef {object} ClientOptions
 * @property {(event: ProviderEvent) => void} [onEvent]
 * @property {{new (url: string): WebSocket}} [WebSocketImpl]  defaults to globalThis.WebSocket
 * @property {number} [readyTimeoutMs]   connect + configure budget (default 15000)
 * @property {number} [finishTimeoutMs]  stop()'s wait for the provider to confirm the end (default 10000)
 * @property {number} [maxQueuedMs]      audio buffered before the session is ready (default 30000)
 * @property {Timers} [timers]
 * @property {() => number} [now]       ms since the epoch, for the grant's expiry (default Date.now)
 * @property {boolean} [interims]        Truebar: ask for interim results (default true)
 * @property {number} [utteranceGapMs]   Wiro: silence in increments that ends an utterance (default 1500)
 * @property {number} [endGraceMs]       Wiro: wait after task_end for task_postprocess_end (default 2000)
 */

/** The `type` of every ProviderEvent. */
export const EVENT = Object.freeze({
  STATE: 'state',
  PARTIAL: 'partial',
  FINAL: 'final',
  WARNING: 'warning',
  ERROR: 'error',
  COST: 'cost',
  CLOSED: 'closed',
});

/** Values of client.state; every one except IDLE is also announced as a `state` event. */
export const STATE = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  CONFIGURING: 'configuring',
  STREAMING: 'streaming',
  FINISHING: 'finishing',
  CLOSED: 'closed',
  ERROR: 'error',
});

export const DEFAULTS = Object.freeze({
  readyTimeoutMs: 15000,
  finishTimeoutMs: 10000,
  maxQueuedMs: 30000,
  // After we close, a browser fires `close` once the closing handshake ends; a dead peer must not hang
  // stop().
  closeWaitMs: 3000,
  // A failure this close to the grant's expiry is taken for the expiry (clocks differ a little).
  expirySkewS: 5,
});

// WebSocket.readyState values, spelled out because an injected implementation may lack the static constants.
const CONNECTING = 0;
const OPEN = 1;

/** @type {Timers} */
const GLOBAL_TIMERS = {
  // Wrapped: calling window.setTimeout with another `this` throws "Illegal invocation" in browsers.
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(/** @type {any} */ (id)),
};

/** @type {Record<string, string>} */
const PROVIDER_LABELS = { truebar: 'Truebar', wiro: 'Wiro', local: 'local' };

/**
 * Throws a TypeError naming the first missing or malformed grant field (never echoing values: one is the
 * token).
 * @param {Grant} grant
 */
export function checkGrant(grant) {
  if (grant === null || typeof grant !== 'object') throw new TypeError('The session grant is not an object.');
  /** @type {[keyof Grant, (v: unknown) => boolean][]} */
  const checks = [
    ['ws_url', (v) => typeof v === 'string' && /^wss?:\/\//i.test(v)],
    ['token', (v) => typeof v === 'string' && v.length > 0],
    ['sample_rate', (v) => typeof v === 'number' && Number.isFinite(v) && v > 0],
    ['frame_samples', (v) => typeof v === 'number' && Number.isInteger(v) && v > 0],
  ];
  for (const [name, ok] of checks) {
    if (!ok(grant[name])) throw new TypeError(`The session grant has no valid "${name}".`);
  }
}

/**
 * A person-readable provider name for messages.
 * @param {Grant} grant
 */
export function providerLabel(grant) {
  return PROVIDER_LABELS[grant.provider] ?? PROVIDER_LABELS[grant.protocol] ?? String(grant.provider);
}

/**
 * `url` with one query parameter set, keeping the ones it already has.
 * @param {string} url
 * @param {string} name
 * @param {string} value
 */
export function withQueryParam(url, name, value) {
  const out = new URL(url);
  out.searchParams.set(name, value);
  return out.toString();
}

/**
 * The URL without its query and fragment, safe to show: the query may carry the access token.
 * @param {string} url
 */
export function displayUrl(url) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Replace every occurrence of a secret in text that came from elsewhere (a server message, an exception).
 * @param {string} text
 * @param {string | undefined} secret
 */
export function redact(text, secret) {
  return secret ? text.split(secret).join('[token]') : text;
}

/**
 * "code 1006" or "code 1008: reason".
 * @param {number} code
 * @param {string} reason
 */
export function closeSummary(code, reason) {
  return reason ? `code ${code}: ${reason}` : `code ${code}`;
}

/** True on every platform a browser runs on today; checked rather than assumed. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The bytes of signed 16-bit PCM in little-endian order, as both providers want them. An Int16Array stores
 * samples in the platform's order, which is little-endian on every browser platform, so this is normally a
 * zero-copy view; a big-endian platform gets a byte-swapped copy.
 * @param {Int16Array} pcm
 * @returns {Uint8Array}
 */
export function pcm16leBytes(pcm) {
  if (LITTLE_ENDIAN) return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Uint8Array(pcm.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i++) view.setInt16(2 * i, pcm[i], true);
  return out;
}

/**
 * Accept an Int16Array, or the ArrayBuffer a worklet transferred, as one audio frame.
 * @param {Int16Array | ArrayBuffer} frame
 * @returns {Int16Array}
 */
export function toInt16(frame) {
  if (frame instanceof Int16Array) return frame;
  if (frame instanceof ArrayBuffer) {
    if (frame.byteLength % 2 !== 0) throw new TypeError('An audio frame must hold whole 16-bit samples.');
    return new Int16Array(frame);
  }
  throw new TypeError('An audio frame must be an Int16Array (or its ArrayBuffer).');
}

/**
 * Frames waiting for the session to become ready. Bounded; when full it keeps the oldest frames (the start of
 * the speech) and counts what it refused, so the caller can say so instead of dropping audio silently.
 */
export class FrameQueue {
  /** @param {number} limit frames */
  constructor(limit) {
    this.limit = Math.max(1, Math.floor(limit));
    /** @type {Int16Array[]} */
    this.frames = [];
    this.dropped = 0;
    this.droppedSamples = 0;
  }

  get length() {
    return this.frames.length;
  }

  /**
   * @param {Int16Array} frame  kept as is: pass a copy if the caller may reuse its buffer
   * @returns {boolean} false when the queue was full and the frame was refused
   */
  push(frame) {
    if (this.frames.length >= this.limit) {
      this.dropped += 1;
      this.droppedSamples += frame.length;
      return false;
    }
    this.frames.push(frame);
    return true;
  }

  /** @returns {Int16Array[]} the queued frames, oldest first, leaving the queue empty */
  drain() {
    const out = this.frames;
    this.frames = [];
    return out;
  }
}

/**
 * @template T
 * @returns {{promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void, settled: boolean}}
 */
function deferred() {
  /** @type {any} */
  const d = { settled: false };
  d.promise = new Promise((resolve, reject) => {
    d.resolve = (/** @type {T} */ v) => {
      d.settled = true;
      resolve(v);
    };
    d.reject = (/** @type {Error} */ e) => {
      d.settled = true;
      reject(e);
    };
  });
  // Marks the promise handled: rejections still reach whoever awaits it, but an unawaited one is not an
  // error.
  d.promise.catch(() => {});
  return d;
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
 * stop timed out, cancel(), or a fatal error the client reported and closed on), and false when the transport
 * went away without the protocol saying so: that is the case worth reconnecting for.
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
    this._expiresAt = typeof grant.expires_at === 'number' && Number.isFinite(grant.expires_at) ? grant.expires_at : null;
    this._now = opts.now ?? Date.now;
    this._queue = new FrameQueue(Math.ceil((opts.maxQueuedMs ?? DEFAULTS.maxQueuedMs) / this._frameMs));

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
    const expired = this._expiresAt !== null && this._now() / 1000 >= this._expiresAt - DEFAULTS.expirySkewS;
    this.emit({ type: EVENT.ERROR, message, fatal: true, cause: expired ? 'expired' : cause });
    this._setState(STATE.ERROR);
    this._ready.reject(new Error(message));
    this._finished.resolve();
    if (this._ws) {
      this._closeSocket(1000, 'client error');
    } else {
      this._closed.resolve();
    }
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
    const payload = this._protocol.encodeFrame(pcm);
    /** @type {WebSocket} */ (this._ws).send(payload);
    this.framesSent += 1;
    this.bytesSent += payload.byteLength;
    this.samplesSent += pcm.length;
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
    // Both providers speak JSON text only; a binary frame from them carries nothing we use.
    if (this._ended || typeof ev.data !== 'string') return;
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

  _onFinishTimeout() {
    if (this._ended) return;
    const seconds = Math.round(this._finishTimeoutMs / 100) / 10;
    this.warn(`${this.label} did not confirm the end within ${seconds} s; the last words may be missing.`);
    this._ended = 'finished';
    this._protocol.onEnd?.();
    this._finished.resolve();
    this._closeSocket(1000, 'finish timeout');
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
