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
