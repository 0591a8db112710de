// One transcription session: grants from the app's server, an audio source (the microphone or a file), and a
// provider client, tied together so that no speech is silently lost:
// - audio captured while the socket is still connecting is queued by the client;
// - a socket that drops mid-session (or while finishing) is replaced (fresh grant, exponential backoff with jitter)
//   and the audio not yet covered by a final, plus everything captured while disconnected, is replayed into the new
//   session (bounded, by default 30 s); audio that could not be replayed is reported, never hidden;
// - a file is held back while the replay buffer is full, instead of pushing unreplayable audio out of it;
// - the new session's times are shifted onto the recording's clock, so the transcript's times run on.
// Where the session is lives in one place: a StateMachine (session-state.js), reported through onStateChange.
import { startCapture } from './audio/capture.js';
import { capabilitiesFor, createClient } from './providers/client.js';
import { OffsetClock, ReplayBuffer, backoffDelay } from './replay.js';
import { StateMachine } from './session-state.js';

/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./providers/client.js').Capabilities} Capabilities */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./session-state.js').SessionState} SessionState */
/** @typedef {import('./session-state.js').StateDetail} StateDetail */
/** @typedef {import('./session-state.js').StateListener} StateListener */
/** @typedef {{rms: number, peak: number, silent: boolean}} Level */
/** @typedef {'ended'|'suspended'|'closed'|'interrupted'} InterruptionKind */
/** @typedef {Exclude<ProviderEvent, {type: 'state'}>
 *   | {type: 'reconnecting', attempt: number, delayMs: number, bufferedMs: number, reason: string}
 *   | {type: 'reconnected', replayedMs: number, droppedMs: number, attempt: number}
 *   | {type: 'dropped', droppedMs: number}
 *   | {type: 'source', message: string, recovered: boolean}} SessionEvent */
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
 *   deviceLabel?: string, deviceSettings?: MediaTrackSettings,
 *   context?: {currentTime: number, state?: string, resume?: () => Promise<void>}}} CaptureLike
 */
/**
 * @typedef {object} SessionOptions
 * @property {string} provider
 * @property {string} [tag]
 * @property {string} [deviceId]
 * @property {boolean} [echoCancellation]
 * @property {boolean} [noiseSuppression]
 * @property {boolean} [autoGainControl]
 * @property {(o: SourceOptions) => Promise<CaptureLike>} [createSource]  a source other than the microphone (a
 *   file): it is not reopened when interrupted
 * @property {(o: SourceOptions & {deviceId?: string}) => Promise<CaptureLike>} [microphone]  opens the microphone
 *   (default: startCapture with the options above); called again to recover from an unplugged device
 * @property {AudioContext} [audioContext]  the caller's, for the microphone (made inside a click for Safari);
 *   the caller closes it
 * @property {MediaStream} [mediaStream]  the caller's microphone stream; reopened from the default device only if
 *   it ends
 * @property {(e: SessionEvent & {atMs?: number}) => void} onEvent
 * @property {StateListener} [onStateChange]
 * @property {(l: Level) => void} [onLevel]
 * @property {number} [maxReplayMs]
 * @property {number} [maxReconnects]
 * @property {number} [resumeTimeoutMs]  how long a suspended audio context may take to resume (default 2000)
 * @property {number} [backpressureStallMs]  a source held back this long without a final goes on anyway (default
 *   15000): a provider that needs more audio before its next final must not wait forever
 * @property {() => number} [now]  ms, for the stall above (default Date.now)
 * @property {number} [grantTimeoutMs]  how long a grant request may take before it counts as failed (default 20000)
 * @property {number} [stopTimeoutMs]  the most stop() waits for the last finals, reconnects included (default
 *   30000); past it the session ends in `error` and says how much audio was not transcribed
 * @property {import('./providers/stream.js').ClientOptions} [clientOptions]
 */

export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {string} code */
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * POST JSON to the app server; the parsed answer, or an ApiError with the server's message.
 * @param {string} url
 * @param {object} [body]
 * @param {{timeoutMs?: number}} [options]  give up (status 0, retryable) after this long; 0: wait as long as fetch does
 * @returns {Promise<unknown>}
 */
