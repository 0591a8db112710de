// One transcription session: grants from a grant source, an audio source (the microphone or a file), and a
// provider client, tied together so that no speech is silently lost:
// - audio captured while the socket is still connecting is queued by the client;
// - a socket that drops mid-session (or while finishing) is replaced (fresh grant, exponential backoff with jitter)
//   and the audio not yet covered by a final, plus everything captured while disconnected, is replayed into the new
//   session (bounded, by default 30 s); audio that could not be replayed is reported, never hidden;
// - a file is held back while the replay buffer is full, instead of pushing unreplayable audio out of it;
// - the new session's times are shifted onto the recording's clock, so the transcript's times run on.
// Where the session is, and every decision about it, lives in session-state.js (its StateMachine and its pure
// reducer); this file is the wiring that executes the reducer's effects with the modules that own each part:
// connection.js (grants, clients, each reconnect attempt), audio-path.js (the source, the replay accounting, the
// backpressure), lifecycle.js (the start sequence and the bounded finish).
//
// The public surface is what a page on another origin can adopt: `new Session(options)`, `on`/`off`, `start`,
// `stop`, `cancel`, `state`, `audioMs`, `capabilities`, `provider`, `diagnostics()`, `endGrant()`. Everything else
// is a #private field, so the grant (and its token) cannot be read or changed from outside. An instance is
// single-use, like a WebSocket (one connection per object): start() a second time throws a SessionError with code
// 'already_started', and start() rejects with one with code 'ended' when cancel() or stop() ended the session before
// audio flowed (before start() or during it); make a new Session for the next recording.
import { AudioPath } from './audio-path.js';
import { Connection, failure } from './connection.js';
import { GLOBAL_TIMERS, GrantKeeper } from './grants.js';
import { runFinish, runStart, stopTimeoutMessage } from './lifecycle.js';
import { StateMachine, initialCore, isFinal, reduce } from './session-state.js';
import { sessionDiagnostics } from './session-diagnostics.js';
import { internals } from './session-internals.js';
import { SessionError } from './session-types.js';
import { Listeners } from './listeners.js';

export { ApiError, appGrants } from './grants.js';
export { stripOverlap } from './replay-accounting.js';
export { withTimeout } from './source-supervisor.js';
export { SessionError };

/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./providers/client.js').Capabilities} Capabilities */
/** @typedef {import('./providers/client.js').Word} Word */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./providers/protocol.js').ErrorCause} ErrorCause */
/** @typedef {import('./grants.js').GetGrant} GetGrant */
/** @typedef {import('./grants.js').EndGrant} EndGrant */
/** @typedef {import('./grants.js').GrantRequest} GrantRequest */
/** @typedef {import('./session-state.js').SessionState} SessionState */
/** @typedef {import('./session-state.js').StateDetail} StateDetail */
/** @typedef {import('./session-state.js').StateListener} StateListener */
/** @typedef {import('./session-state.js').Core} Core */
/** @typedef {import('./session-state.js').CoreInput} CoreInput */
/** @typedef {import('./session-state.js').Effect} Effect */
/** @typedef {import('./session-types.js').Level} Level */
/** @typedef {import('./session-types.js').InterruptionKind} InterruptionKind */
/** @typedef {import('./session-types.js').ErrorCode} ErrorCode */
/** @typedef {import('./session-types.js').SourceCode} SourceCode */
/** @typedef {import('./session-types.js').Timing} Timing */
/** @typedef {import('./session-types.js').SessionEvent} SessionEvent */
/** @typedef {import('./session-types.js').StateEvent} StateEvent */
/** @typedef {import('./session-types.js').SessionEventMap} SessionEventMap */
/** @typedef {import('./session-types.js').SourceOptions} SourceOptions */
/** @typedef {import('./session-types.js').CaptureLike} CaptureLike */
/** @typedef {import('./session-types.js').SessionOptions} SessionOptions */
/** @typedef {import('./session-types.js').SessionErrorCode} SessionErrorCode */

export class Session {
  /** @type {SessionOptions} */
  #options;
  /** @type {Connection} the grant (its token is a credential: it never leaves this object), the clients, reconnects */
  #link;
  /** @type {StateMachine} */
  #machine;
  #listeners = new Listeners();
  /** @type {AudioPath} the source, the replay accounting (what is held and lost), the backpressure */
  #audio;
  /** @type {Core} the reducer's state (session-state.js) but for the state itself, which the machine holds */
  #core = initialCore();
  /** @type {Promise<void> | null} the graceful end under way */
  #finishing = null;
  /** @type {Promise<void> | null} the one stop() */
  #stopping = null;
  #started = false;
  /** @type {CoreInput[]} inputs that came while effects ran (a listener's stop, say): handled after them, in order */
  #inputs = [];
  #stepping = false;
  /** @type {() => void} */
  #reachedEnd = () => {};
  /** @type {Promise<void>} settles when the state is a final one */
  #ended = new Promise((resolve) => { this.#reachedEnd = () => resolve(undefined); });
  /** @type {() => void} takes the session's listener off the caller's signal */
  #unlistenSignal = () => {};

