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
import { GrantKeeper, isRetryable } from './grants.js';
import { capabilitiesFor, createClient } from './providers/client.js';
import { ReplayAccounting } from './replay-accounting.js';
import { StateMachine, initialCore, reduce } from './session-state.js';
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

/** @param {unknown} err @returns {string | undefined} the code a CaptureError or ApiError carries */
function codeOf(err) {
  const code = err && typeof err === 'object' && 'code' in err ? err.code : undefined;
  return typeof code === 'string' && code ? code : undefined;
}

export class Session {
  /** @type {SessionOptions} */
  #options;
  /** @type {GrantKeeper} */
  #grants;
  /** @type {StateMachine} */
  #machine;
  /** @type {Map<string, Set<(e: unknown) => void>>} listeners by event type (on() types each one) */
  #listeners = new Map();
  /** @type {Grant | null} the current grant: its token is a credential, so it never leaves this object */
  #grant = null;
  /** @type {Capabilities | null} */
  #capabilities = null;
  /** @type {SourceSupervisor | null} the audio source, and its recovery when interrupted */
  #source = null;
  /** @type {Client | null} the client audio goes to */
  #client = null;
  /** @type {Client | null} a reconnect attempt's client, until it is ready */
  #attempt = null;
  /** @type {ReplayAccounting | null} the audio held for a replay, what is lost, the recording's clock */
  #replay = null;
  #reconnects = 0;
  #maxReconnects = 8;
  /** @type {{capture: CaptureLike, time: number} | null} the source's clock when this session started */
  #clockStart = null;
  /** @type {Core} the reducer's state (session-state.js) but for the state itself, which the machine holds */
  #core = initialCore();
  /** @type {Grant | null} the grant of the connection lost, for the replacement's request */
  #lostGrant = null;
  /** @type {{promise: Promise<void>, resolve: () => void} | null} settles when an outage ends, either way */
  #outage = null;
  /** ms of the recording where the last replay began, for `reconnected` */
  #replayedFromMs = 0;
  /** @type {Promise<void> | null} the graceful end under way */
  #finishing = null;
  /** @type {(() => void) | null} cuts the backoff wait short (Stop or Cancel during a reconnect) */
  #wake = null;
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
    this.#grants = new GrantKeeper({ getGrant: options.getGrant, endGrant: options.endGrant, timeoutMs: options.grantTimeoutMs });
    this.#maxReconnects = options.maxReconnects ?? 8;
    this.#core = initialCore(this.#maxReconnects);
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
      client: () => this.#client,
      canSend: () => this.#canSend(),
      interrupt: (reason, kind) => (this.#source ? this.#source.interrupted(reason, kind) : Promise.resolve()),
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

  /**
   * @param {keyof SessionEventMap} type
   * @param {unknown} value  what SessionEventMap says for `type` (the callers build it so)
   */
  #dispatch(type, value) {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
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
    return this.#capabilities;
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
    const { provider, tag } = this.#options;
    this.#step({ type: 'start' });
    /** @type {Grant} */
    let grant;
    try {
      grant = await this.#grants.request(tag ? { provider, tag, reconnect: false } : { provider, reconnect: false });
    } catch (err) {
      this.#fail(err); // a no-op once stopped or cancelled meanwhile
      throw err;
    }
    this.#grant = grant;
    if (!this.#machine.is('starting')) {
      this.#endUpstream();
      throw new Error('The session was ended before it started.');
    }
    try {
      this.#capabilities = capabilitiesFor(grant);
      this.#replay = new ReplayAccounting({
        sampleRate: grant.sample_rate,
        maxMs: this.#options.maxReplayMs ?? 30000,
        stallMs: this.#options.backpressureStallMs ?? 15000,
      });
      this.#client = this.#makeClient(grant);
    } catch (err) {
      this.#fail(err);
      throw err;
    }
    const client = this.#client;
    let capture;
    try {
      this.#source = this.#supervisor(grant);
      capture = await this.#source.open();
    } catch (err) {
      client.cancel();
      if (this.#machine.is('starting')) this.#fail(err);
      else this.#endUpstream();
      throw err;
    }
    if (!this.#machine.is('starting')) {
      client.cancel();
      await capture.release();
      this.#endUpstream();
      throw new Error('The session was ended before it started.');
    }
    /** @type {SourceSupervisor} */ (this.#source).use(capture);
    this.#startedAt = Date.now();
    // A caller's AudioContext may have run long before this session: its clock counts from its own start.
    const ctx = capture.context;
    if (ctx && typeof ctx.currentTime === 'number') this.#clockStart = { capture, time: ctx.currentTime };
    this.#step({ type: 'source-opened' });
    try {
      await client.start();
    } catch (err) {
      // The client's own error event has usually decided already (the session is over): then this is a no-op.
      this.#fail(err);
      throw err;
    }
    this.#step({ type: 'connected' });
  }

  /**
   * The one place the session decides: the reducer (session-state.js) from the current state and `input`, then its
   * effects, in order.
   * @param {CoreInput} input
   */
  #step(input) {
    const { core, effects } = reduce({ ...this.#core, state: this.#machine.state }, input);
    this.#core = core;
    for (const effect of effects) this.#run(effect);
  }

  /** @param {Effect} effect */
  #run(effect) {
    switch (effect.type) {
      case 'to': this.#machine.to(effect.state, effect.detail); return;
      case 'emit': this.#emit(effect.event); return;
      case 'terminal-loss': this.#reportTerminalLoss(); return;
      case 'release': this.#release(); return;
      case 'outage': this.#beginOutage(); return;
      case 'wait': this.#attemptAfter(effect.delayMs); return;
      case 'wake': if (this.#wake) this.#wake(); return;
      case 'replay': this.#replayHeld(); return;
      case 'reconnected': {
        const replay = /** @type {ReplayAccounting} */ (this.#replay);
        this.#emit({
          type: 'reconnected', replayedMs: Math.round(this.audioMs - this.#replayedFromMs), droppedMs: replay.droppedMs,
          attempt: effect.attempt,
        });
        return;
      }
      case 'cancel-client': if (this.#client) this.#client.cancel(); return;
      case 'end-grant': this.#endUpstream(); return;
      case 'finish': this.#finishing = this.#finishWithin(this.#options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS); return;
      case 'stop': this.stop().catch(() => {}); return;
    }
  }

  /** The facts the reducer needs to start an attempt: the backoff's jitter and the audio held. */
  #facts() {
    return { jitter: Math.random(), bufferedMs: this.#bufferedMs() };
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
      pacing: this.#capabilities ? this.#capabilities.pacing : 'fast',
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
    const grant = this.#grant;
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
    if (!outage && this.#client) this.#client.sendAudio(pcm);
  }

  /** @param {Grant} grant @returns {Client} */
  #makeClient(grant) {
    /** @type {Client} */
    const client = createClient(grant, {
      ...(this.#options.clientOptions ?? {}),
      onEvent: (event) => this.#onClientEvent(client, event),
    });
    return client;
  }

  /**
   * @param {Client} client
   * @param {ProviderEvent} event
   */
  #onClientEvent(client, event) {
    if (this.#machine.is('cancelled')) return;
    // A reconnect attempt that fails is retried by reconnectLoop (its start() rejects): not the page's business.
    if (client === this.#attempt && (event.type === 'error' || event.type === 'closed')) return;
    if (client !== this.#client) return; // a replaced client's last words: its session is over
    switch (event.type) {
      case 'state':
        return; // the client's own states are details of the session's
      case 'error':
        this.#step({ ...event, type: 'client-failed', ...this.#facts() });
        return;
      case 'closed':
        this.#step({ ...event, type: 'client-closed', ...this.#facts() });
        return;
      case 'final': {
        if (this.#replay) this.#emit(this.#replay.final(event, event.timing === 'provider'));
        return;
      }
      case 'partial':
        if (this.#replay) this.#emit(this.#replay.partial(event));
        return;
      case 'warning':
        this.#emit({ ...event, code: 'provider_warning' });
        return;
      default:
        this.#emit(event);
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

  /**
   * The session is ending without a replay: the audio no final covered, held or already pushed out, is lost.
   * Said before the end, since nothing reaches the page after it.
   */
  #reportTerminalLoss() {
    if (!this.#replay || this.#machine.final) return;
    this.#emitAll(this.#replay.terminalLoss());
  }

  /** @param {unknown} err  the session is over (unless it already is): state `error` with the cause's code */
  #fail(err) {
    const code = codeOf(err);
    this.#step({ type: 'fail', message: err instanceof Error ? err.message : String(err), ...(code ? { code } : {}) });
  }

  /** Everything the session holds goes: the source, the clients, grant requests, the grant. */
  #release() {
    this.#grants.abortAll();
    if (this.#wake) this.#wake();
    if (this.#source) this.#source.release();
    if (this.#client) this.#client.cancel();
    if (this.#attempt) this.#attempt.cancel();
    this.#endUpstream();
    if (this.#outage) this.#outage.resolve();
  }

  /** The connection is lost: its client and grant go, and what the buffer could not keep is said now. */
  #beginOutage() {
    const old = this.#client;
    this.#client = null;
    this.#lostGrant = this.#grant;
    if (this.#replay) this.#emitAll(this.#replay.beginOutage());
    if (old) old.cancel();
    this.#endUpstream(false, this.#grant);
    /** @type {() => void} */
    let resolve = () => {};
    const promise = new Promise((r) => { resolve = () => r(undefined); });
    this.#outage = { promise, resolve };
  }

  /**
   * Wait out the backoff (Stop or Cancel cut it short), then try: a fresh grant, a new client. The outcome goes
   * back to the reducer, which decides what comes next.
   * @param {number} delayMs
   */
  async #attemptAfter(delayMs) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      this.#wake = () => { clearTimeout(timer); resolve(undefined); };
    });
    this.#wake = null;
    if (this.#machine.final) return;
    /** @type {Grant | null} */
    let grant = null;
    try {
      grant = await this.#grants.request(this.#reconnectRequest(/** @type {Grant} */ (this.#lostGrant)));
      if (this.#machine.final) {
        this.#endUpstream(false, grant);
        return;
      }
      const client = this.#makeClient(grant);
      this.#attempt = client;
      this.#grant = grant;
      this.#capabilities = capabilitiesFor(grant);
      await client.start();
      this.#attempt = null;
      if (this.#machine.final) {
        client.cancel();
        return;
      }
      this.#client = client;
    } catch (err) {
      if (this.#attempt) this.#attempt.cancel();
      this.#attempt = null;
      if (grant) this.#endUpstream(false, grant);
      const code = codeOf(err);
      this.#step({
        type: 'attempt-failed', message: err instanceof Error ? err.message : String(err), ...(code ? { code } : {}),
        retryable: isRetryable(err), ...this.#facts(),
      });
      return;
    }
    this.#step({ type: 'attempt-ready' });
  }

  /** The new client is ready: the held audio first, in order (live frames went to the buffer until now). */
  #replayHeld() {
    const replay = /** @type {ReplayAccounting} */ (this.#replay);
    const client = /** @type {Client} */ (this.#client);
    const { frames, offsetMs, events } = replay.replay(/** @type {Capabilities} */ (this.#capabilities).replayRepeats);
    this.#emitAll(events);
    for (const frame of frames) client.sendAudio(frame.samples);
    this.#replayedFromMs = offsetMs;
    this.#reconnects += 1;
    if (this.#outage) this.#outage.resolve();
  }

  /**
   * A fresh grant like the first: same provider, and the same model where the provider lets the page choose one.
   * @param {Grant} first
   */
  #reconnectRequest(first) {
    const { provider, tag } = this.#options;
    const chosen = tag ?? (capabilitiesFor(first).tagsListing ? first.tag : undefined);
    return chosen ? { provider, tag: chosen, reconnect: true } : { provider, reconnect: true };
  }

  #bufferedMs() {
    return this.#replay ? this.#replay.bufferedMs : 0;
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

  /**
   * The source's tail and the provider's last finals, bounded: an outage can otherwise hold Stop for minutes (each
   * reconnect waits for a grant, then for the socket). Past the bound the session ends in `error` and says what was
   * not transcribed.
   * @param {number} boundMs
   */
  async #finishWithin(boundMs) {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), boundMs); });
    try {
      const outcome = await Promise.race([this.#finish().then(() => 'done'), timedOut]);
      if (outcome === 'timeout' && this.#machine.is('stopping')) {
        this.#reportTerminalLoss(); // first: the message says how much that is
        const lostS = ((this.#replay ? this.#replay.droppedMs : 0) / 1000).toFixed(1);
        const message = `Stopped after ${Math.round(boundMs / 100) / 10} s without the last words: `
          + `${lostS} s of audio were not transcribed.`;
        this.#step({ type: 'stop-timeout', message });
      }
    } finally {
      clearTimeout(timer);
      this.#endUpstream();
      this.#step({ type: 'finished' });
    }
  }

  /** The source's tail, then the provider's last finals, through any reconnects. */
  async #finish() {
    if (this.#source) await this.#source.stop();
    for (let round = 0; round <= this.#maxReconnects; round++) {
      if (this.#core.link === 'lost') {
        if (this.#wake) this.#wake();
        if (this.#outage) await this.#outage.promise;
      }
      if (!this.#machine.is('stopping')) break;
      if (this.#client) await this.#client.stop();
      if (this.#core.link !== 'lost') break;
    }
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
    this.#endUpstream(beacon);
  }

  /**
   * @param {boolean} [beacon] use navigator.sendBeacon (pagehide)
   * @param {Grant | null} [grant] default: the current grant
   */
  #endUpstream(beacon = false, grant = this.#grant) {
    this.#grants.end(grant, beacon);
  }

  /** What a bug report needs, as plain values. */
  diagnostics() {
    const capture = this.#source ? this.#source.capture : null;
    const grant = this.#grant;
    const settings = (capture && capture.deviceSettings) || {};
    const contextRate = capture && capture.contextRate ? capture.contextRate : null;
    const rate = grant ? grant.sample_rate : null;
    const frameSamples = grant ? grant.frame_samples : 0;
    const ctx = capture && capture.context;
    const start = this.#clockStart;
    // The source's clock when it is the one this session started with; after a microphone was replaced, the wall
    // clock (the time without a microphone counts as expected frames not sent, which is what happened).
    const elapsedS = ctx && start && start.capture === capture && typeof ctx.currentTime === 'number'
      ? ctx.currentTime - start.time
      : (Date.now() - this.#startedAt) / 1000;
    return {
      provider: grant ? grant.provider : undefined,
      protocol: grant ? grant.protocol : undefined,
      browser: typeof navigator !== 'undefined' ? navigator.userAgent : '',
      deviceLabel: (capture && capture.deviceLabel) || '',
      deviceRate: settings.sampleRate ?? null,
      contextRate,
      providerRate: rate,
      ratio: contextRate && rate ? `${contextRate} → ${rate} (×${(rate / contextRate).toFixed(4)})` : null,
      framesSent: this.#replay && frameSamples ? Math.floor(this.#replay.buffer.totalSamples / frameSamples) : 0,
      framesExpected: frameSamples && rate && this.#startedAt ? Math.floor((elapsedS * rate) / frameSamples) : 0,
      clientFramesSent: this.#client ? this.#client.framesSent : 0,
      socketState: this.#client ? this.#client.socketState : (this.#core.link === 'lost' ? 'reconnecting' : 'none'),
      sessionState: this.state,
      reconnects: this.#reconnects,
      tokenExpiresAt: grant && typeof grant.expires_at === 'number' ? new Date(grant.expires_at * 1000).toISOString() : null,
      bufferedMs: this.#bufferedMs(),
      droppedMs: this.#replay ? this.#replay.droppedMs : 0,
    };
  }
}