export function postJson(url, body, { timeoutMs = 0 } = {}) {
  if (!(timeoutMs > 0)) return postJsonOnce(url, body, null);
  // A fetch on a network that went away without saying so can hang for minutes: a reconnect (and a Stop waiting
  // for it) must not.
  const abort = typeof AbortController === 'function' ? new AbortController() : null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {Promise<never>} */
  const timedOut = new Promise((_, reject) => {
    timer = setTimeout(() => {
      if (abort) abort.abort();
      reject(new ApiError(`The app server did not answer within ${Math.round(timeoutMs / 100) / 10} s.`, 0, 'timeout'));
    }, timeoutMs);
  });
  return Promise.race([postJsonOnce(url, body, abort ? abort.signal : null), timedOut]).finally(() => clearTimeout(timer));
}

/**
 * @param {string} url
 * @param {object | undefined} body
 * @param {AbortSignal | null} signal
 * @returns {Promise<unknown>}
 */
async function postJsonOnce(url, body, signal) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      credentials: 'same-origin',
      ...(signal ? { signal } : {}),
    });
  } catch {
    throw new ApiError('The app server cannot be reached. Is it still running?', 0, 'network');
  }
  /** @type {unknown} */
  let data = null;
  try { data = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const error = typeof data === 'object' && data !== null && 'error' in data ? data.error : null;
    const field = (/** @type {string} */ name) => {
      const v = typeof error === 'object' && error !== null && name in error ? /** @type {Record<string, unknown>} */ (error)[name] : null;
      return typeof v === 'string' && v ? v : null;
    };
    throw new ApiError(field('message') ?? `The server answered ${response.status}.`, response.status, field('code') ?? 'http');
  }
  return data;
}

/** Errors for which another attempt with a fresh grant can help (not: not configured, bad request, forbidden). */
const RETRYABLE_STATUS = new Set([0, 429, 502, 503, 504]);
// A provider without timestamps (Wiro) gives no audio position for its text: keep this much extra audio before
// the estimated end of the last final, so a replay repeats a little rather than loses words; the repeat is then
// cut from the new session's first utterance where it matches the end of what was already final.
const UNTIMED_COMMIT_MARGIN_MS = 2000;
const OVERLAP_MIN_WORDS = 2;
// While disconnected, loss grows with every frame the replay buffer pushes out: it is announced when it starts and
// then only when it has grown this much more (the exact figure follows with the reconnect or the end), so the
// page's live region is not read out several times a second.
const DROP_REPORT_STEP_MS = 5000;
const DEFAULT_STOP_TIMEOUT_MS = 30000;

/** @param {unknown} err @returns {string | undefined} the code a CaptureError or ApiError carries */
function codeOf(err) {
  const code = err && typeof err === 'object' && 'code' in err ? err.code : undefined;
  return typeof code === 'string' && code ? code : undefined;
}

/** @param {string} word */
const plain = (word) => word.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '');

/**
 * Drop the words at the start of `text` that repeat the end of `tail`: a replay after a reconnect without the
 * provider's times sends audio again from before the estimated end of the last final, so the next session hears
 * those words a second time, from a point that may fall inside a word, and not always as they were heard the first
 * time ("though weather is nigh" came back as "the lead is nigh"). The repeat is the prefix of `text` that best
 * matches an end of `tail` word by word (a word heard otherwise costs one, a word more or less costs one); it is cut
 * when at least OVERLAP_MIN_WORDS words match and at most half of its words differ.
 * @param {string[]} tail  the last final words before a reconnect
 * @param {string} text
 */