  /** @param {SessionOptions} options */
  constructor(options) {
    if (!options || typeof options.provider !== 'string' || !options.provider) {
      throw new TypeError('new Session({provider, …}): provider names the engine to ask the grant source for.');
    }
    this.#options = options;
    this.#link = new Connection({
      grants: new GrantKeeper({ getGrant: options.getGrant, endGrant: options.endGrant, timeoutMs: options.grantTimeoutMs }),
      provider: options.provider, ...(options.tag ? { tag: options.tag } : {}),
      // One clock for the session and its clients: Wiro's estimate of what it has heard runs on it. A socket is given
      // up before it holds more audio than the replay buffer keeps: beyond that it could not be sent again.
      clientOptions: { ...(options.now ? { now: options.now } : {}), maxBufferedMs: options.maxReplayMs ?? 30000, ...options.clientOptions },
      onEvent: (event) => this.#onClientEvent(event), over: () => this.#machine.final,
    });
    this.#audio = new AudioPath(options, {
      state: () => this.#machine.state, lost: () => this.#core.link === 'lost', link: this.#link,
      emit: (event) => this.#emit(event), now: options.now,
      // A source may still report a level it measured before the end (a worklet message already queued): nothing
      // reaches the page after the end, levels included.
      level: (level) => { if (!this.#machine.final) this.#listeners.dispatch('level', level); },
      // No microphone and nothing left to try: the reducer decides (the words the provider has, then `error`).
      sourceLost: (message, err) => this.#step({ ...failure(err), type: 'source-lost', message }),
    });
    this.#core = initialCore(options.maxReconnects ?? 8);
    this.#machine = new StateMachine((from, to, detail) => {
      if (isFinal(to)) {
        this.#reachedEnd();
        this.#unlistenSignal();
      }
      this.#listeners.dispatch('state', { type: 'state', from, to, detail });
    });
    // A listener like any other: one that throws is reported and the session goes on (a throw here once left a
    // queued stop unhandled, and stop() waiting for ever).
    const onStateChange = options.onStateChange;
    if (onStateChange) this.on('state', (change) => onStateChange(change.from, change.to, change.detail));
    if (options.onEvent) this.on('event', options.onEvent);
    if (options.onLevel) this.on('level', options.onLevel);
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.#step({ type: 'cancel' });
      else {
        // Off again at the end: a signal shared across recordings would otherwise keep every finished session
        // (its capture, up to maxReplayMs of held audio) alive for as long as the signal lives.
        const onAbort = () => this.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
        this.#unlistenSignal = () => signal.removeEventListener('abort', onAbort);
      }
    }
    internals.set(this, {
      buffer: () => (this.#audio.replay ? this.#audio.replay.buffer : null),
      capture: () => this.#audio.capture,
      canSend: () => this.#audio.canSend(),
      interrupt: (reason, kind) => this.#audio.interrupted(reason, kind),
      dropConnection: (message) => { if (this.#link.client) this.#link.client._session.fail(message, 'transport'); },
    });
  }

  /**
   * Listen for `type` ('state', 'level', 'event' for every SessionEvent, or one event type such as 'final').
   * Listeners run in the order added; one that throws is logged and the others still run.
   * @template {keyof SessionEventMap} K
   * @param {K} type
   * @param {(e: SessionEventMap[K]) => void} fn
   * @returns {() => void} removes the listener (the same as off(type, fn))
   */
  on(type, fn) {
    this.#listeners.add(type, /** @type {(e: unknown) => void} */ (fn));
    return () => this.off(type, fn);
  }

  /**
   * @template {keyof SessionEventMap} K
   * @param {K} type
   * @param {(e: SessionEventMap[K]) => void} fn
   */
  off(type, fn) {
    this.#listeners.remove(type, /** @type {(e: unknown) => void} */ (fn));
  }

  /** The provider this session asks grants for. */
  get provider() {
    return this.#options.provider;
  }

  /** What the current grant's provider can do (timed words, pacing, …); null before the first grant. */
  get capabilities() {
    return this.#link.capabilities;
  }

  /** @returns {SessionState} */
  get state() {
    return this.#machine.state;
  }

  /** The audio clock: ms of audio captured so far, at the provider's rate. */
  get audioMs() {
    return this.#audio.audioMs;
  }

  /**
   * Starts the recording; once per instance.
   * Resolves when audio flows to the provider: the state is then `streaming`, or `stopping` when stop() came while
   * connecting (the audio captured so far is still transcribed, and stop() waits for its finals).
   * Rejects with:
   * - a SessionError 'already_started': a second call (the session is untouched);
   * - the `signal`'s reason when it was aborted before or during the start (a SessionError 'aborted' for a signal
   *   without one); the state is `cancelled`;
   * - a SessionError 'ended': stop() or cancel() ended the session before audio flowed, before start() (then no
   *   grant is asked for) or during it; the state is `stopped` or `cancelled`;
   * - otherwise the failure itself (a CaptureError such as 'denied', the grant source's rejection, the provider
   *   client's error): the state is `error`, its detail carries the same message and code.
   * @returns {Promise<void>}
   */
  async start() {
    if (this.#started) throw new SessionError('A Session is single-use: make a new one for the next recording.', 'already_started');
    this.#started = true;
    const signal = this.#options.signal;
    const aborted = () => signal?.reason ?? new SessionError('The session was aborted.', 'aborted');
    if (signal && signal.aborted) throw aborted();
    // Cancelled or stopped before it started: asking for a grant now would only mint one to end at once (for Wiro
    // a billed task).
    if (this.#machine.final) throw new SessionError(`This session is already over (${this.state}): make a new one.`, 'ended');
    try {
      await runStart({
        link: this.#link, audio: this.#audio, starting: () => this.#machine.is('starting'), ended: this.#ended,
        step: (input) => this.#step(input), fail: (err) => this.#fail(err),
      });
    } catch (err) {
      // Aborted midway, the start fails however the step it was on noticed (a grant request aborted, a client
      // cancelled): the caller is owed the signal's reason, as with a signal aborted before.
      if (signal && signal.aborted) throw aborted();
      // Ended by stop() or cancel(): the step the start was on noticed it its own way (a grant request aborted, a
      // client cancelled, the start's own check). The caller is owed one answer for all of them.
      if (this.#machine.is('stopped', 'cancelled')) {
        throw new SessionError(`The session was ended before it started (${this.state}).`, 'ended');
      }
      throw err;
    }
  }

  /**
   * The one place the session decides: the reducer (session-state.js) from the current state and `input`, then its
   * effects, in order, each by the module that owns its part. Effects call listeners, and a listener may act (Stop
   * on `dropped`): its input waits until the effects decided before it have run, since they were decided from a
   * state it would change under them (a stop between 'outage' and the move to `reconnecting` left the session
   * stopping with no reconnect under way).
   * @param {CoreInput} input
   */
  #step(input) {
    this.#inputs.push(input);
    if (this.#stepping) return;
    this.#stepping = true;
    try {
      for (let next = this.#inputs.shift(); next; next = this.#inputs.shift()) {
        const { core, effects } = reduce({ ...this.#core, state: this.#machine.state }, next);
        this.#core = core;
        for (const effect of effects) this.#run(effect);
      }
    } finally {
      this.#stepping = false;
    }
  }

  /** @param {Effect} effect */
  #run(effect) {
    const link = this.#link;
    switch (effect.type) {
      case 'to': this.#machine.to(effect.state, effect.detail); return;
      case 'emit': this.#emit(effect.event); return;
      case 'terminal-loss': if (!this.#machine.final) this.#audio.terminalLoss(); return;
      case 'release': this.#audio.release(); link.release(); return;
      case 'outage': this.#audio.beginOutage(); link.beginOutage(); return;
      case 'wait': link.attempt(effect.delayMs, (outcome) => this.#step(outcome.type === 'attempt-failed' ? { ...outcome, ...this.#facts() } : outcome)); return;
      case 'wake': link.wake(); return;
      case 'replay':
        this.#audio.replayInto(/** @type {Client} */ (link.client), /** @type {Capabilities} */ (link.capabilities).replayRepeats);
        link.outageOver();
        return;
      case 'reconnected': this.#audio.reconnected(effect.attempt); return;
      case 'cancel-client': if (link.client) link.client.cancel(); return;
      case 'end-grant': link.end(); return;
      case 'finish': this.#finishing = this.#finish(); return;
      case 'stop': this.stop().catch(() => {}); return;
    }
  }

  /** The facts the reducer needs to start an attempt: the backoff's jitter and the audio held. */
  #facts() {
    return { jitter: Math.random(), bufferedMs: this.#audio.replay ? this.#audio.replay.bufferedMs : 0 };
  }

  /** @param {ProviderEvent} event  the current client's (connection.js hears no other) */
  #onClientEvent(event) {
    if (this.#machine.is('cancelled')) return;
    const replay = this.#audio.replay;
    switch (event.type) {
      case 'state': return; // the client's own states are details of the session's
      case 'error': this.#step({ ...event, type: 'client-failed', ...this.#facts() }); return;
      case 'closed': this.#step({ ...event, type: 'client-closed', ...this.#facts() }); return;
      case 'final': if (replay) this.#emit(replay.final(event, event.timing === 'provider')); return;
      case 'partial': if (replay) this.#emit(replay.partial(event)); return;
      case 'warning': this.#emit({ ...event, code: event.code ?? 'provider_warning' }); return;
      default: this.#emit(event);
    }
  }

  /** @param {SessionEvent} event  nothing reaches the page once the session is over (a client's `closed` after
   * the session's error, say): what the end means is said before it */
  #emit(event) {
    if (this.#machine.final) return;
    const stamped = { ...event, atMs: this.audioMs };
    this.#listeners.dispatch('event', stamped);
    this.#listeners.dispatch(event.type, stamped);
  }

  /** @param {unknown} err  the session is over (unless it already is): state `error` with the cause's code */
  #fail(err) {
    this.#step({ ...failure(err), type: 'fail' });
  }

  /** Graceful: the source's tail is sent, then the provider is asked to finish and its last finals arrive. A
   * connection lost meanwhile is replaced and what no final covered is sent again, then that one finishes.
   * Stop again while stopping (a file that ran out stops itself, then the user presses Stop) waits for the same end.
   * Resolves, never rejects, once the session is over and the grant handed back, whichever way it ended: `stopped`,
   * `error` (the last finals could not be had in time or at all, or the source failed: the state's detail says why)
   * or `cancelled` (cancel() meanwhile); read `state`. Before start() or while starting, it ends the session at once
   * (`stopped`), and a start() under way rejects with a SessionError 'ended'.
   * @returns {Promise<void>} */
  stop() {
    this.#stopping ??= this.#stopOnce();
    return this.#stopping;
  }

  async #stopOnce() {
    this.#step({ type: 'stop' });
    // A stop from a listener is handled once the effects under way have run, so its finish may not have begun yet:
    // the end is what is waited for, then the rest of the finish (the grant handed back).
    await this.#ended;
    if (this.#finishing) await this.#finishing;
  }

  /** The 'finish' effect, bounded by stopTimeoutMs: past it the session ends in `error` and says what was lost. */
  #finish() {
    return runFinish({
      source: this.#audio.tail, link: this.#link, rounds: this.#core.maxReconnects, timers: GLOBAL_TIMERS,
      lost: () => this.#core.link === 'lost',
      stopping: () => this.#machine.is('stopping'),
      sourceFailed: (err) => this.#emit({
        type: 'source', recovered: false, code: 'source_interrupted',
        message: `The audio source failed as it stopped (${failure(err).message}): its last audio may be missing.`,
      }),
      unfinished: () => this.#step({ type: 'finish-failed' }),
      timedOut: (boundMs) => {
        this.#run({ type: 'terminal-loss' }); // first: the message says how much that is
        this.#step({ type: 'stop-timeout', message: stopTimeoutMessage(boundMs, this.#audio.replay ? this.#audio.replay.droppedMs : 0) });
      },
      finished: () => this.#step({ type: 'finished' }),
    }, this.#options.stopTimeoutMs);
  }

  /** Abandon the session now: nothing more reaches the listeners but the `state` change to `cancelled`. */
  cancel() {
    this.#step({ type: 'cancel' });
  }

  /**
   * Tell the grant source the current grant is finished with, so it can release what it holds upstream (a billed
   * Wiro task). The session does this itself when it ends; a page calls it on pagehide, with `beacon`, since an
   * unloading page gets only a beacon out.
   * @param {{beacon?: boolean}} [init]
   */
  endGrant({ beacon = false } = {}) {
    this.#link.end(beacon);
  }

  /** What a bug report needs, as plain values. */
  diagnostics() {
    const client = this.#link.client;
    return sessionDiagnostics({
      ...this.#audio.facts(Date.now()), grant: this.#link.grant, clientFramesSent: client ? client.framesSent : 0,
      socketState: client ? client.socketState : (this.#core.link === 'lost' ? 'reconnecting' : 'none'),
      sessionState: this.state, expiresAt: client ? client.expiresAt : null,
    });
  }
}
