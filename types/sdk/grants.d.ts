/** @param {unknown} err @returns {boolean} false: a refusal another attempt would meet again */
export function isRetryable(err: unknown): boolean;
/**
 * POST JSON to the app server; the parsed answer, or an ApiError with the server's message.
 * @param {string} url
 * @param {object} [body]
 * @param {{timeoutMs?: number, signal?: AbortSignal}} [options]  timeoutMs: give up (status 0, retryable) after
 *   this long; 0: wait as long as fetch does
 * @returns {Promise<unknown>}
 */
export function postJson(url: string, body?: object, { timeoutMs, signal }?: {
    timeoutMs?: number;
    signal?: AbortSignal;
}): Promise<unknown>;
/**
 * The grant source of this app's own server: POST {base}/api/sessions mints, POST
 * {base}/api/sessions/{provider}/{session_id}/end releases. The mint endpoint takes only requests from the app's
 * own page (or from servers): a page on another origin mints through its own backend instead.
 * @param {string} [base]  the app's origin; default: the page's own ('' keeps the URLs relative)
 * @param {{timers?: Timers}} [options]  timers: what waits between an end's retries (tests pass fake ones)
 * @returns {{getGrant: GetGrant, endGrant: EndGrant}}
 */
export function appGrants(base?: string, { timers }?: {
    timers?: Timers;
}): {
    getGrant: GetGrant;
    endGrant: EndGrant;
};
/** @typedef {import('./providers/client.js').Grant} Grant */
/**
 * What the session asks for. `reconnect`: a grant to replace a lost connection (same provider and model).
 * @typedef {{provider: string, tag?: string, reconnect: boolean}} GrantRequest
 */
/**
 * Resolves with a grant (see Grant: `ws_url`, `token`, `sample_rate`, `frame_samples`, `protocol`, …). `signal`
 * aborts when the session gives up on the request (its timeout, cancel()). A rejection with a numeric `status`
 * outside 0, 429, 502, 503, 504 (an HTTP refusal, say 401) ends the session; any other rejection is retried on a
 * reconnect.
 * @typedef {(request: GrantRequest, init: {signal: AbortSignal}) => Promise<Grant>} GetGrant
 */
/**
 * The grant is finished with (the session ended, or a reconnect replaced it): release what it holds upstream.
 * `beacon`: the page is going away (pagehide), so only navigator.sendBeacon-like calls get out.
 * @typedef {(grant: Grant, init: {beacon: boolean}) => void | Promise<unknown>} EndGrant
 */
export class ApiError extends Error {
    /** @param {string} message @param {number} status @param {string} code */
    constructor(message: string, status: number, code: string);
    status: number;
    code: string;
}
/** Statuses for which another attempt with a fresh grant can help (not: not configured, bad request, forbidden). */
export const RETRYABLE_STATUS: Readonly<Set<number>>;
/** @typedef {{setTimeout: (fn: () => void, ms: number) => unknown, clearTimeout: (id: unknown) => void}} Timers */
/** @type {Timers} the platform's timers */
export const GLOBAL_TIMERS: Timers;
/**
 * An end the server refuses with 503 (it cannot reach its shared state right now) is sent again after the answer's
 * Retry-After (at most RETRY_AFTER_MAX_MS, static/retry-after.js), up to END_ATTEMPTS sends in all: an end lost leaves a billed task (Wiro's)
 * running until its deadline. The server also keeps such an end and retries it itself; ending twice is harmless.
 */
export const END_ATTEMPTS: 4;
/**
 * The session's side of a grant source: each request bounded in time (a fetch on a network that went away without
 * saying so can hang for minutes, and a reconnect, or a Stop waiting for it, must not), every request abortable at
 * once (cancel()), and each grant ended exactly once whichever way the session ends.
 */
export class GrantKeeper {
    /**
     * @param {{getGrant?: GetGrant, endGrant?: EndGrant, timeoutMs?: number, timers?: Timers}} options  without
     *   getGrant, this app's endpoints (appGrants()); a caller with its own getGrant and no endGrant ends nothing
     *   (this app's /end would not know its grants)
     */
    constructor({ getGrant, endGrant, timeoutMs, timers }: {
        getGrant?: GetGrant;
        endGrant?: EndGrant;
        timeoutMs?: number;
        timers?: Timers;
    });
    /**
     * A grant, or an ApiError 'timeout' (status 0: retryable) after timeoutMs, when the source's signal aborts too.
     * @param {GrantRequest} request
     * @returns {Promise<Grant>}
     */
    request(request: GrantRequest): Promise<Grant>;
    /** Abort every request under way (their getGrant sees its signal abort). */
    abortAll(): void;
    /**
     * The grant is finished with: tell the source, once per grant. A source that throws is logged, not thrown: ending
     * is best effort and must not stop the session's own end.
     * @param {Grant | null} grant
     * @param {boolean} [beacon]
     */
    end(grant: Grant | null, beacon?: boolean): void;
    #private;
}
export type Grant = import("./providers/client.js").Grant;
/**
 * What the session asks for. `reconnect`: a grant to replace a lost connection (same provider and model).
 */
export type GrantRequest = {
    provider: string;
    tag?: string;
    reconnect: boolean;
};
/**
 * Resolves with a grant (see Grant: `ws_url`, `token`, `sample_rate`, `frame_samples`, `protocol`, …). `signal`
 * aborts when the session gives up on the request (its timeout, cancel()). A rejection with a numeric `status`
 * outside 0, 429, 502, 503, 504 (an HTTP refusal, say 401) ends the session; any other rejection is retried on a
 * reconnect.
 */
export type GetGrant = (request: GrantRequest, init: {
    signal: AbortSignal;
}) => Promise<Grant>;
/**
 * The grant is finished with (the session ended, or a reconnect replaced it): release what it holds upstream.
 * `beacon`: the page is going away (pagehide), so only navigator.sendBeacon-like calls get out.
 */
export type EndGrant = (grant: Grant, init: {
    beacon: boolean;
}) => void | Promise<unknown>;
export type Timers = {
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (id: unknown) => void;
};
