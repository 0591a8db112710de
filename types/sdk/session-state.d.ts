/** @param {number} maxReconnects @returns {Core} */
export function initialCore(maxReconnects?: number): Core;
/**
 * @param {Core} core
 * @param {CoreInput} input
 * @returns {{core: Core, effects: Effect[]}}
 */
export function reduce(core: Core, input: CoreInput): {
    core: Core;
    effects: Effect[];
};
/** @typedef {'idle'|'starting'|'connecting'|'streaming'|'reconnecting'|'stopping'|'stopped'|'cancelled'|'error'} SessionState */
/**
 * What a state carries besides its name: the reconnect attempt, or the error's message and, when the failure had
 * one, its code (a CaptureError's such as 'denied', an ApiError's such as 'rate_limited'), so a caller can act on it
 * without parsing the message.
 * @typedef {{attempt?: number, delayMs?: number, bufferedMs?: number, reason?: string, message?: string,
 *   code?: string}} StateDetail
 */
/** @typedef {(from: SessionState, to: SessionState, detail: StateDetail) => void} StateListener */
/** @type {Readonly<Record<SessionState, readonly SessionState[]>>} */
export const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>>;
/** States after which nothing happens any more. */
export const FINAL_STATES: readonly SessionState[];
export function isFinal(state: SessionState): boolean;
export class StateMachine {
    /** @param {StateListener} [listener] */
    constructor(listener?: StateListener);
    /** @type {SessionState} */
    state: SessionState;
    /** @type {StateDetail} */
    detail: StateDetail;
    _listener: StateListener;
    /** @param {SessionState} to */
    can(to: SessionState): boolean;
    /** @param {...SessionState} states */
    is(...states: SessionState[]): boolean;
    get final(): boolean;
    /**
     * Move to `to`. A move the table does not allow is a bug in the caller: it throws, and the state stays.
     * @param {SessionState} to
     * @param {StateDetail} [detail]
     */
    to(to: SessionState, detail?: StateDetail): void;
}
export function reconnectDelay(attempt: number, jitter: number): number;
export type SessionState = "idle" | "starting" | "connecting" | "streaming" | "reconnecting" | "stopping" | "stopped" | "cancelled" | "error";
/**
 * What a state carries besides its name: the reconnect attempt, or the error's message and, when the failure had
 * one, its code (a CaptureError's such as 'denied', an ApiError's such as 'rate_limited'), so a caller can act on it
 * without parsing the message.
 */
export type StateDetail = {
    attempt?: number;
    delayMs?: number;
    bufferedMs?: number;
    reason?: string;
    message?: string;
    code?: string;
};
export type StateListener = (from: SessionState, to: SessionState, detail: StateDetail) => void;
/**
 * The provider connection: 'none' (no client yet), 'opening' (the first client connecting), 'up', 'lost' (being
 * replaced; the one place a reconnect under way is kept: while stopping, the state stays `stopping`).
 */
export type Link = "none" | "opening" | "up" | "lost";
export type Core = {
    state: SessionState;
    link: Link;
    /**
     * the reconnect attempt under way (0: none)
     */
    attempt: number;
    /**
     * why the connection was lost, then the last attempt's failure
     */
    reason: string;
    /**
     * the last attempt's failure code (a grant source's refusal), if any
     */
    failureCode: string | undefined;
    /**
     * the microphone is gone for good: the stop under way ends in this
     */
    sourceFailure: StateDetail | null;
    maxReconnects: number;
};
/**
 * What happened (the driver's facts): `jitter` in [0, 1) and `bufferedMs` come with the inputs that may start an
 * attempt.
 */
export type CoreInput = {
    type: "start";
} | {
    type: "source-opened";
} | {
    type: "connected";
} | {
    type: "client-failed";
    fatal: boolean;
    cause: import("./providers/protocol.js").ErrorCause;
    message: string;
    jitter: number;
    bufferedMs: number;
} | {
    type: "client-closed";
    code: number;
    reason: string;
    clean: boolean;
    jitter: number;
    bufferedMs: number;
} | {
    type: "attempt-failed";
    message: string;
    code?: string;
    retryable: boolean;
    jitter: number;
    bufferedMs: number;
} | {
    type: "attempt-ready";
} | {
    type: "fail";
    message: string;
    code?: string;
} | {
    type: "source-lost";
    message: string;
    code?: string;
} | {
    type: "stop";
} | {
    type: "finished";
} | {
    type: "finish-failed";
} | {
    type: "stop-timeout";
    message: string;
} | {
    type: "cancel";
};
/**
 * What the driver does, in order. 'terminal-loss': say the audio no final covered is lost (before the end: nothing
 * is said after it); 'release': the source, the clients, the grant requests and the grant (the session is over);
 * 'outage': drop the lost client, release its grant, say what the buffer could not keep; 'wait': then try a fresh
 * grant and a new client; 'wake': cut a backoff wait short (Stop during a reconnect); 'replay': the new client is
 * ready, send it the held audio; 'reconnected': say so, with what was replayed and lost; 'finish': the source's tail and the provider's last
 * finals; 'stop': begin a graceful stop.
 */
export type Effect = {
    type: "to";
    state: SessionState;
    detail?: StateDetail;
} | {
    type: "emit";
    event: import("./session.js").SessionEvent;
} | {
    type: "terminal-loss";
} | {
    type: "release";
} | {
    type: "outage";
} | {
    type: "wake";
} | {
    type: "wait";
    attempt: number;
    delayMs: number;
} | {
    type: "replay";
} | {
    type: "reconnected";
    attempt: number;
} | {
    type: "cancel-client";
} | {
    type: "end-grant";
} | {
    type: "finish";
} | {
    type: "stop";
};