export function stripOverlap(tail, text) {
  const words = text.split(/\s+/).filter(Boolean);
  const a = tail.map(plain);
  const b = words.map(plain);
  // cost[k] / matched[k]: the best alignment of the first i words of `text` with the words of `tail` that end at k,
  // starting anywhere in `tail` (so row 0 costs nothing: the repeat may begin at any word).
  let cost = new Array(a.length + 1).fill(0);
  let matched = new Array(a.length + 1).fill(0);
  let best = { cut: 0, cost: Infinity };
  for (let i = 1; i <= Math.min(b.length, a.length + OVERLAP_MIN_WORDS); i++) {
    const nextCost = [i];
    const nextMatched = [0];
    for (let k = 1; k <= a.length; k++) {
      const same = a[k - 1] === b[i - 1];
      /** @type {[number, number][]} (cost, matched) of: a word of `text` more, of `tail` more, the pair */
      const ways = [
        [cost[k] + 1, matched[k]],
        [nextCost[k - 1] + 1, nextMatched[k - 1]],
        [cost[k - 1] + (same ? 0 : 1), matched[k - 1] + (same ? 1 : 0)],
      ];
      const [c, m] = ways.reduce((x, y) => (y[0] < x[0] || (y[0] === x[0] && y[1] > x[1]) ? y : x));
      nextCost.push(c);
      nextMatched.push(m);
    }
    cost = nextCost;
    matched = nextMatched;
    const c = cost[a.length];
    // The cheapest cut wins; on a tie the longer one (a repeated word at the seam is the repeat, "go go go").
    if (matched[a.length] >= OVERLAP_MIN_WORDS && 2 * c <= i && c <= best.cost) best = { cut: i, cost: c };
  }
  return words.slice(best.cut).join(' ');
}

export class Session {
  /** @param {SessionOptions} options */
  constructor(options) {
    this.options = options;
    this.machine = new StateMachine((from, to, detail) => options.onStateChange?.(from, to, detail));
    /** @type {Grant | null} */
    this.grant = null;
    /** @type {Capabilities | null} */
    this.capabilities = null;
    /** @type {CaptureLike | null} */
    this.capture = null;
    /** @type {Client | null} the client audio goes to */
    this.client = null;
    /** @type {Client | null} a reconnect attempt's client, until it is ready */
    this.attempt = null;
    /** @type {ReplayBuffer | null} */
    this.buffer = null;
    this.clock = new OffsetClock();
    this.reconnects = 0;
    /** @type {Set<Grant>} grants whose upstream resources are released */
    this.endedGrants = new Set();
    this.maxReconnects = options.maxReconnects ?? 8;
    /** Audio reported lost before the current disconnect (ms). */
    this.lostBeforeMs = 0;
    /** Audio known lost so far (ms), whether or not announced yet. */
    this.reportedDroppedMs = 0;
    /** The figure the last `dropped` event carried, and the one it carried when the current outage began. */
    this.announcedDroppedMs = 0;
    this.outageAnnouncedMs = 0;
    /** @type {{capture: CaptureLike, time: number} | null} the source's clock when this session started */
    this.clockStart = null;
    /** @type {StateDetail | null} the microphone is gone for good: the stop under way ends in this error */
    this.sourceFailure = null;
    /** @type {Promise<void> | null} resolves once a client is streaming again after a drop */
    this.reconnecting = null;
    /** @type {(() => void) | null} cuts the backoff wait short (Stop or Cancel during a reconnect) */
    this.wake = null;
    this.startedAt = 0;
    /** @type {string[]} the last final words, for cutting a replay's repeat */
    this.finalTail = [];
    /** @type {string[] | null} set after a reconnect that may repeat words, until its first final */
    this.overlapTail = null;
    /** Each opened source gets a number; interruptions from any but the current one are stale. */
    this.sourceGeneration = 0;
    /** @type {Promise<void>} microphone recoveries, one after another */
    this.recovery = Promise.resolve();
    /** @type {number | null} when (options.now) a source was first held back with no final since */
    this.heldSince = null;
    /** @type {Promise<void> | null} the one stop() */
    this.stopping = null;
  }

  /** @returns {SessionState} */
  get state() {
    return this.machine.state;
  }

  /** The audio clock: ms of audio captured so far, at the provider's rate. */
  get audioMs() {
    return this.buffer ? Math.round(this.buffer.totalMs) : 0;
  }

