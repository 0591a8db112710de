// One transcription session: grants from the app's server, an audio source (the microphone or a file), and a
// provider client, tied together so that no speech is silently lost:
// - audio captured while the socket is still connecting is queued by the client;
// - a socket that drops mid-session is replaced (fresh grant, exponential backoff with jitter) and the audio not yet
//   covered by a final, plus everything captured while disconnected, is replayed into the new session (bounded, by
//   default 30 s; what falls off the end is reported, never hidden);
// - the new session's times are shifted onto the recording's clock, so the transcript's times run on.
import { startCapture } from './audio/capture.js';
import { createClient } from './providers/client.js';
import { OffsetClock, ReplayBuffer, backoffDelay } from './replay.js';

/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */
/** @typedef {ProviderEvent
 *   | {type: 'reconnecting', attempt: number, delayMs: number, bufferedMs: number, reason: string}
 *   | {type: 'reconnected', replayedMs: number, attempt: number}
 *   | {type: 'dropped', droppedMs: number}
 *   | {type: 'source', message: string, recovered: boolean}} SessionEvent */
/** @typedef {{outRate: number, frameSamples: number, onFrame: (pcm: Int16Array) => void,
 *   onLevel?: (l: {rms: number, peak: number, silent: boolean}) => void,
 *   onInterrupted?: (reason: string, kind?: string) => void}} SourceOptions */
/** @typedef {{stop(): Promise<{frames: number, inSamples: number}>, release(): Promise<void>, contextRate?: number,
 *   deviceLabel?: string, deviceSettings?: MediaTrackSettings, context?: BaseAudioContext | {currentTime: number}}} CaptureLike */

export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {string} code */
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {string} url @param {object} [body] */
export async function postJson(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError('The app server cannot be reached. Is it still running?', 0, 'network');
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const message = data && data.error && data.error.message ? data.error.message : `The server answered ${response.status}.`;
    throw new ApiError(message, response.status, data && data.error ? data.error.code : 'http');
  }
  return data;
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Errors for which another attempt with a fresh grant can help (not: not configured, bad request, forbidden). */
const RETRYABLE_STATUS = new Set([0, 429, 502, 503, 504]);
// A provider without timestamps (Wiro) gives no audio position for its text: keep this much extra audio before
// the estimated end of the last final, so a replay repeats a little rather than loses words; the repeat is then
// cut from the new session's first utterance where it matches the end of what was already final.
const UNTIMED_COMMIT_MARGIN_MS = 2000;
const OVERLAP_MIN_WORDS = 2;

/** @param {string} word */
const plain = (word) => word.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '');

/**
 * Drop the words at the start of `text` that repeat the end of `tail` (at least OVERLAP_MIN_WORDS of them).
 * @param {string[]} tail  the last final words before a reconnect
 * @param {string} text
 */
export function stripOverlap(tail, text) {
  const words = text.split(/\s+/).filter(Boolean);
  const a = tail.map(plain);
  const b = words.map(plain);
  for (let k = Math.min(a.length, b.length); k >= OVERLAP_MIN_WORDS; k--) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = a[a.length - k + i] === b[i];
    if (same) return words.slice(k).join(' ');
  }
  return words.join(' ');
}

export class Session {
  /**
   * @param {{provider: string, tag?: string, deviceId?: string, echoCancellation?: boolean,
   *          noiseSuppression?: boolean, autoGainControl?: boolean,
   *          createSource?: (o: SourceOptions) => Promise<CaptureLike>,
   *          onEvent: (e: SessionEvent & {atMs?: number}) => void,
   *          onLevel?: (l: {rms: number, peak: number, silent: boolean}) => void,
   *          onInterrupted?: (reason: string) => void,
   *          maxReplayMs?: number, maxReconnects?: number, clientOptions?: object}} options
   */
  constructor(options) {
    this.options = options;
    /** @type {any} */
    this.grant = null;
    /** @type {CaptureLike | null} */
    this.capture = null;
    /** @type {any} */
    this.client = null;
    /** @type {ReplayBuffer | null} */
    this.buffer = null;
    this.clock = new OffsetClock();
    this.reconnects = 0;
    this.state = 'idle';
    this.stopping = false;
    this.cancelled = false;
    /** @type {Set<object>} grants whose upstream resources are released */
    this.endedGrants = new Set();
    this.maxReconnects = options.maxReconnects ?? 8;
    /** droppedMs of the buffer when the current disconnect began (drops while connected lose nothing) */
    this.dropBase = 0;
    this.reportedDroppedMs = 0;
    /** @type {Promise<void> | null} resolves once a client is streaming again after a drop */
    this.reconnecting = null;
    /** @type {(() => void) | null} cuts the backoff wait short (Stop during a reconnect) */
    this.wake = null;
    this.startedAt = 0;
    /** @type {ProviderEvent | null} a fatal error held back for one microtask: is it a dropped socket? */
    this.pendingError = null;
    /** @type {string[]} the last final words, for cutting a replay's repeat (untimed providers) */
    this.finalTail = [];
    /** @type {string[] | null} set after a reconnect of an untimed provider, until its first final */
    this.overlapTail = null;
  }

