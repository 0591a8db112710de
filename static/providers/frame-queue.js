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
 * @returns {{promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void, settled: boolean}}
 */
export function deferred() {
  /** @type {any} */
  const d = { settled: false };
  d.promise = new Promise((resolve, reject) => {
    d.resolve = (/** @type {T} */ v) => {
      d.settled = true;
      resolve(v);
    };
    d.reject = (/** @type {Error} */ e) => {
      d.settled = true;
      reject(e);
    };
  });
  // Marks the promise handled: rejections still reach whoever awaits it, but an unawaited one is not an
  // error.
  d.promise.catch(() => {});
  return d;
}
