// The browser SDK's public vocabulary: the options a Session takes, the events it emits, what an audio source is
// given and must provide, and the one error class a misuse of the object throws (SessionError). Types (JSDoc) but
// for that class, so session.js reads as the wiring it is; session.js re-exports each name, and the package's
// declarations (types/sdk/) carry them to TypeScript callers.

/** @typedef {import('./providers/client.js').Word} Word */
/** @typedef {import('./providers/protocol.js').ErrorCause} ErrorCause */
/** @typedef {import('./grants.js').GetGrant} GetGrant */
/** @typedef {import('./grants.js').EndGrant} EndGrant */
/** @typedef {import('./session-state.js').SessionState} SessionState */
/** @typedef {import('./session-state.js').StateDetail} StateDetail */
/** @typedef {import('./session-state.js').StateListener} StateListener */

/** @typedef {{rms: number, peak: number, silent: boolean}} Level */
/**
 * Why a source stopped: the device went away ('ended'), the audio context is 'suspended', 'closed' or (iOS)
 * 'interrupted', or the audio worklet threw ('failed': not reopened, as a new one would fail the same way).
 * @typedef {'ended'|'suspended'|'closed'|'interrupted'|'failed'} InterruptionKind
 */
/**
 * Why a session-level error happened, as a value to branch on (the message is for people):
 * the provider client's causes ('transport', 'protocol', 'expired'), 'reconnect_failed' (every attempt to replace a
 * lost connection failed, or, while stopping, the connection was lost again after each of maxReconnects + 1 ends of
 * the stream: the last words were not transcribed), 'stop_timeout' (stop() gave up waiting for the last finals).
 * @typedef {ErrorCause | 'reconnect_failed' | 'stop_timeout'} ErrorCode
 */
/**
 * What happened to the audio source: 'resumed' (a suspended context runs again), 'device_switched' (a lost
 * microphone was replaced by the default one), 'source_interrupted' (a source that cannot be reopened, a file,
 * reported a problem, or a source's stop() failed as the session stopped: its last audio may be missing; the
 * provider still finishes the rest), 'source_lost' (the microphone is gone and could not be reopened, or its audio processing
 * failed: the session ends).
 * @typedef {'resumed'|'device_switched'|'source_interrupted'|'source_lost'} SourceCode
 */
/** @typedef {import('./providers/protocol.js').Timing} Timing */
/** @typedef {{type: 'partial', text: string, startMs: number|null, endMs: number|null, timing: Timing}
 *   | {type: 'final', text: string, startMs: number|null, endMs: number|null, words: Word[], timing: Timing}
 *   | {type: 'warning', message: string, code: 'provider_warning' | 'slow_uplink'}
 *   | {type: 'error', message: string, fatal: boolean, cause: ErrorCause, code: ErrorCode}
 *   | {type: 'cost', turnCost: number|null, cumulativeCost: number|null}
 *   | {type: 'closed', code: number, reason: string, clean: boolean}
 *   | {type: 'reconnecting', attempt: number, delayMs: number, bufferedMs: number, reason: string}
 *   | {type: 'reconnected', replayedMs: number, droppedMs: number, attempt: number}
 *   | {type: 'dropped', droppedMs: number}
 *   | {type: 'source', message: string, recovered: boolean, code: SourceCode}} SessionEvent */
/** @typedef {{type: 'state', from: SessionState, to: SessionState, detail: StateDetail}} StateEvent */
/**
 * What on(type, fn) hands `fn`: each SessionEvent by its type (with `atMs`, the audio clock when it was emitted),
 * 'event' for every SessionEvent, 'state' for each state change, 'level' for the input level (about 20 a second).
 * @typedef {{[K in SessionEvent['type']]: Extract<SessionEvent, {type: K}> & {atMs: number}}
 *   & {event: SessionEvent & {atMs: number}, state: StateEvent, level: Level}} SessionEventMap
 */
/**
 * What an audio source is given.
 * @typedef {object} SourceOptions
 * @property {number} outRate
 * @property {number} frameSamples
 * @property {(pcm: Int16Array) => void} onFrame
 * @property {(l: Level) => void} [onLevel]
 * @property {(reason: string, kind?: InterruptionKind) => void} [onInterrupted]
 * @property {() => boolean} canSend  false: hold the next frame back (a source that can wait, like a file, should)
 * @property {'fast'|'realtime'} pacing  how fast a source that can choose (a file) should deliver
 */