  /** The audio clock: ms of audio captured so far, at the provider's rate. */
  get audioMs() {
    return this.buffer ? Math.round(this.buffer.totalMs) : 0;
  }

  async start() {
    const { provider, tag } = this.options;
    this.grant = await postJson('/api/sessions', tag ? { provider, tag } : { provider });
    if (this.stopping || this.cancelled) {
      this.endUpstream();
      throw new Error('The session was ended before it started.');
    }
    this.buffer = new ReplayBuffer({ sampleRate: this.grant.sample_rate, maxMs: this.options.maxReplayMs ?? 30000 });
    this.client = this.makeClient(this.grant);
    const createSource = this.options.createSource
      ?? ((/** @type {SourceOptions} */ o) => this.openMicrophone(o, this.options.deviceId));
    try {
      this.capture = await createSource(this.sourceOptions());
    } catch (err) {
      this.client.cancel();
      this.endUpstream();
      throw err;
    }
    if (this.stopping || this.cancelled) {
      this.client.cancel();
      await this.capture.release();
      this.endUpstream();
      throw new Error('The session was ended before it started.');
    }
    this.startedAt = Date.now();
    try {
      await this.client.start();
      this.state = 'streaming';
    } catch (err) {
      await this.capture.release();
      this.endUpstream();
      this.state = 'error';
      throw err;
    }
  }

  /**
   * The microphone with the page's processing options.
   * @param {SourceOptions} o
   * @param {string} [deviceId]  default: the system's
   */
  openMicrophone(o, deviceId) {
    return startCapture({
      ...o,
      deviceId,
      echoCancellation: this.options.echoCancellation,
      noiseSuppression: this.options.noiseSuppression,
      autoGainControl: this.options.autoGainControl,
    });
  }

  /** @returns {SourceOptions} */
  sourceOptions() {
    return {
      outRate: this.grant.sample_rate,
      frameSamples: this.grant.frame_samples,
      onFrame: (pcm) => this.onFrame(pcm),
      onLevel: this.options.onLevel,
      onInterrupted: (reason, kind) => { this.onSourceInterrupted(reason, kind); },
    };
  }

  /** @param {Int16Array} pcm */
  onFrame(pcm) {
    if (this.cancelled || !this.buffer) return;
    this.buffer.push(pcm);
    if (this.reconnecting) {
      this.reportDrops();
    } else if (this.client) {
      this.client.sendAudio(pcm);
    }
  }

  /** @param {any} grant */
  makeClient(grant) {
    const client = createClient(grant, {
      ...(this.options.clientOptions ?? {}),
      onEvent: (/** @type {ProviderEvent} */ event) => this.onClientEvent(client, event),
    });
    return client;
  }

  /**
   * @param {any} client
   * @param {ProviderEvent} event
   */
  onClientEvent(client, event) {
    if (client !== this.client || this.cancelled) return; // a replaced client's last words: its session is over
    // A reconnect attempt that fails is retried by reconnectLoop (its start() rejects): not the page's business.
    if (this.state === 'reconnecting' && (event.type === 'error' || event.type === 'closed')) return;
    if (event.type === 'error' && event.fatal && this.state === 'streaming' && this.isTokenExpiry(event.message)) {
      // The provider cut the session because its token expired: a fresh grant continues it.
      this.beginReconnect('the access token expired');
      return;
    }
    if (event.type === 'error' && event.fatal && this.state === 'streaming') {
      // A dropped socket arrives as a fatal error followed at once by closed{clean:false}: wait for the latter.
      this.pendingError = event;
      queueMicrotask(() => {
        if (this.pendingError === event) {
          this.pendingError = null;
          this.state = 'error';
          this.emit(event);
        }
      });
      return;
    }
    if (event.type === 'closed' && !event.clean && this.pendingError) {
      this.pendingError = null;
      this.beginReconnect('the connection was lost');
      return;
    }
    if (event.type === 'closed' && this.state === 'streaming' && !this.stopping) {
      this.emit(event);
      this.beginReconnect('the provider ended the session on its own');
      return;
    }
    if (event.type === 'final') {
      const shifted = this.clock.shiftEvent(event);
      if (this.overlapTail) {
        shifted.text = stripOverlap(this.overlapTail, shifted.text);
        this.overlapTail = null;
      }
      this.commitFinal(shifted);
      this.finalTail = [...this.finalTail, ...shifted.text.split(/\s+/).filter(Boolean)].slice(-40);
      this.emit(shifted);
      return;
    }
    if (event.type === 'partial') {
      const shifted = this.clock.shiftEvent(event);
      if (this.overlapTail) shifted.text = stripOverlap(this.overlapTail, shifted.text);
      this.emit(shifted);
      return;
    }
    this.emit(event);
  }

