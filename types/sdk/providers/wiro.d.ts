/**
 * The fields of a server event this client relies on; everything else (id, result, success, terminal, …) is
 * ignored on purpose.
 * @typedef {object} WiroEvent
 * @property {string} type
 * @property {string|null} message
 * @property {number|null} turnCost        USD
 * @property {number|null} cumulativeCost  USD
 */
/**
 * One audio frame: the ASCII token, "|", then signed 16-bit little-endian PCM.
 * @param {string} token  the socketaccesstoken (alphanumeric)
 * @param {Int16Array} pcm
 * @returns {ArrayBuffer}
 */
export function encodeFrame(token: string, pcm: Int16Array): ArrayBuffer;
/** @param {string} token */
export function taskInfo(token: string): string;
/** @param {string} token */
export function sessionEnd(token: string): string;
/**
 * Parse one text frame; null when it is not a JSON object with a string `type`.
 * @param {string} text
 * @returns {WiroEvent|null}
 */
export function parseEvent(text: string): WiroEvent | null;
/**
 * The transcript text a `task_output` carries, without its prefix; null for every other event (other
 * `task_output` messages are logs, not transcripts).
 * @param {WiroEvent} event
 * @returns {string|null}
 */
export function transcriptIncrement(event: WiroEvent): string | null;
/**
 * The text of a run of increments with normalised whitespace. Whether increments carry their own leading
 * space is not documented. If any does (`selfSpaced` unset) or the caller knows the stream does (`selfSpaced:
 * true`), the increments are pieces of text and are concatenated as they are; otherwise they are words and
 * are joined with one space, except punctuation, which attaches to the word before it.
 * @param {readonly string[]} increments
 * @param {{selfSpaced?: boolean}} [options]
 * @returns {string}
 */
export function joinIncrements(increments: readonly string[], { selfSpaced }?: {
    selfSpaced?: boolean;
}): string;
export const TRANSCRIPT_PREFIX: "TRANSCRIPT_USER:";
/** The byte between the token and the PCM in an audio frame; the server splits on its first occurrence. */
export const FRAME_SEPARATOR: 124;
/**
 * What the Wiro protocol gives: no times at all (the client dates text by the audio Wiro can have heard when it
 * arrived), an utterance ends only with a pause in wall-clock time (so a file must be paced at 1x), and a replay
 * after a reconnect may repeat words already final (the audio a final covers is not known exactly).
 * @type {import('./protocol.js').ProtocolCapabilities}
 */
export const CAPABILITIES: import("./protocol.js").ProtocolCapabilities;
export const DEFAULT_UTTERANCE_GAP_MS: 1500;
export const DEFAULT_END_GRACE_MS: 2000;
/**
 * A Wiro realtime STT session. Events and methods are those of the contract in client.js, plus the options
 * `utteranceGapMs` and `endGraceMs`.
 */
export class WiroClient extends SessionClient {
    static capabilities: import("./protocol.js").ProtocolCapabilities;
    /**
     * @param {import('./grant.js').Grant} grant
     * @param {import('./protocol.js').ClientOptions} [opts]
     */
    constructor(grant: import("./grant.js").Grant, opts?: import("./protocol.js").ClientOptions);
    _gapMs: number;
    _endGraceMs: number;
    /** @type {{parts: string[], startMs: number, endMs: number} | null} */
    _utterance: {
        parts: string[];
        startMs: number;
        endMs: number;
    } | null;
    /** @type {unknown} */
    _gapTimer: unknown;
    /** @type {unknown} */
    _graceTimer: unknown;
    _selfSpaced: boolean;
    /** @param {string} text */
    _onText(text: string): void;
    /** @param {string} increment */
    _addIncrement(increment: string): void;
    _utteranceText(): string;
    _commitUtterance(): void;
    _clearGapTimer(): void;
    _clearGraceTimer(): void;
    _onEnd(): void;
}
/**
 * The fields of a server event this client relies on; everything else (id, result, success, terminal, …) is
 * ignored on purpose.
 */
export type WiroEvent = {
    type: string;
    message: string | null;
    /**
     * USD
     */
    turnCost: number | null;
    /**
     * USD
     */
    cumulativeCost: number | null;
};
import { SessionClient } from './stream-session.js';
