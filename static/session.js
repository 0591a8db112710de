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
// grants.js (the grant source), source-supervisor.js (the audio source), replay-accounting.js (what is held and
// lost), the provider clients.
//
// The public surface is what a page on another origin can adopt: `new Session(options)`, `on`/`off`, `start`,
// `stop`, `cancel`, `state`, `audioMs`, `capabilities`, `provider`, `diagnostics()`, `endGrant()`. Everything else
// is a #private field, so the grant (and its token) cannot be read or changed from outside. An instance is
// single-use, like a WebSocket (one connection per object): start() a second time throws a SessionError with code
// 'already_started'; make a new Session for the next recording.
import { Connection, codeOf } from './connection.js';
import { GLOBAL_TIMERS, GrantKeeper } from './grants.js';
import { runFinish, runStart, stopTimeoutMessage } from './lifecycle.js';
import { ReplayAccounting } from './replay-accounting.js';
import { StateMachine, initialCore, reduce } from './session-state.js';
import { sessionDiagnostics } from './session-diagnostics.js';
import { SourceSupervisor } from './source-supervisor.js';
import { internals } from './session-internals.js';

export { ApiError, appGrants } from './grants.js';
export { stripOverlap } from './replay-accounting.js';
export { withTimeout } from './source-supervisor.js';

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

/** A misuse of the session object (not a failure of the session): code 'already_started'. */
export class SessionError extends Error {
  /** @param {string} message @param {string} code */
  constructor(message, code) {
    super(message);
    this.name = 'SessionError';
    this.code = code;
  }
}

const DEFAULT_STOP_TIMEOUT_MS = 30000;

export class Session {
  /** @type {SessionOptions} */
  #options;
  /** @type {Connection} the grant (its token is a credential: it never leaves this object), the clients, reconnects */
  #link;
  /** @type {StateMachine} */
  #machine;
  /** @type {Map<string, Set<(e: unknown) => void>>} listeners by event type (on() types each one) */
  #listeners = new Map();
  /** @type {SourceSupervisor | null} the audio source, and its recovery when interrupted */
  #source = null;
  /** @type {ReplayAccounting | null} the audio held for a replay, what is lost, the recording's clock */
  #replay = null;
  #reconnects = 0;
  /** @type {{capture: CaptureLike, time: number} | null} the source's clock when this session started */
  #clockStart = null;
  /** @type {Core} the reducer's state (session-state.js) but for the state itself, which the machine holds */
  #core = initialCore();
  /** ms of the recording where the last replay began, for `reconnected` */
  #replayedFromMs = 0;
  /** @type {Promise<void> | null} the graceful end under way */
  #finishing = null;
  #startedAt = 0;
  /** @type {Promise<void> | null} the one stop() */
  #stopping = null;
  #started = false;

