// The session's audio source supervisor: opens the source (the caller's, a file, or the microphone with the caller's
// AudioContext, MediaStream and worklet URL), and when it is interrupted tries to recover without ending the session:
// resume a suspended (or, on iOS, interrupted) context, else reopen the default microphone (not after its worklet
// failed: a new one would fail the same way). What happens is handed to the session as `source` events and, when
// nothing is left to try, as a loss; the session decides what that means.
import { CaptureError, startCapture } from './audio/capture.js';

/** @typedef {import('./session.js').SourceOptions} SourceOptions */
/** @typedef {import('./session.js').CaptureLike} CaptureLike */
/** @typedef {import('./session.js').InterruptionKind} InterruptionKind */
/** @typedef {import('./session.js').Level} Level */
/** @typedef {Extract<import('./session.js').SessionEvent, {type: 'source'}>} SourceEvent */

/**
 * What the supervisor opens, from the session's options.
 * @typedef {object} SourceConfig
 * @property {(o: SourceOptions) => Promise<CaptureLike>} [create]  a source that is not reopened (a file)
 * @property {(o: SourceOptions & {deviceId?: string}) => Promise<CaptureLike>} [microphone]
 * @property {string} [deviceId]
 * @property {AudioContext} [audioContext]
 * @property {MediaStream} [mediaStream]
 * @property {boolean} [echoCancellation]
 * @property {boolean} [noiseSuppression]
 * @property {boolean} [autoGainControl]
 * @property {string} [workletUrl]
 * @property {number} [resumeTimeoutMs]  at the start default capture.js's RESUME_TIMEOUT_MS (3000), in a recovery 2000
 */
/**
 * The session's side.
 * @typedef {object} SourceHooks
 * @property {number} outRate
 * @property {number} frameSamples
 * @property {'fast'|'realtime'} pacing
 * @property {(pcm: Int16Array) => void} onFrame
 * @property {(level: Level) => void} onLevel
 * @property {() => boolean} canSend
 * @property {() => boolean} over  the session is ending (stopping or over): no recovery
 * @property {(event: SourceEvent) => void} report
 * @property {(message: string, err: unknown) => void} lost  nothing left to try
 */

const KINDS = new Set(['ended', 'suspended', 'closed', 'interrupted']);

/** How long a context may take to resume in a recovery, unless the session's options say. */
const DEFAULT_RESUME_TIMEOUT_MS = 2000;

export class SourceSupervisor {
  /** @type {SourceConfig} */
  #config;
  /** @type {SourceHooks} */
  #hooks;
  /** @type {CaptureLike | null} the live source */
  #capture = null;
  /** Each opened source gets a number; interruptions from any but the current one are stale. */
  #generation = 0;
  /** @type {Promise<void>} recoveries, one after another */
  #recovery = Promise.resolve();

  /** @param {SourceConfig} config @param {SourceHooks} hooks */
  constructor(config, hooks) {
    this.#config = config;
    this.#hooks = hooks;
  }

  /** The live source, or null. */
  get capture() {
    return this.#capture;
  }

