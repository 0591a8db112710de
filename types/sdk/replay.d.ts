/**
 * Exponential backoff with full jitter (uniform in [0, min(maxMs, baseMs * 2^attempt))), so clients that lost
 * the same server do not all come back at once.
 * @param {number} attempt  0 for the first retry
 * @param {{baseMs?: number, maxMs?: number, random?: () => number}} [options]
 * @returns {number} whole ms to wait
 */
export function backoffDelay(attempt: number, { baseMs, maxMs, random }?: {
    baseMs?: number;
    maxMs?: number;
    random?: () => number;
}): number;
/** @typedef {{startSample: number, startMs: number, samples: Int16Array}} HeldFrame */
/** @typedef {{text: string, startMs: number, endMs: number}} Word */
export class ReplayBuffer {
    /**
     * @param {{sampleRate: number, maxMs?: number}} options  maxMs: most audio held (default 30000); beyond it the
     *   oldest frames are dropped and counted in droppedMs
     */
    constructor({ sampleRate, maxMs }: {
        sampleRate: number;
        maxMs?: number;
    });
    sampleRate: number;
    maxMs: number;
    maxSamples: number;
    /** @type {HeldFrame[]} oldest first, contiguous except where frames were dropped */
    frames: HeldFrame[];
    /** Samples pushed since the start: the next frame's start sample. */
    totalSamples: number;
    heldSamples: number;
    droppedSamples: number;
    /** Recording sample up to which the audio is safe: covered by a final, or already counted as a gap. */
    coveredSample: number;
    /** @param {number} sample */
    sampleToMs(sample: number): number;
    /**
     * Record one frame. It is copied, so the caller may transfer or reuse its buffer (100–200 ms frames: the copy
     * is a few kilobytes). Empty frames are ignored.
     * @param {Int16Array} frame
     * @returns {number} the frame's start sample on the recording's clock
     */
    push(frame: Int16Array): number;
    /**
     * Forget the frames that end at or before `untilMs` (audio a final already covers). A frame that straddles
     * `untilMs` stays whole, so a replay may repeat up to one frame of audio before it.
     * @param {number} untilMs  recording time
     * @returns {number} how many frames were forgotten
     */
    commit(untilMs: number): number;
    /**
     * The held frames, oldest first, each with its start on the recording's clock, for a new session. They stay
     * held until committed. The arrays are the buffer's own: send them (WebSocket.send copies), do not transfer.
     * @returns {HeldFrame[]}
     */
    replay(): HeldFrame[];
    /** Recording sample of the first held frame; the audio clock when nothing is held. */
    get heldFromSample(): number;
    /**
     * Audio no final covers and no replay can bring back, in ms: everything between the last final (or the last
     * replay) and the oldest frame still held. Frames the bound pushed out while connected were sent, but a
     * session that dies before its final loses them too, so they count here once the session is lost.
     */
    get gapMs(): number;
    /** The held frames went to a new session: the gap before them is counted, not to be counted again. */
    markReplayed(): void;
    /** Audio currently held, in ms. */
    get pendingMs(): number;
    /** Audio pushed out because more than maxMs was held (sent, but no longer replayable). */
    get droppedMs(): number;
    /** Recording time of the first held sample; null when nothing is held. */
    get heldFromMs(): number | null;
    /** The audio clock: ms of audio pushed since the start. */
    get totalMs(): number;
}
/**
 * Offset stitching: a session that started with the sample at recording time `offsetMs` reports times from 0;
 * adding the offset puts them back on the recording's clock.
 */
export class OffsetClock {
    offsetMs: number;
    /** @param {number} offsetMs  recording time of the first sample the new session receives (first replayed) */
    startSession(offsetMs: number): void;
    /**
     * @template {number|null|undefined} T
     * @param {T} ms  session time; null/undefined (no time given) passes through
     * @returns {T}
     */
    toRecording<T extends number | null | undefined>(ms: T): T;
    /**
     * A copy of a partial or final event with startMs, endMs and word times on the recording's clock; other
     * fields are kept as they are.
     * @template {{startMs?: number|null, endMs?: number|null, words?: Word[]}} E
     * @param {E} event
     * @returns {E}
     */
    shiftEvent<E extends {
        startMs?: number | null;
        endMs?: number | null;
        words?: Word[];
    }>(event: E): E;
}
export type HeldFrame = {
    startSample: number;
    startMs: number;
    samples: Int16Array;
};
export type Word = {
    text: string;
    startMs: number;
    endMs: number;
};
