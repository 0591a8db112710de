// The session's audio on its way to the provider: the source (source-supervisor.js) → the replay accounting
// (replay-accounting.js) → the current client, with the backpressure a file waits on. It executes the reducer's
// audio effects ('terminal-loss', 'outage', 'replay', 'reconnected') and decides nothing: the state and the link it
// reads are the reducer's, what it has to say goes to `emit`, and a source with nothing left to try goes back to the
// reducer through `lost`.
import { ReplayAccounting } from './replay-accounting.js';
import { isFinal } from './session-state.js';
import { SourceSupervisor } from './source-supervisor.js';

// A source that can wait (a file) is held while this much audio is still in the socket's send buffer: enough that
// the socket always has audio to send, so a file still goes as fast as the uplink takes it, and far below the
// point where a slow uplink is warned about or given up on (providers/protocol.js DEFAULTS).
export const MAX_SEND_AHEAD_MS = 2000;

/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./session-state.js').SessionState} SessionState */
/** @typedef {import('./session-types.js').SessionOptions} SessionOptions */
/** @typedef {import('./session-types.js').SessionEvent} SessionEvent */
/** @typedef {import('./session-types.js').CaptureLike} CaptureLike */
/** @typedef {import('./session-types.js').Level} Level */

/**
 * @typedef {object} AudioHost
 * @property {() => SessionState} state
 * @property {() => boolean} lost  the connection is being replaced (live frames only go to the buffer)
 * @property {{client: Pick<Client, 'sendAudio' | 'bufferedMs'> | null, grant: Grant | null,
 *   capabilities: {pacing: 'fast'|'realtime'} | null}} link
 * @property {(event: SessionEvent) => void} emit
 * @property {(level: Level) => void} level
 * @property {(message: string, err: unknown) => void} sourceLost  nothing left to try
 * @property {() => number} [now]  ms, for the backpressure stall (default Date.now)
 */

export class AudioPath {
  /** @type {SessionOptions} */
  #options;
  /** @type {AudioHost} */
  #host;
  /** @type {ReplayAccounting | null} */
  #replay = null;
  /** @type {SourceSupervisor | null} */
  #source = null;
  /** @type {{capture: CaptureLike, time: number} | null} the source's clock when the session started */
  #clockStart = null;
  #startedAt = 0;
  /** ms of the recording where the last replay began, for `reconnected` */
  #replayedFromMs = 0;
  #reconnects = 0;

  /** @param {SessionOptions} options  the source's and the replay's @param {AudioHost} host */
  constructor(options, host) {
    this.#options = options;
    this.#host = host;
  }

  /** The replay accounting, once the first grant set its rate (null before). */
  get replay() {
    return this.#replay;
  }

  /** The audio clock: ms captured so far, at the provider's rate. */
  get audioMs() {
    return this.#replay ? this.#replay.audioMs : 0;
  }

  /** The live source, or null. */
  get capture() {
    return this.#source ? this.#source.capture : null;
  }

  /** The first grant is here: the replay accounting runs at its rate. @param {Grant} grant */
  prepare(grant) {
    const o = this.#options;
    this.#replay = new ReplayAccounting({ sampleRate: grant.sample_rate, maxMs: o.maxReplayMs ?? 30000, stallMs: o.backpressureStallMs ?? 15000 });
  }