  /** Resolves when audio flows to the provider; rejects (and the state is `error`) when it cannot. */
  async start() {
    const { provider, tag } = this.options;
    this.machine.to('starting');
    /** @type {Grant} */
    let grant;
    try {
      grant = /** @type {Grant} */ (await postJson('/api/sessions', tag ? { provider, tag } : { provider }, this.grantRequest()));
    } catch (err) {
      if (this.machine.is('starting')) this.fail(err);
      throw err;
    }
    this.grant = grant;
    if (!this.machine.is('starting')) {
      this.endUpstream();
      throw new Error('The session was ended before it started.');
    }
    try {
      this.capabilities = capabilitiesFor(grant);
      this.buffer = new ReplayBuffer({ sampleRate: grant.sample_rate, maxMs: this.options.maxReplayMs ?? 30000 });
      this.client = this.makeClient(grant);
    } catch (err) {
      this.fail(err);
      throw err;
    }
    const client = this.client;
    let capture;
    try {
      capture = await this.openSource();
    } catch (err) {
      client.cancel();
      if (this.machine.is('starting')) this.fail(err);
      else this.endUpstream();
      throw err;
    }
    if (!this.machine.is('starting')) {
      client.cancel();
      await capture.release();
      this.endUpstream();
      throw new Error('The session was ended before it started.');
    }
    this.capture = capture;
    this.startedAt = Date.now();
    // A caller's AudioContext may have run long before this session: its clock counts from its own start.
    const ctx = capture.context;
    if (ctx && typeof ctx.currentTime === 'number') this.clockStart = { capture, time: ctx.currentTime };
    this.machine.to('connecting');
    try {
      await client.start();
    } catch (err) {
      if (this.machine.is('connecting', 'stopping')) {
        await capture.release();
        this.fail(err);
      }
      throw err;
    }
    if (this.machine.is('connecting')) this.machine.to('streaming');
  }

  /** The first source: the caller's (a file), else the microphone. */
  openSource() {
    const create = this.options.createSource;
    return create ? create(this.sourceOptions()) : this.openMicrophone(this.options.deviceId);
  }

  /**
   * The microphone with the page's processing options.
   * @param {string} [deviceId]  default: the system's
   */
  openMicrophone(deviceId) {
    const o = { ...this.sourceOptions(), deviceId };
    if (this.options.microphone) return this.options.microphone(o);
    return startCapture({
      ...o,
      context: this.options.audioContext,
      stream: this.options.mediaStream,
      echoCancellation: this.options.echoCancellation,
      noiseSuppression: this.options.noiseSuppression,
      autoGainControl: this.options.autoGainControl,
    });
  }

  /** @returns {SourceOptions} for the next source opened; its interruptions are ignored once it is replaced */
  sourceOptions() {
    const grant = /** @type {Grant} */ (this.grant);
    const generation = ++this.sourceGeneration;
    return {
      outRate: grant.sample_rate,
      frameSamples: grant.frame_samples,
      onFrame: (pcm) => this.onFrame(pcm),
      onLevel: this.options.onLevel,
      onInterrupted: (reason, kind) => { this.onSourceInterrupted(reason, kind, generation); },
      canSend: () => this.canSend(),
      pacing: this.capabilities ? this.capabilities.pacing : 'fast',
    };
  }

  /**
   * Backpressure for a source that can wait: hold it while the provider is not taking audio, or while one more
   * frame would push audio no final covers out of the replay buffer (it could not be sent again after a drop).
   */
  canSend() {
    const buffer = this.buffer;
    const grant = this.grant;
    if (this.machine.is('stopping')) return true;
    if (!this.machine.is('streaming') || this.reconnecting || !buffer || !grant) return false;
    const frameMs = (grant.frame_samples * 1000) / grant.sample_rate;
    if (buffer.pendingMs + frameMs <= buffer.maxMs) {
      this.heldSince = null;
      return true;
    }
    const now = (this.options.now ?? Date.now)();
    this.heldSince ??= now;
    return now - this.heldSince >= (this.options.backpressureStallMs ?? 15000);
  }

  /** @param {Int16Array} pcm */
  onFrame(pcm) {
    if (this.machine.final || !this.buffer) return;
    this.buffer.push(pcm);
    if (this.reconnecting) {
      this.reportDrops(true);
    } else if (this.client) {
      this.client.sendAudio(pcm);
    }
  }

  /** @param {Grant} grant @returns {Client} */
  makeClient(grant) {
    /** @type {Client} */
    const client = createClient(grant, {
      ...(this.options.clientOptions ?? {}),
      onEvent: (event) => this.onClientEvent(client, event),
    });
    return client;
  }