/**
 * @typedef {{stop(): Promise<{frames: number, inSamples: number}>, release(): Promise<void>, contextRate?: number,
 *   deviceLabel?: string, deviceSettings?: MediaTrackSettings, stream?: MediaStream,
 *   context?: {currentTime: number, state?: string, resume?: () => Promise<void>}}} CaptureLike
 */
/**
 * @typedef {object} SessionOptions
 * @property {string} provider  the engine to ask the grant source for ('local', 'truebar', 'wiro' on this app)
 * @property {string} [tag]  the model, where the provider lets the caller choose
 * @property {GetGrant} [getGrant]  where grants come from (default: this app's POST /api/sessions, same origin)
 * @property {EndGrant} [endGrant]  told when a grant is finished with (default: this app's …/end; with a custom
 *   getGrant and no endGrant, nothing is called)
 * @property {AbortSignal} [signal]  aborting it cancels the session (start() then rejects with the signal's reason)
 * @property {string} [workletUrl]  where the "pcm-processor" worklet module is served (audio/pcm-processor.js,
 *   which imports ./pcm.js beside it); default: next to capture.js by import.meta.url, which a bundler that
 *   moves files breaks
 * @property {string} [deviceId]
 * @property {boolean} [echoCancellation]
 * @property {boolean} [noiseSuppression]
 * @property {boolean} [autoGainControl]
 * @property {(o: SourceOptions) => Promise<CaptureLike>} [source]  a source other than the microphone (a file):
 *   it is not reopened when interrupted
 * @property {(o: SourceOptions) => Promise<CaptureLike>} [createSource]  the same as `source` (its older name)
 * @property {(o: SourceOptions & {deviceId?: string}) => Promise<CaptureLike>} [microphone]  opens the microphone
 *   (default: startCapture with the options above); called again to recover from an unplugged device
 * @property {AudioContext} [audioContext]  the caller's, for the microphone (made inside a click for Safari);
 *   the caller closes it
 * @property {MediaStream} [mediaStream]  the caller's microphone stream; reopened from the default device only if
 *   it ends
 * @property {(e: SessionEvent & {atMs: number}) => void} [onEvent]  the same as on('event', fn)
 * @property {StateListener} [onStateChange]  the same as on('state', …), with (from, to, detail)
 * @property {(l: Level) => void} [onLevel]  the same as on('level', fn)
 * @property {number} [maxReplayMs]  audio no final covers yet, kept to be sent again after a drop (default 30000);
 *   a socket is given up before more than this waits in its send buffer (below about 5000, a file's 2 s sent ahead
 *   would then count as a slow uplink)
 * @property {number} [maxReconnects]
 * @property {number} [resumeTimeoutMs]  how long a suspended audio context may take to resume: at the start (and a
 *   reopen after a device switch; default 3000, capture.js's RESUME_TIMEOUT_MS) and in a recovery (default 2000)
 * @property {number} [backpressureStallMs]  a source held back this long without a final sends one more frame
 *   anyway, then waits again (default 15000): a provider that needs more audio before its next final must not wait
 *   forever, and a file must not then go out whole past the replay buffer
 * @property {() => number} [now]  ms since the epoch, for the stall above and, unless clientOptions has its own,
 *   the provider clients' (the grant's expiry, a silent socket, how much of the audio sent Wiro can have heard)
 *   (default Date.now)
 * @property {number} [grantTimeoutMs]  how long a grant request may take before it counts as failed (default 20000)
 * @property {number} [stopTimeoutMs]  the most stop() waits for the last finals, reconnects included (default
 *   30000); past it the session ends in `error` and says how much audio was not transcribed
 * @property {import('./providers/stream.js').ClientOptions} [clientOptions]
 */

/**
 * Why start() rejected with a SessionError: 'already_started' (start() a second time), 'ended' (stop() or cancel()
 * ended the session before audio flowed, before start() or during it), 'aborted' (the `signal` was aborted without a
 * reason of its own; with one, start() rejects with that reason instead).
 * @typedef {'already_started' | 'ended' | 'aborted'} SessionErrorCode
 */

/**
 * The session object was misused or ended before it started (not a failure of the session: that ends it in `error`
 * and start() rejects with the failure itself). `code` says which (SessionErrorCode).
 */
export class SessionError extends Error {
  /** @param {string} message @param {SessionErrorCode} code */
  constructor(message, code) {
    super(message);
    this.name = 'SessionError';
    this.code = code;
  }
}