  /** The source the grant asks for, opened (not live until use()). @param {Grant} grant */
  open(grant) {
    const o = this.#options;
    const host = this.#host;
    this.#source = new SourceSupervisor({
      create: o.source ?? o.createSource, microphone: o.microphone, deviceId: o.deviceId, audioContext: o.audioContext,
      mediaStream: o.mediaStream, echoCancellation: o.echoCancellation, noiseSuppression: o.noiseSuppression,
      autoGainControl: o.autoGainControl, workletUrl: o.workletUrl, resumeTimeoutMs: o.resumeTimeoutMs,
    }, {
      outRate: grant.sample_rate,
      frameSamples: grant.frame_samples,
      pacing: host.link.capabilities ? host.link.capabilities.pacing : 'fast',
      onFrame: (pcm) => this.#onFrame(pcm),
      onLevel: host.level,
      canSend: () => this.canSend(),
      over: () => isFinal(host.state()) || host.state() === 'stopping',
      report: host.emit,
      lost: host.sourceLost,
    });
    return this.#source.open();
  }

  /**
   * The opened source is the live one; the clocks diagnostics compare start now.
   * @param {CaptureLike} capture @param {number} now  ms, the wall clock
   */
  use(capture, now) {
    /** @type {SourceSupervisor} */ (this.#source).use(capture);
    this.#startedAt = now;
    // A caller's AudioContext may have run long before this session: its clock counts from its own start.
    const ctx = capture.context;
    if (ctx && typeof ctx.currentTime === 'number') this.#clockStart = { capture, time: ctx.currentTime };
  }

  /**
   * Backpressure for a source that can wait: hold it while the provider is not taking audio, while the socket's
   * send buffer holds more than MAX_SEND_AHEAD_MS of it, or while one more frame would push audio no final covers
   * out of the replay buffer (it could not be sent again after a drop). Asking the client's bufferedMs() is also
   * what gives up a socket whose buffer never drains: held here, the source sends nothing that would notice.
   */
  canSend() {
    const state = this.#host.state();
    const grant = this.#host.link.grant;
    const client = this.#host.link.client;
    if (state === 'stopping') return true;
    if (state !== 'streaming' || this.#host.lost() || !this.#replay || !grant) return false;
    if (client && client.bufferedMs() > MAX_SEND_AHEAD_MS) return false;
    return this.#replay.roomFor((grant.frame_samples * 1000) / grant.sample_rate, this.#now());
  }

  /** ms, the host's clock (the wall clock unless a test sets one) */
  #now() {
    return (this.#host.now ?? Date.now)();
  }

  /** @param {Int16Array} pcm */
  #onFrame(pcm) {
    if (isFinal(this.#host.state()) || !this.#replay) return;
    // While reconnecting, live frames only go to the buffer: the replay keeps their order.
    const outage = this.#host.lost();
    this.#emitAll(this.#replay.push(pcm, outage));
    const client = this.#host.link.client;
    if (!outage && client) client.sendAudio(pcm);
  }

  /** @param {import('./replay-accounting.js').DroppedEvent[]} events */
  #emitAll(events) {
    for (const event of events) this.#host.emit(event);
  }

  /** 'terminal-loss': the audio no final covered, held or already pushed out, is lost (said before the end). */
  terminalLoss() {
    if (this.#replay) this.#emitAll(this.#replay.terminalLoss());
  }

  /** 'outage': what the buffer could not keep is said now; live frames go to the buffer from here. */
  beginOutage() {
    if (this.#replay) this.#emitAll(this.#replay.beginOutage());
  }

  /**
   * 'replay': the new client is ready: the held audio first, in order (live frames went to the buffer until now).
   * @param {Pick<Client, 'sendAudio'>} client @param {boolean} repeats  the provider may say final words again
   */
  replayInto(client, repeats) {
    this.#replayedFromMs = this.#resend(client, repeats);
    this.#reconnects += 1;
  }

  /**
   * The first client was replaced before it started (its grant ran out during the start): the new one gets the
   * audio captured so far, which the old one only queued. Not a reconnect: nothing was sent or lost.
   * @param {Pick<Client, 'sendAudio'>} client  not started: it queues the audio until its provider is ready
   */
  handOver(client) {
    this.#resend(client, false);
  }

  /**
   * The held audio to `client`, its times counted from the first frame. @param {Pick<Client, 'sendAudio'>} client
   * @param {boolean} repeats @returns {number} ms of the recording where that audio begins
   */
  #resend(client, repeats) {
    const { frames, offsetMs, events } = /** @type {ReplayAccounting} */ (this.#replay).replay(repeats);
    this.#emitAll(events);
    for (const frame of frames) client.sendAudio(frame.samples);
    return offsetMs;
  }

  /** 'reconnected': what was replayed and what was lost. @param {number} attempt */
  reconnected(attempt) {
    const droppedMs = this.#replay ? this.#replay.droppedMs : 0;
    this.#host.emit({ type: 'reconnected', replayedMs: Math.round(this.audioMs - this.#replayedFromMs), droppedMs, attempt });
  }

  /** The source's tail (its last frames pass through before this resolves), or nothing without a source. */
  get tail() {
    const source = this.#source;
    return source ? { stop: () => source.stop() } : null;
  }

  /** The source goes (the session is over). */
  release() {
    if (this.#source) this.#source.release();
  }

  /**
   * An interruption of the live source, as its own events would report it (this repository's tests).
   * @param {string} reason @param {import('./session-types.js').InterruptionKind} [kind]
   */
  interrupted(reason, kind) {
    return this.#source ? this.#source.interrupted(reason, kind) : Promise.resolve();
  }

  /** The audio side of diagnostics(). @param {number} now  ms, the wall clock */
  facts(now) {
    return { capture: this.capture, clockStart: this.#clockStart, startedAt: this.#startedAt, now, replay: this.#replay, reconnects: this.#reconnects };
  }
}
