/**
 * @template T
 * @typedef {{promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void, settled: boolean}} Deferred
 */
/**
 * @template T
 * @returns {Deferred<T>}
 */
export function deferred<T>(): Deferred<T>;
/**
 * Frames waiting for the session to become ready. Bounded; when full it keeps the oldest frames (the start of
 * the speech) and counts what it refused, so the caller can say so instead of dropping audio silently.
 */
export class FrameQueue {
    /** @param {number} limit frames */
    constructor(limit: number);
    limit: number;
    /** @type {Int16Array[]} */
    frames: Int16Array[];
    dropped: number;
    droppedSamples: number;
    get length(): number;
    /**
     * @param {Int16Array} frame  kept as is: pass a copy if the caller may reuse its buffer
     * @returns {boolean} false when the queue was full and the frame was refused
     */
    push(frame: Int16Array): boolean;
    /** @returns {Int16Array[]} the queued frames, oldest first, leaving the queue empty */
    drain(): Int16Array[];
}
export type Deferred<T> = {
    promise: Promise<T>;
    resolve: (v: T) => void;
    reject: (e: Error) => void;
    settled: boolean;
};