  /**
   * @param {Client} client
   * @param {ProviderEvent} event
   */
  onClientEvent(client, event) {
    if (this.machine.is('cancelled')) return;
    // A reconnect attempt that fails is retried by reconnectLoop (its start() rejects): not the page's business.
    if (client === this.attempt && (event.type === 'error' || event.type === 'closed')) return;
    if (client !== this.client) return; // a replaced client's last words: its session is over
    switch (event.type) {
      case 'state':
        return; // the client's own states are details of the session's
      case 'error':
        if (event.fatal && (event.cause === 'transport' || event.cause === 'expired')
            && this.machine.is('streaming', 'stopping')) {
          this.beginReconnect(event.cause === 'expired' ? 'the access token expired' : event.message);
          return;
        }
        if (event.fatal) this.reportTerminalLoss();
        this.emit(event);
        if (event.fatal && !this.machine.final) this.fail(new Error(event.message));
        return;
      case 'closed':
        if (this.machine.is('streaming')) {
          this.emit(event);
          this.beginReconnect('the provider ended the session on its own');
          return;
        }
        this.emit(event);
        return;
      case 'final': {
        const shifted = this.clock.shiftEvent(event);
        if (this.overlapTail && shifted.text) {
          shifted.text = stripOverlap(this.overlapTail, shifted.text);
          this.overlapTail = null;
        }
        this.commitFinal(shifted);
        this.finalTail = [...this.finalTail, ...shifted.text.split(/\s+/).filter(Boolean)].slice(-40);
        this.emit(shifted);
        return;
      }
      case 'partial': {
        const shifted = this.clock.shiftEvent(event);
        if (this.overlapTail) shifted.text = stripOverlap(this.overlapTail, shifted.text);
        this.emit(shifted);
        return;
      }
      default:
        this.emit(event);
    }
  }

  /** @param {{endMs: number | null}} final */
  commitFinal(final) {
    if (!this.buffer || final.endMs === null || final.endMs === undefined) return;
    const timed = this.capabilities ? this.capabilities.timedWords : true;
    this.buffer.commit(timed ? final.endMs : final.endMs - UNTIMED_COMMIT_MARGIN_MS);
    this.heldSince = null;
  }

  /** @param {SessionEvent} event  nothing reaches the page once the session is over (a client's `closed` after
   * the session's error, say): what the end means is said before it */
  emit(event) {
    if (this.machine.final) return;
    try {
      this.options.onEvent({ ...event, atMs: this.audioMs });
    } catch (err) {
      console.error('session event listener failed', err);
    }
  }

  /**
   * Report the audio lost so far, when it grew.
   * @param {boolean} [ongoing]  called per frame during an outage: announce the start of a loss, then only steps
   */
  reportDrops(ongoing = false) {
    if (!this.buffer) return;
    this.announceLoss(Math.round(this.lostBeforeMs + this.buffer.gapMs), ongoing);
  }

  /**
   * @param {number} dropped  audio lost so far (ms)
   * @param {boolean} ongoing
   */
  announceLoss(dropped, ongoing) {
    if (dropped > this.reportedDroppedMs) this.reportedDroppedMs = dropped;
    const grown = this.reportedDroppedMs - this.announcedDroppedMs;
    if (grown <= 0) return;
    const firstOfOutage = this.announcedDroppedMs === this.outageAnnouncedMs;
    if (ongoing && !firstOfOutage && grown < DROP_REPORT_STEP_MS) return;
    this.announcedDroppedMs = this.reportedDroppedMs;
    this.emit({ type: 'dropped', droppedMs: this.reportedDroppedMs });
  }

  /**
   * The session is ending without a replay: the audio no final covered, held or already pushed out, is lost.
   * Said before the end, since nothing reaches the page after it.
   */
  reportTerminalLoss() {
    if (!this.buffer || this.machine.final) return;
    this.announceLoss(Math.round(this.lostBeforeMs + this.buffer.gapMs + this.buffer.pendingMs), false);
  }

  /** @param {unknown} err  the session is over: state `error`, everything released */
  fail(err) {
    const message = err instanceof Error ? err.message : String(err);
    if (this.machine.final) return;
    this.reportTerminalLoss();
    const code = codeOf(err);
    this.machine.to('error', code ? { message, code } : { message });
    if (this.wake) this.wake();
    if (this.capture) this.capture.release();
    if (this.client) this.client.cancel();
    if (this.attempt) this.attempt.cancel();
    this.endUpstream();
  }

