/** @typedef {{text: string, isLeftHanded?: boolean, isRightHanded?: boolean}} Token */
/** @typedef {import('./protocol.js').Word} Word */
/**
 * @typedef {{kind: 'status', status: string}
 *   | {kind: 'segment', isFinal: boolean, text: string, startMs: number|null, endMs: number|null,
 *      words: Word[]}
 *   | {kind: 'warning', message: string}
 *   | {kind: 'error', message: string}
 *   | {kind: 'unknown', type: string|null}
 *   | {kind: 'invalid'}} TruebarMessage
 */
/**
 * The CONFIG message for a pipeline with one streaming ASR stage.
 * @param {string} tag  e.g. "KALDI:en-US:*:*"
 * @param {{interims?: boolean}} [options]
 * @returns {string}
 */
export function configMessage(tag: string, { interims }?: {
    interims?: boolean;
}): string;
/**
 * Text of a segment by the vendor's rule: a space between two adjacent tokens unless the first is
 * right-handed or the second left-handed. Tokens with empty text are skipped entirely (they neither add a
 * space nor change the handedness the next token sees).
 * @param {unknown} tokens
 * @returns {string}
 */
export function tokensToText(tokens: unknown): string;
/**
 * Words with absolute times: token offsets count from the segment start, segment times from the session
 * start. Tokens without usable times are left out (their text is still in the segment text).
 * @param {Record<string, unknown>} segment
 * @returns {Word[]}
 */
export function segmentWords(segment: Record<string, unknown>): Word[];
/**
 * An ERROR's text: `error.message`, falling back to a top-level `message`; '' when neither is there.
 * @param {unknown} msg  the parsed JSON message
 * @returns {string}
 */
export function errorMessage(msg: unknown): string;
/**
 * Parse one text frame. The envelope key is `type` in the vendor's guide and `messageType` in community
 * clients: both are read. Unknown types, statuses and fields are passed over, never an error.
 * @param {string} text
 * @returns {TruebarMessage}
 */
export function parseMessage(text: string): TruebarMessage;
/** The seed's fallback; a grant normally names the tag the account can stream with. */
export const DEFAULT_TAG: "KALDI:en-US:*:*";
/** End of stream: the server finishes what it has, sends the last segments, then STATUS FINISHED. */
export const EOS: string;
/** Abandon the session without closing the socket; the server answers STATUS CANCELED. */
export const CANCEL: string;
/**
 * What the Truebar protocol gives: segment and word times on the session's audio clock, an end-of-utterance
 * decision of its own (so a file may be sent as fast as the socket takes it), finals that never repeat replayed
 * audio (their times say exactly what they cover).
 * @type {import('./protocol.js').ProtocolCapabilities}
 */
export const CAPABILITIES: import("./protocol.js").ProtocolCapabilities;
/**
 * A Truebar streaming session. Events and methods are those of the contract in client.js.
 */
export class TruebarClient extends SessionClient {
    static capabilities: import("./protocol.js").ProtocolCapabilities;
    /**
     * @param {import('./grant.js').Grant} grant
     * @param {import('./protocol.js').ClientOptions} [opts]
     */
    constructor(grant: import("./grant.js").Grant, opts?: import("./protocol.js").ClientOptions);
    /** @param {string} text */
    _onText(text: string): void;
}
export type Token = {
    text: string;
    isLeftHanded?: boolean;
    isRightHanded?: boolean;
};
export type Word = import("./protocol.js").Word;
export type TruebarMessage = {
    kind: "status";
    status: string;
} | {
    kind: "segment";
    isFinal: boolean;
    text: string;
    startMs: number | null;
    endMs: number | null;
    words: Word[];
} | {
    kind: "warning";
    message: string;
} | {
    kind: "error";
    message: string;
} | {
    kind: "unknown";
    type: string | null;
} | {
    kind: "invalid";
};
import { SessionClient } from './stream-session.js';
