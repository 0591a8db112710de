// Audio held until a session is ready, and the small deferred-promise helper the session lifecycle uses.

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
 * @typedef {{promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void, settled: boolean}} Deferred
 */

/**
 * @template T
 * @returns {Deferred<T>}
 */
export function deferred() {
  /** @type {(v: T) => void} */
  let resolvePromise = () => {};
  /** @type {(e: Error) => void} */
  let rejectPromise = () => {};
  const promise = /** @type {Promise<T>} */ (new Promise((resolve, reject) => {
    resolvePromise = resolve;
    rejectPromise = reject;
  }));
  /** @type {Deferred<T>} */
  const d = {
    promise,
    settled: false,
    resolve: (v) => {
      d.settled = true;
      resolvePromise(v);
    },
    reject: (e) => {
      d.settled = true;
      rejectPromise(e);
    },
  };
  // Marks the promise handled: rejections still reach whoever awaits it, but an unawaited one is not an
  // error.
  promise.catch(() => {});
  return d;
}