  /** @param {string} reason */
  beginReconnect(reason) {
    if (this.reconnecting || this.machine.final) return;
    const old = this.client;
    this.client = null;
    this.outageAnnouncedMs = this.announcedDroppedMs;
    // What no final covered and the buffer could not keep is lost from here on: say so now.
    this.reportDrops();
    this.reconnecting = this.reconnectLoop(reason, old).finally(() => { this.reconnecting = null; });
    this.reconnecting.catch(() => {});
  }

  /**
   * @param {string} reason
   * @param {Client | null} old
   */
  async reconnectLoop(reason, old) {
    if (old) old.cancel();
    this.endUpstream(false, this.grant);
    let lastError = reason;
    /** @type {unknown} the last attempt's failure, whose code the final error carries */
    let lastFailure = null;
    const first = /** @type {Grant} */ (this.grant);
    for (let attempt = 1; attempt <= this.maxReconnects; attempt++) {
      const finishing = this.machine.is('stopping');
      const delayMs = finishing ? 0 : backoffDelay(attempt - 1);
      const bufferedMs = this.bufferedMs();
      if (!finishing) this.machine.to('reconnecting', { attempt, delayMs, bufferedMs, reason: lastError });
      this.emit({ type: 'reconnecting', attempt, delayMs, bufferedMs, reason: lastError });
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wake = () => { clearTimeout(timer); resolve(undefined); };
      });
      this.wake = null;
      if (this.machine.final) return;
      /** @type {Grant | null} */
      let grant = null;
      try {
        grant = /** @type {Grant} */ (await postJson('/api/sessions', this.reconnectRequest(first), this.grantRequest()));
        if (this.machine.final) {
          this.endUpstream(false, grant);
          return;
        }
        const client = this.makeClient(grant);
        this.attempt = client;
        this.grant = grant;
        this.capabilities = capabilitiesFor(grant);
        await client.start();
        this.attempt = null;
        if (this.machine.final) {
          client.cancel();
          return;
        }
        this.client = client;
        // Live frames went to the buffer until now: the replay keeps their order.
        const buffer = /** @type {ReplayBuffer} */ (this.buffer);
        this.reportDrops();
        const held = buffer.replay();
        const offsetMs = held.length ? held[0].startMs : this.audioMs;
        this.clock.startSession(offsetMs);
        if (this.capabilities.replayRepeats && held.length) this.overlapTail = [...this.finalTail];
        for (const frame of held) client.sendAudio(frame.samples);
        buffer.markReplayed();
        // The stall escape is for a session that had its chance to give a final: this one has not had any yet.
        this.heldSince = null;
        this.lostBeforeMs = this.reportedDroppedMs;
        this.reconnects += 1;
        if (this.machine.is('reconnecting')) this.machine.to('streaming');
        this.emit({
          type: 'reconnected', replayedMs: Math.round(this.audioMs - offsetMs), droppedMs: this.reportedDroppedMs, attempt,
        });
        return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        lastFailure = err;
        if (this.attempt) this.attempt.cancel();
        this.attempt = null;
        if (grant) this.endUpstream(false, grant);
        if (err instanceof ApiError && !RETRYABLE_STATUS.has(err.status)) break;
      }
    }
    if (this.machine.final) return;
    const message = `Could not reconnect: ${lastError}`;
    this.reportTerminalLoss();
    this.emit({ type: 'error', fatal: true, message, cause: 'transport' });
    this.fail(lastFailure instanceof ApiError ? new ApiError(message, lastFailure.status, lastFailure.code) : new Error(message));
  }

  /**
   * A fresh grant like the first: same provider, and the same model where the provider lets the page choose one.
   * @param {Grant} first
   */
  reconnectRequest(first) {
    const { provider, tag } = this.options;
    const chosen = tag ?? (capabilitiesFor(first).tagsListing ? first.tag : undefined);
    return chosen ? { provider, tag: chosen } : { provider };
  }

  grantRequest() {
    return { timeoutMs: this.options.grantTimeoutMs ?? 20000 };
  }

  bufferedMs() {
    return this.buffer ? Math.round(this.buffer.pendingMs) : 0;
  }

  /**
   * The microphone went away or audio processing stopped. Try to recover without ending the session: resume a
   * suspended (or, on iOS, interrupted) context, else reopen the (default) microphone. One recovery at a time:
   * a second notice waits for the first and is dropped when the source it came from has been replaced.
   * @param {string} reason
   * @param {InterruptionKind} [kind]
   * @param {number} [generation]  the source that reported it (default: the current one)
   */
  onSourceInterrupted(reason, kind, generation = this.sourceGeneration) {
    const next = this.recovery.then(() => this.recover(reason, kind, generation));
    this.recovery = next.catch(() => {});
    return next;
  }

  /**
   * @param {string} reason
   * @param {InterruptionKind | undefined} kind
   * @param {number} generation
   */
  async recover(reason, kind, generation) {
    if (this.machine.final || this.machine.is('stopping') || generation !== this.sourceGeneration) return;
    const capture = this.capture;
    const context = capture ? capture.context : undefined;
    if ((kind === 'suspended' || kind === 'interrupted') && context && context.resume) {
      try {
        await withTimeout(context.resume(), this.options.resumeTimeoutMs ?? 2000, 'resume timed out');
        if (context.state === undefined || context.state === 'running') {
          this.emit({ type: 'source', message: `${reason} Resumed.`, recovered: true });
          return;
        }
      } catch { /* fall through to reopening */ }
      if (this.machine.final || this.machine.is('stopping')) return;
    }
    if (kind && kind !== 'ended' && kind !== 'suspended' && kind !== 'closed' && kind !== 'interrupted') kind = undefined;
    if (!kind || this.options.createSource) {
      this.emit({ type: 'source', message: reason, recovered: false });
      return;
    }
    try {
      if (capture) {
        await capture.release();
        if (this.capture === capture) this.capture = null;
      }
      // The chosen device went away: the system default is the one most likely to be there.
      const next = await this.openMicrophone();
      if (this.machine.final || this.machine.is('stopping')) {
        await next.release();
        return;
      }
      this.capture = next;
      this.emit({ type: 'source', message: `${reason} Switched to the default microphone.`, recovered: true });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      const message = `${reason} ${detail}`;
      this.emit({ type: 'source', message, recovered: false });
      this.endForSource(message, err);
    }
  }

  /**
   * No microphone and nothing left to try: streaming on would show "Listening" over a dead microphone. The provider
   * is asked for the words it already has (as Stop does), then the session ends in `error` with the cause's code.
   * @param {string} message
   * @param {unknown} err
   */
  endForSource(message, err) {
    if (this.machine.final || this.stopping) return;
    const code = codeOf(err);
    this.sourceFailure = code ? { message, code } : { message };
    this.stop().catch(() => {});
  }

  /** Graceful: the source's tail is sent, then the provider is asked to finish and its last finals arrive. A
   * connection lost meanwhile is replaced and what no final covered is sent again, then that one finishes.
   * Stop again while stopping (a file that ran out stops itself, then the user presses Stop) waits for the same end.
   * @returns {Promise<void>} */
  stop() {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  async stopOnce() {
    if (this.machine.final) return;
    if (this.machine.is('idle')) {
      this.machine.to('stopped');
      return;
    }
    const wasStarting = this.machine.is('starting');
    this.machine.to('stopping');
    if (wasStarting) {
      // start() is waiting for the grant or the source: it sees the state and releases what it got.
      if (this.client) this.client.cancel();
      this.machine.to('stopped');
      this.endUpstream();
      return;
    }
    const boundMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), boundMs); });
    try {
      // An outage can otherwise hold Stop for minutes (each reconnect waits for a grant, then for the socket).
      const outcome = await Promise.race([this.finish().then(() => 'done'), timedOut]);
      if (outcome === 'timeout' && this.machine.is('stopping')) this.giveUpStop(boundMs);
    } finally {
      clearTimeout(timer);
      this.endUpstream();
      if (this.machine.is('stopping')) {
        if (this.sourceFailure) this.machine.to('error', this.sourceFailure);
        else this.machine.to('stopped');
      }
    }
  }

  /** The source's tail, then the provider's last finals, through any reconnects. */
  async finish() {
    if (this.capture) await this.capture.stop();
    for (let round = 0; round <= this.maxReconnects; round++) {
      if (this.reconnecting) {
        if (this.wake) this.wake();
        await this.reconnecting.catch(() => {});
      }
      if (!this.machine.is('stopping')) break;
      if (this.client) await this.client.stop();
      if (!this.reconnecting) break;
    }
  }

  /** @param {number} boundMs  Stop waited this long: end now and say what did not make it */
  giveUpStop(boundMs) {
    this.reportTerminalLoss();
    const lostS = (this.reportedDroppedMs / 1000).toFixed(1);
    const message = `Stopped after ${Math.round(boundMs / 100) / 10} s without the last words: `
      + `${lostS} s of audio were not transcribed.`;
    this.emit({ type: 'error', fatal: true, message, cause: 'transport' });
    this.fail(new Error(message));
  }

  /** Abandon the session now: nothing more reaches onEvent. */
  cancel() {
    if (this.machine.final) return;
    // Audio held during an outage was never sent: cancelling throws it away, and that is said. (Audio already sent
    // is the user's to abandon: the words still in recognition are what Cancel means.)
    if (this.reconnecting) this.reportTerminalLoss();
    this.machine.to('cancelled');
    if (this.wake) this.wake();
    if (this.capture) this.capture.release();
    if (this.client) this.client.cancel();
    if (this.attempt) this.attempt.cancel();
    this.endUpstream();
  }

  /**
   * Tell the server a grant is finished with, so it can release what it holds upstream (a billed Wiro task).
   * @param {boolean} [beacon] use navigator.sendBeacon (pagehide)
   * @param {Grant | null} [grant] default: the current grant
   */
  endUpstream(beacon = false, grant = this.grant) {
    if (!grant || !grant.session_id || this.endedGrants.has(grant)) return;
    this.endedGrants.add(grant);
    const url = `/api/sessions/${encodeURIComponent(grant.provider)}/${encodeURIComponent(grant.session_id)}/end`;
    if (beacon && typeof navigator !== 'undefined' && navigator.sendBeacon) {
      navigator.sendBeacon(url);
    } else {
      fetch(url, { method: 'POST', credentials: 'same-origin', keepalive: true }).catch(() => {});
    }
  }

  /** What a bug report needs, as plain values. */
  diagnostics() {
    const capture = this.capture;
    const grant = this.grant;
    const settings = (capture && capture.deviceSettings) || {};
    const contextRate = capture && capture.contextRate ? capture.contextRate : null;
    const rate = grant ? grant.sample_rate : null;
    const frameSamples = grant ? grant.frame_samples : 0;
    const ctx = capture && capture.context;
    const start = this.clockStart;
    // The source's clock when it is the one this session started with; after a microphone was replaced, the wall
    // clock (the time without a microphone counts as expected frames not sent, which is what happened).
    const elapsedS = ctx && start && start.capture === capture && typeof ctx.currentTime === 'number'
      ? ctx.currentTime - start.time
      : (Date.now() - this.startedAt) / 1000;
    return {
      provider: grant ? grant.provider : undefined,
      protocol: grant ? grant.protocol : undefined,
      browser: typeof navigator !== 'undefined' ? navigator.userAgent : '',
      deviceLabel: (capture && capture.deviceLabel) || '',
      deviceRate: settings.sampleRate ?? null,
      contextRate,
      providerRate: rate,
      ratio: contextRate && rate ? `${contextRate} → ${rate} (×${(rate / contextRate).toFixed(4)})` : null,
      framesSent: this.buffer && frameSamples ? Math.floor(this.buffer.totalSamples / frameSamples) : 0,
      framesExpected: frameSamples && rate && this.startedAt ? Math.floor((elapsedS * rate) / frameSamples) : 0,
      clientFramesSent: this.client ? this.client.framesSent : 0,
      socketState: this.client ? this.client.socketState : (this.reconnecting ? 'reconnecting' : 'none'),
      sessionState: this.state,
      reconnects: this.reconnects,
      tokenExpiresAt: grant && typeof grant.expires_at === 'number' ? new Date(grant.expires_at * 1000).toISOString() : null,
      bufferedMs: this.bufferedMs(),
      droppedMs: this.reportedDroppedMs,
    };
  }
}

/**
 * `promise`, or a rejection with `message` after `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} message
 * @returns {Promise<T>}
 */
export function withTimeout(promise, ms, message) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout])).finally(() => clearTimeout(timer));
}