  /** The first source: the caller's (a file), else the microphone. Not live until use(). */
  open() {
    const create = this.#config.create;
    return create ? create(this.#options()) : this.#openMicrophone(this.#config.deviceId);
  }

  /** @param {CaptureLike} capture  the source open() gave, now the live one */
  use(capture) {
    this.#capture = capture;
  }

  /** The source's tail (its last frames reach onFrame before this resolves). */
  async stop() {
    if (this.#capture) await this.#capture.stop();
  }

  release() {
    // The session is over: an adopter's source that fails to let go has no one left to tell.
    if (this.#capture) Promise.resolve(this.#capture.release()).catch(() => {});
  }

  /**
   * The source went away or audio processing stopped. One recovery at a time: a second notice waits for the first
   * and is dropped when the source it came from has been replaced.
   * @param {string} reason
   * @param {InterruptionKind} [kind]
   * @param {number} [generation]  the source that reported it (default: the current one)
   */
  interrupted(reason, kind, generation = this.#generation) {
    const next = this.#recovery.then(() => this.#recover(reason, kind, generation));
    this.#recovery = next.catch(() => {});
    return next;
  }

  /**
   * The microphone with the caller's processing options.
   * @param {string} [deviceId]  default: the system's
   */
  #openMicrophone(deviceId) {
    const c = this.#config;
    const o = { ...this.#options(), deviceId };
    if (c.microphone) return c.microphone(o);
    return startCapture({
      ...o,
      context: c.audioContext,
      stream: c.mediaStream,
      echoCancellation: c.echoCancellation,
      noiseSuppression: c.noiseSuppression,
      autoGainControl: c.autoGainControl,
      ...(c.workletUrl ? { workletUrl: c.workletUrl } : {}),
      // The session's bound when it sets one; otherwise capture.js's, longer than a recovery's: a context made for
      // the start may be slower to resume the first time (iOS) than one that ran.
      ...(c.resumeTimeoutMs !== undefined ? { resumeTimeoutMs: c.resumeTimeoutMs } : {}),
    });
  }

  /** @returns {SourceOptions} for the next source opened; its interruptions are ignored once it is replaced */
  #options() {
    const h = this.#hooks;
    const generation = ++this.#generation;
    return {
      outRate: h.outRate,
      frameSamples: h.frameSamples,
      onFrame: h.onFrame,
      onLevel: h.onLevel,
      onInterrupted: (reason, kind) => { this.interrupted(reason, kind, generation); },
      canSend: h.canSend,
      pacing: h.pacing,
    };
  }

  /**
   * @param {string} reason
   * @param {InterruptionKind | undefined} kind
   * @param {number} generation
   */
  async #recover(reason, kind, generation) {
    const h = this.#hooks;
    if (h.over() || generation !== this.#generation) return;
    const capture = this.#capture;
    const context = capture ? capture.context : undefined;
    if ((kind === 'suspended' || kind === 'interrupted') && context && context.resume) {
      try {
        await withTimeout(context.resume(), this.#config.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS, 'resume timed out');
        if (context.state === undefined || context.state === 'running') {
          h.report({ type: 'source', message: `${reason} Resumed.`, recovered: true, code: 'resumed' });
          return;
        }
      } catch { /* fall through to reopening */ }
      if (h.over()) return;
    }
    if (!capture && !this.#config.create) {
      // Not live yet: the start has not taken this microphone, so there is nothing to resume or switch from, and a
      // microphone opened here would be one the start never hears of (left open). The start fails with the reason.
      h.report({ type: 'source', message: reason, recovered: false, code: 'source_lost' });
      h.lost(reason, new CaptureError('failed', reason));
      return;
    }
    if (kind === 'failed' && !this.#config.create) {
      // The worklet threw: one built again the same way would too, so this microphone is lost. Released, not
      // flushed: a failed processor answers nothing.
      if (capture) {
        // Lost either way, and the session has to hear it: a release that throws must not leave it streaming with
        // no source.
        try {
          await capture.release();
        } catch { /* nothing to add to the loss reported below */ }
        if (this.#capture === capture) this.#capture = null;
      }
      h.report({ type: 'source', message: reason, recovered: false, code: 'source_lost' });
      h.lost(reason, new CaptureError('failed', reason));
      return;
    }
    if (!kind || !KINDS.has(kind) || this.#config.create) {
      h.report({ type: 'source', message: reason, recovered: false, code: 'source_interrupted' });
      return;
    }
    try {
      if (capture) {
        // Flush, so the speech the worklet holds (a part-filled frame and the resampler's tail, up to a frame) and
        // the frames on their way to the page go out before the capture is let go: a device that ended leaves its
        // context running, and a suspended context's worklet still answers its port (Chromium, Firefox and
        // WebKitGTK: playwright/test_capture_suspended.py; the flush waits 2 s at most). Interrupted (iOS) or
        // closed, nothing says it would: release.
        await (kind === 'ended' || kind === 'suspended' ? capture.stop() : capture.release());
        if (this.#capture === capture) this.#capture = null;
        // The flush takes up to 2 s: a Stop or Cancel meanwhile wants no microphone (its light, maybe a prompt).
        if (h.over()) return;
      }
      // The chosen device went away: the system default is the one most likely to be there.
      const next = await this.#openMicrophone();
      if (h.over()) {
        await next.release();
        return;
      }
      this.#capture = next;
      h.report({ type: 'source', message: `${reason} Switched to the default microphone.`, recovered: true, code: 'device_switched' });
    } catch (err) {
      const message = `${reason} ${err instanceof Error ? err.message : String(err)}`;
      h.report({ type: 'source', message, recovered: false, code: 'source_lost' });
      h.lost(message, err);
    }
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
