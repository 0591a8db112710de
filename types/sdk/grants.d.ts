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
 * @returns {{getGrant: GetGrant, endGrant: EndGrant}}
 */
export function appGrants(base?: string): {
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
 * @typedef {(grant: Grant, init: {beacon: boolean}) => void} EndGrant
 */
export class ApiError extends Error {
    /** @param {string} message @param {number} status @param {string} code */
    constructor(message: string, status: number, code: string);
    status: number;
    code: string;
}
/** Statuses for which another attempt with a fresh grant can help (not: not configured, bad request, forbidden). */
export const RETRYABLE_STATUS: Readonly<Set<number>>;
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
}) => void;
