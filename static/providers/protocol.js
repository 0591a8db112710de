// The vocabulary every provider client speaks: the events it emits, its states, its options and capabilities.
// Types and constants only.

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
 * Where a transcript's times come from, decided once, here at the provider adapter, and carried by every layer
 * after it (session, page, saved transcripts, exports): 'provider' when the provider gave both times, 'estimated'
 * when they are the client's guess (Wiro's arrival times) or missing (an export then places them).
 * @typedef {'provider'|'estimated'} Timing
 */

/**
 * @typedef {{type: 'state', state: Exclude<ClientState, 'idle'>}
 *   | {type: 'partial', text: string, startMs: number|null, endMs: number|null, timing: Timing}
 *   | {type: 'final', text: string, startMs: number|null, endMs: number|null, words: Word[], timing: Timing}
 *   | {type: 'warning', message: string, code?: 'slow_uplink'}
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
 * @property {() => number} [now]       ms since the epoch, for the grant's expiry (its expires_in counted from when
 *   the client is made; only a grant without one compares its expires_at with this clock), the liveness check and
 *   (Wiro) how much of the audio sent the provider can have heard (default Date.now)
 * @property {number} [maxBufferedMs]  audio the socket's send buffer may hold before the connection is given up as
 *   too slow (default 30000; a Session passes its maxReplayMs: audio beyond it could not be replayed)
 * @property {number} [livenessTimeoutMs]  a streaming socket that receives nothing and sends nothing out of its
 *   buffer this long is taken for dead (default 10000; 0: never)
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
  // A half-open socket accepts send() for ever while nothing leaves the machine: well before the replay buffer's
  // 30 s are pushed out, it is given up and replaced.
  livenessTimeoutMs: 10000,
  // An uplink slower than the audio grows the socket's send buffer without bound, and every transcript comes later
  // than the one before. With this much audio waiting the user is told once (a 'slow_uplink' warning): a few
  // seconds is more than a network hiccup, and still early enough to act on.
  slowUplinkWarnMs: 5000,
  // The most audio the socket is let hold before it is given up (a transport failure, so the session reconnects and
  // replays what no final covered): a Session passes its replay buffer's bound (maxReplayMs, 30000 by default),
  // since audio still in the socket beyond it could no longer be sent again, and waiting longer only adds delay and
  // loss. The connection is given up once more than maxBufferedMs less the grace below has waited for that grace:
  // the buffer grows no faster than the audio, so it never holds more than maxBufferedMs.
  maxBufferedMs: 30000,
  // The slow warning, and the give-up, count only once held this long (the give-up's grace at most half of
  // maxBufferedMs): a burst (the audio queued until the provider was ready, a replay after a reconnect) fills the
  // buffer at once and a healthy uplink drains it within seconds.
  uplinkGraceMs: 10000,
  // A failure this close to the grant's expiry is taken for the expiry: the grant spent a moment in transit before
  // its expires_in was counted here, and a grant with expires_at alone is read on a clock a little off the server's.
  expirySkewS: 5,
});