  /** @param {string} message */
  isTokenExpiry(message) {
    const expiresAt = Number(this.grant && this.grant.expires_at);
    return /expire/i.test(message) || (Number.isFinite(expiresAt) && Date.now() / 1000 >= expiresAt - 5);
  }

  /** @param {{endMs: number | null}} final */
  commitFinal(final) {
    if (!this.buffer || final.endMs === null || final.endMs === undefined) return;
    const timed = this.grant.protocol !== 'wiro';
    this.buffer.commit(timed ? final.endMs : final.endMs - UNTIMED_COMMIT_MARGIN_MS);
  }

  /** @param {SessionEvent} event */
  emit(event) {
    try {
      this.options.onEvent({ ...event, atMs: this.audioMs });
    } catch (err) {
      console.error('session event listener failed', err);
    }
  }

  reportDrops() {
    if (!this.buffer) return;
    const dropped = Math.round(this.buffer.droppedMs - this.dropBase);
    if (dropped > this.reportedDroppedMs) {
      this.reportedDroppedMs = dropped;
      this.emit({ type: 'dropped', droppedMs: dropped });
    }
  }

  /** @param {string} reason */
  beginReconnect(reason) {
    if (this.reconnecting || this.cancelled) return;
    this.state = 'reconnecting';
    this.dropBase = this.buffer ? this.buffer.droppedMs : 0;
    this.reportedDroppedMs = 0;
    const old = this.client;
    this.client = null;
    this.reconnecting = this.reconnectLoop(reason, old).finally(() => { this.reconnecting = null; });
    this.reconnecting.catch(() => {});
  }