  /** @param {SessionOptions} options */
  constructor(options) {
    if (!options || typeof options.provider !== 'string' || !options.provider) {
      throw new TypeError('new Session({provider, …}): provider names the engine to ask the grant source for.');
    }
    this.#options = options;
    this.#link = new Connection({
      grants: new GrantKeeper({ getGrant: options.getGrant, endGrant: options.endGrant, timeoutMs: options.grantTimeoutMs }),
      provider: options.provider, ...(options.tag ? { tag: options.tag } : {}), clientOptions: options.clientOptions ?? {},
      onEvent: (client, event) => this.#onClientEvent(client, event), over: () => this.#machine.final,
    });
    this.#core = initialCore(options.maxReconnects ?? 8);
    this.#machine = new StateMachine((from, to, detail) => {
      options.onStateChange?.(from, to, detail);
      this.#dispatch('state', { type: 'state', from, to, detail });
    });
    if (options.onEvent) this.on('event', options.onEvent);
    if (options.onLevel) this.on('level', options.onLevel);
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.#step({ type: 'cancel' });
      else signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
    internals.set(this, {
      buffer: () => (this.#replay ? this.#replay.buffer : null),
      capture: () => (this.#source ? this.#source.capture : null),
      canSend: () => this.#canSend(),
      interrupt: (reason, kind) => (this.#source ? this.#source.interrupted(reason, kind) : Promise.resolve()),
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
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(/** @type {(e: unknown) => void} */ (fn));
    return () => this.off(type, fn);
  }

  /**
   * @template {keyof SessionEventMap} K
   * @param {K} type
   * @param {(e: SessionEventMap[K]) => void} fn
   */
  off(type, fn) {
    this.#listeners.get(type)?.delete(/** @type {(e: unknown) => void} */ (fn));
  }

  /** @param {keyof SessionEventMap} type @param {unknown} value  what SessionEventMap says for `type` */
  #dispatch(type, value) {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) {
      try {
        fn(value);
      } catch (err) {
        console.error(`session ${type} listener failed`, err);
      }
    }
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
    return this.#replay ? this.#replay.audioMs : 0;
  }

  /**
   * Resolves when audio flows to the provider; rejects (and the state is `error`) when it cannot. Once per
   * instance: a second call throws a SessionError 'already_started'. With an aborted `signal`, rejects with its
   * reason.
   */
  async start() {
    if (this.#started) throw new SessionError('A Session is single-use: make a new one for the next recording.', 'already_started');
    this.#started = true;
    const signal = this.#options.signal;
    if (signal && signal.aborted) throw signal.reason ?? new SessionError('The session was aborted.', 'aborted');
    await runStart({
      link: this.#link,
      starting: () => this.#machine.is('starting'),
      prepare: (grant) => {
        const o = this.#options;
        this.#replay = new ReplayAccounting({ sampleRate: grant.sample_rate, maxMs: o.maxReplayMs ?? 30000, stallMs: o.backpressureStallMs ?? 15000 });
      },
      openSource: (grant) => (this.#source = this.#supervisor(grant)).open(),
      useSource: (capture) => {
        /** @type {SourceSupervisor} */ (this.#source).use(capture);
        this.#startedAt = Date.now();
        // A caller's AudioContext may have run long before this session: its clock counts from its own start.
        const ctx = capture.context;
        if (ctx && typeof ctx.currentTime === 'number') this.#clockStart = { capture, time: ctx.currentTime };
      },
      step: (input) => this.#step(input),
      fail: (err) => this.#fail(err),
    });
  }

  /**
   * The one place the session decides: the reducer (session-state.js) from the current state and `input`, then its
   * effects, in order, each by the module that owns its part.
   * @param {CoreInput} input
   */
  #step(input) {
    const { core, effects } = reduce({ ...this.#core, state: this.#machine.state }, input);
    this.#core = core;
    for (const effect of effects) this.#run(effect);
  }

  /** @param {Effect} effect */
  #run(effect) {
    const link = this.#link;
    const replay = /** @type {ReplayAccounting} */ (this.#replay);
    switch (effect.type) {
      case 'to': this.#machine.to(effect.state, effect.detail); return;
      case 'emit': this.#emit(effect.event); return;
      case 'terminal-loss': if (this.#replay) this.#emitAll(this.#replay.terminalLoss()); return;
      case 'release': if (this.#source) this.#source.release(); link.release(); return;
      case 'outage': if (this.#replay) this.#emitAll(this.#replay.beginOutage()); link.beginOutage(); return;
      case 'wait': link.attempt(effect.delayMs, (outcome) => this.#step(outcome.type === 'attempt-failed' ? { ...outcome, ...this.#facts() } : outcome)); return;
      case 'wake': link.wake(); return;
      case 'replay': {
        // The new client is ready: the held audio first, in order (live frames went to the buffer until now).
        const { frames, offsetMs, events } = replay.replay(/** @type {Capabilities} */ (link.capabilities).replayRepeats);
        this.#emitAll(events);
        for (const frame of frames) /** @type {Client} */ (link.client).sendAudio(frame.samples);
        this.#replayedFromMs = offsetMs;
        this.#reconnects += 1;
        link.outageOver();
        return;
      }
      case 'reconnected':
        this.#emit({ type: 'reconnected', replayedMs: Math.round(this.audioMs - this.#replayedFromMs), droppedMs: replay.droppedMs, attempt: effect.attempt });
        return;
      case 'cancel-client': if (link.client) link.client.cancel(); return;
      case 'end-grant': link.end(); return;
      case 'finish': this.#finishing = this.#finish(); return;
      case 'stop': this.stop().catch(() => {}); return;
    }
  }

  /** The facts the reducer needs to start an attempt: the backoff's jitter and the audio held. */
  #facts() {
    return { jitter: Math.random(), bufferedMs: this.#replay ? this.#replay.bufferedMs : 0 };
  }

  /** @param {Grant} grant @returns {SourceSupervisor} the source for this session, told what the grant asks for */
  #supervisor(grant) {
    const o = this.#options;
    return new SourceSupervisor({
      create: o.source ?? o.createSource, microphone: o.microphone, deviceId: o.deviceId, audioContext: o.audioContext,
      mediaStream: o.mediaStream, echoCancellation: o.echoCancellation, noiseSuppression: o.noiseSuppression,
      autoGainControl: o.autoGainControl, workletUrl: o.workletUrl, resumeTimeoutMs: o.resumeTimeoutMs,
    }, {
      outRate: grant.sample_rate,
      frameSamples: grant.frame_samples,
      pacing: this.#link.capabilities ? this.#link.capabilities.pacing : 'fast',
      onFrame: (pcm) => this.#onFrame(pcm),
      onLevel: (level) => this.#dispatch('level', level),
      canSend: () => this.#canSend(),
      over: () => this.#machine.final || this.#machine.is('stopping'),
      report: (event) => this.#emit(event),
      // No microphone and nothing left to try: streaming on would show "Listening" over a dead microphone. The
      // provider is asked for the words it already has (as Stop does), then the session ends in `error`.
      lost: (message, err) => {
        const code = codeOf(err);
        this.#step({ type: 'source-lost', message, ...(code ? { code } : {}) });
      },
    });
  }

  /**
   * Backpressure for a source that can wait: hold it while the provider is not taking audio, or while one more
   * frame would push audio no final covers out of the replay buffer (it could not be sent again after a drop).
   */
  #canSend() {
    const replay = this.#replay;
    const grant = this.#link.grant;
    if (this.#machine.is('stopping')) return true;
    if (!this.#machine.is('streaming') || this.#core.link === 'lost' || !replay || !grant) return false;
    return replay.roomFor((grant.frame_samples * 1000) / grant.sample_rate, (this.#options.now ?? Date.now)());
  }

  /** @param {Int16Array} pcm */
  #onFrame(pcm) {
    if (this.#machine.final || !this.#replay) return;
    // While reconnecting, live frames only go to the buffer: the replay keeps their order.
    const outage = this.#core.link === 'lost';
    this.#emitAll(this.#replay.push(pcm, outage));
    if (!outage && this.#link.client) this.#link.client.sendAudio(pcm);
  }

  /** @param {Client} client @param {ProviderEvent} event */
  #onClientEvent(client, event) {
    if (this.#machine.is('cancelled')) return;
    const whose = this.#link.whose(client);
    // A reconnect attempt that fails is retried (its start() rejects): not the page's business. A replaced
    // client's last words are not either: its session is over.
    if (whose !== 'current') return;
    switch (event.type) {
      case 'state': return; // the client's own states are details of the session's
      case 'error': this.#step({ ...event, type: 'client-failed', ...this.#facts() }); return;
      case 'closed': this.#step({ ...event, type: 'client-closed', ...this.#facts() }); return;
      case 'final': if (this.#replay) this.#emit(this.#replay.final(event, event.timing === 'provider')); return;
      case 'partial': if (this.#replay) this.#emit(this.#replay.partial(event)); return;
      case 'warning': this.#emit({ ...event, code: 'provider_warning' }); return;
      default: this.#emit(event);
    }
  }

  /** @param {SessionEvent} event  nothing reaches the page once the session is over (a client's `closed` after
   * the session's error, say): what the end means is said before it */
  #emit(event) {
    if (this.#machine.final) return;
    const stamped = { ...event, atMs: this.audioMs };
    this.#dispatch('event', stamped);
    this.#dispatch(event.type, stamped);
  }

  /** @param {import('./replay-accounting.js').DroppedEvent[]} events */
  #emitAll(events) {
    for (const event of events) this.#emit(event);
  }

  /** @param {unknown} err  the session is over (unless it already is): state `error` with the cause's code */
  #fail(err) {
    const code = codeOf(err);
    this.#step({ type: 'fail', message: err instanceof Error ? err.message : String(err), ...(code ? { code } : {}) });
  }

  /** Graceful: the source's tail is sent, then the provider is asked to finish and its last finals arrive. A
   * connection lost meanwhile is replaced and what no final covered is sent again, then that one finishes.
   * Stop again while stopping (a file that ran out stops itself, then the user presses Stop) waits for the same end.
   * @returns {Promise<void>} */
  stop() {
    this.#stopping ??= this.#stopOnce();
    return this.#stopping;
  }

  async #stopOnce() {
    this.#step({ type: 'stop' });
    if (this.#finishing) await this.#finishing;
  }

  /** The 'finish' effect, bounded by stopTimeoutMs: past it the session ends in `error` and says what was lost. */
  #finish() {
    const boundMs = this.#options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    return runFinish({
      source: this.#source, link: this.#link, rounds: this.#core.maxReconnects, timers: GLOBAL_TIMERS,
      lost: () => this.#core.link === 'lost',
      stopping: () => this.#machine.is('stopping'),
      timedOut: () => {
        this.#run({ type: 'terminal-loss' }); // first: the message says how much that is
        this.#step({ type: 'stop-timeout', message: stopTimeoutMessage(boundMs, this.#replay ? this.#replay.droppedMs : 0) });
      },
      finished: () => this.#step({ type: 'finished' }),
    }, boundMs);
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
    const capture = this.#source ? this.#source.capture : null;
    const client = this.#link.client;
    return sessionDiagnostics({
      grant: this.#link.grant, capture, clockStart: this.#clockStart, startedAt: this.#startedAt, now: Date.now(),
      replay: this.#replay, clientFramesSent: client ? client.framesSent : 0,
      socketState: client ? client.socketState : (this.#core.link === 'lost' ? 'reconnecting' : 'none'),
      sessionState: this.state, reconnects: this.#reconnects,
    });
  }
}
