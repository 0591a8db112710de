/**
 * Drop the words at the start of `text` that repeat the end of `tail`: a replay after a reconnect without the
 * provider's times sends audio again from before the estimated end of the last final, so the next session hears
 * those words a second time, from a point that may fall inside a word, and not always as they were heard the first
 * time ("though weather is nigh" came back as "the lead is nigh"). The repeat is the prefix of `text` that best
 * matches an end of `tail` word by word (a word heard otherwise costs one, a word more or less costs one); it is cut
 * when at least OVERLAP_MIN_WORDS words match (a first word that is the rest of a tail word counts, see
 * FRAGMENT_MIN_LETTERS) and at most half of its words differ.
 * @param {string[]} tail  the last final words before a reconnect
 * @param {string} text
 */
export function stripOverlap(tail: string[], text: string): string;
/** @typedef {{type: 'dropped', droppedMs: number}} DroppedEvent */
/** @typedef {import('./replay.js').HeldFrame} HeldFrame */
export const UNTIMED_COMMIT_MARGIN_MS: 2000;
export const DROP_REPORT_STEP_MS: 5000;
export class ReplayAccounting {
    /**
     * @param {{sampleRate: number, maxMs?: number, stallMs?: number}} options  stallMs: how long a source may be held
     *   back with no final before it goes on anyway (default 15000)
     */
    constructor({ sampleRate, maxMs, stallMs }: {
        sampleRate: number;
        maxMs?: number;
        stallMs?: number;
    });
    buffer: ReplayBuffer;
    clock: OffsetClock;
    stallMs: number;
    /** ms of audio captured so far, at the provider's rate. */
    get audioMs(): number;
    /** ms held that no final covers yet. */
    get bufferedMs(): number;
    /** ms known lost so far. */
    get droppedMs(): number;
    /**
     * A frame captured. While disconnected (`outage`), what it pushes out of the buffer is lost and said so (in steps).
     * @param {Int16Array} pcm
     * @param {boolean} outage
     * @returns {DroppedEvent[]}
     */
    push(pcm: Int16Array, outage: boolean): DroppedEvent[];
    /**
     * May a source that can wait send one more frame of `frameMs`? Not when it would push audio no final covers out
     * of the buffer (it could not be sent again after a drop), unless held that long already with no final: a provider
     * that needs more audio before its next final must not wait for ever, so one frame goes on per stallMs.
     * @param {number} frameMs
     * @param {number} now  ms, the caller's clock
     */
    roomFor(frameMs: number, now: number): boolean;
    /** The connection is lost: what no final covered and the buffer could not keep is lost from here on. */
    beginOutage(): DroppedEvent[];
    /**
     * A new provider session is ready: the frames to send it (held ones, then live ones captured meanwhile, in order),
     * with the `dropped` event that says what could not be kept. Its times now count from the first of them.
     * @param {boolean} repeats  the provider may say again words already final (untimed: the margin above)
     * @returns {{frames: HeldFrame[], offsetMs: number, events: DroppedEvent[]}}
     */
    replay(repeats: boolean): {
        frames: HeldFrame[];
        offsetMs: number;
        events: DroppedEvent[];
    };
    /**
     * A final from the provider, on the recording's clock, its repeat of a replay cut; the audio it covers is no
     * longer held.
     * @template {{text: string, startMs: number|null, endMs: number|null, words: import('./replay.js').Word[]}} F
     * @param {F} event
     * @param {boolean} timed  its times are the provider's (else estimates: keep a margin)
     * @returns {F}
     */
    final<F extends {
        text: string;
        startMs: number | null;
        endMs: number | null;
        words: import("./replay.js").Word[];
    }>(event: F, timed: boolean): F;
    /**
     * @template {{text: string, startMs: number|null, endMs: number|null}} P
     * @param {P} event
     * @returns {P}
     */
    partial<P extends {
        text: string;
        startMs: number | null;
        endMs: number | null;
    }>(event: P): P;
    /** The session ends without a replay: the audio no final covered, held or already pushed out, is lost. */
    terminalLoss(): DroppedEvent[];
    #private;
}
export type DroppedEvent = {
    type: "dropped";
    droppedMs: number;
};
export type HeldFrame = import("./replay.js").HeldFrame;
import { ReplayBuffer } from './replay.js';
import { OffsetClock } from './replay.js';