  /**
   * @param {string} reason
   * @param {any} old
   */
  async reconnectLoop(reason, old) {
    if (old) old.cancel();
    this.endUpstream(false, this.grant);
    let lastError = reason;
    for (let attempt = 1; attempt <= this.maxReconnects && !this.cancelled; attempt++) {
      const delayMs = this.stopping ? 0 : backoffDelay(attempt - 1);
      this.emit({ type: 'reconnecting', attempt, delayMs, bufferedMs: this.bufferedMs(), reason: lastError });
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wake = () => { clearTimeout(timer); resolve(undefined); };
      });
      this.wake = null;
      if (this.cancelled) return;
      try {
        const grant = await postJson('/api/sessions', this.grant.tag && this.grant.provider !== 'local'
          ? { provider: this.grant.provider, tag: this.grant.tag } : { provider: this.grant.provider });
        if (this.cancelled) {
          this.endUpstream(false, grant);
          return;
        }
        const client = this.makeClient(grant);
        this.client = client;
        this.grant = grant;
        // Hold live frames back (they go to the buffer) until the replay is sent, so order is kept.
        const ready = client.start();
        await ready;
        if (this.cancelled || this.client !== client) return;
        const held = this.buffer ? this.buffer.replay() : [];
        const offsetMs = held.length ? held[0].startMs : this.audioMs;
        this.clock.startSession(offsetMs);
        if (grant.protocol === 'wiro' && held.length) this.overlapTail = [...this.finalTail];
        for (const frame of held) client.sendAudio(frame.samples);
        this.reconnects += 1;
        this.state = 'streaming';
        this.emit({ type: 'reconnected', replayedMs: Math.round(this.audioMs - offsetMs), attempt });
        this.emit({ type: 'state', state: 'streaming' });
        return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        if (this.client) this.client.cancel();
        this.client = null;
        this.endUpstream(false, this.grant);
        if (err instanceof ApiError && !RETRYABLE_STATUS.has(err.status)) break;
      }
    }
    if (this.cancelled) return;
    this.state = 'error';
    this.emit({ type: 'error', fatal: true, message: `Could not reconnect: ${lastError}` });
    throw new Error(lastError);
  }

  bufferedMs() {
    return this.buffer ? Math.round(this.buffer.pendingMs) : 0;
  }

  /**
   * The microphone went away or audio processing stopped. Try to recover without ending the session: resume a
   * suspended context, or reopen the (default) microphone for a device that was unplugged.
   * @param {string} reason
   * @param {string} [kind]
   */
  async onSourceInterrupted(reason, kind) {
    if (this.cancelled || this.stopping) return;
    const capture = this.capture;
    if (kind === 'suspended' && capture && capture.context && 'resume' in capture.context) {
      try {
        await /** @type {AudioContext} */ (capture.context).resume();
        this.emit({ type: 'source', message: `${reason} Resumed.`, recovered: true });
        return;
      } catch { /* fall through to reopening */ }
    }
    if ((kind === 'ended' || kind === 'suspended' || kind === 'closed') && !this.options.createSource) {
      try {
        if (capture) await capture.release();
        // The chosen device went away: the system default is the one most likely to be there.
        const next = await this.openMicrophone(this.sourceOptions());
        if (this.cancelled || this.stopping) {
          await next.release();
          return;
        }
        this.capture = next;
        this.emit({ type: 'source', message: `${reason} Switched to the default microphone.`, recovered: true });
        return;
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        this.emit({ type: 'source', message: `${reason} ${detail}`, recovered: false });
        return;
      }
    }
    this.emit({ type: 'source', message: reason, recovered: false });
  }

  /** Graceful: the resampler's tail is sent, then the provider is asked to finish and its last finals arrive. */
  async stop() {
    this.stopping = true;
    try {
      if (this.capture) await this.capture.stop();
      if (this.reconnecting) {
        if (this.wake) this.wake();
        await this.reconnecting.catch(() => {});
      }
      if (this.client) await this.client.stop();
    } finally {
      this.state = 'idle';
      this.endUpstream();
    }
  }

  cancel() {
    this.cancelled = true;
    if (this.wake) this.wake();
    if (this.capture) this.capture.release();
    if (this.client) this.client.cancel();
    this.state = 'idle';
    this.endUpstream();
  }

  /**
   * Tell the server a grant is finished with, so it can release what it holds upstream (a billed Wiro task).
   * @param {boolean} [beacon] use navigator.sendBeacon (pagehide)
   * @param {any} [grant] default: the current grant
   */
  endUpstream(beacon = false, grant = this.grant) {
    if (!grant || !grant.session_id || this.endedGrants.has(grant)) return;
    this.endedGrants.add(grant);
    const url = `/api/sessions/${encodeURIComponent(grant.provider)}/${encodeURIComponent(grant.session_id)}/end`;
    if (beacon && navigator.sendBeacon) {
      navigator.sendBeacon(url);
    } else {
      fetch(url, { method: 'POST', credentials: 'same-origin', keepalive: true }).catch(() => {});
    }
  }

  /** What a bug report needs, as plain values. */
  diagnostics() {
    const capture = this.capture;
    const grant = this.grant || {};
    const settings = (capture && capture.deviceSettings) || {};
    const contextRate = capture && capture.contextRate ? capture.contextRate : null;
    const frameSamples = grant.frame_samples || 0;
    const ctx = capture && capture.context;
    const elapsedS = ctx && typeof ctx.currentTime === 'number' ? ctx.currentTime : (Date.now() - this.startedAt) / 1000;
    return {
      provider: grant.provider ?? null,
      protocol: grant.protocol ?? null,
      browser: typeof navigator !== 'undefined' ? navigator.userAgent : '',
      deviceLabel: (capture && capture.deviceLabel) || '',
      deviceRate: settings.sampleRate ?? null,
      contextRate,
      providerRate: grant.sample_rate ?? null,
      ratio: contextRate && grant.sample_rate ? `${contextRate} → ${grant.sample_rate} (×${(grant.sample_rate / contextRate).toFixed(4)})` : null,
      framesSent: this.buffer && frameSamples ? Math.floor((this.buffer.totalSamples) / frameSamples) : 0,
      framesExpected: frameSamples && grant.sample_rate && this.startedAt ? Math.floor((elapsedS * grant.sample_rate) / frameSamples) : 0,
      clientFramesSent: this.client ? this.client.framesSent : 0,
      socketState: this.client ? this.client.socketState : (this.reconnecting ? 'reconnecting' : 'none'),
      sessionState: this.state,
      reconnects: this.reconnects,
      tokenExpiresAt: grant.expires_at ? new Date(grant.expires_at * 1000).toISOString() : null,
      bufferedMs: this.bufferedMs(),
      droppedMs: this.reportedDroppedMs,
    };
  }
}
