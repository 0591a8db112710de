/**
 * Throws a TypeError naming the first missing or malformed grant field (never echoing values: one is the
 * token).
 * @param {Grant} grant
 */
export function checkGrant(grant: Grant): void;
/**
 * A person-readable provider name for messages.
 * @param {Grant} grant
 */
export function providerLabel(grant: Grant): string;
/**
 * `url` with one query parameter set, keeping the ones it already has.
 * @param {string} url
 * @param {string} name
 * @param {string} value
 */
export function withQueryParam(url: string, name: string, value: string): string;
/**
 * The URL without its query and fragment, safe to show: the query may carry the access token.
 * @param {string} url
 */
export function displayUrl(url: string): string;
/**
 * Replace every occurrence of a secret in text that came from elsewhere (a server message, an exception).
 * @param {string} text
 * @param {string | undefined} secret
 */
export function redact(text: string, secret: string | undefined): string;
/**
 * "code 1006" or "code 1008: reason".
 * @param {number} code
 * @param {string} reason
 */
export function closeSummary(code: number, reason: string): string;
/**
 * The session grant from POST /api/sessions. `token` is a credential: it never appears in an event or a
 * message.
 */
export type Grant = {
    /**
     * 'truebar' | 'wiro' | 'local' (for messages)
     */
    provider: string;
    protocol: "truebar" | "wiro";
    ws_url: string;
    token: string;
    /**
     * Hz of the PCM the provider expects: whole, in 1..MAX_RATE (pcm.js's resampler)
     */
    sample_rate: number;
    /**
     * samples per audio frame the page sends
     */
    frame_samples: number;
    /**
     * Truebar ASR stage tag
     */
    tag?: string | undefined;
    /**
     * Wiro task id
     */
    task_id?: string | undefined;
    /**
     * the app server's handle, for POST /api/sessions/{provider}/{session_id}/end
     */
    session_id?: string | undefined;
    /**
     * the embedded engine: no audio leaves the machine
     */
    offline?: boolean | undefined;
    /**
     * seconds since the epoch (the server's clock)
     */
    expires_at?: number | undefined;
    /**
     * seconds of life left when the grant was minted: what the client goes by,
     * counted from when it got the grant, as the browser's clock may be minutes off the server's (without it, the
     * client compares expires_at with its own clock)
     */
    expires_in?: number | undefined;
};
