/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/client.js').Capabilities} Capabilities */
/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./providers/client.js').ClientOptions} ClientOptions */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./grants.js').GrantRequest} GrantRequest */
/** @typedef {import('./grants.js').Timers} Timers */
/**
 * What the connection needs of a grant source (a GrantKeeper).
 * @typedef {{request: (request: GrantRequest) => Promise<Grant>, end: (grant: Grant | null, beacon?: boolean) => void,
 *   abortAll: () => void}} GrantSource
 */
/**
 * How an attempt ended, as the reducer's input (the driver adds the facts: jitter, bufferedMs).
 * @typedef {{type: 'attempt-ready'} | {type: 'attempt-failed', message: string, code?: string, retryable: boolean}} AttemptOutcome
 */
/** @param {unknown} err @returns {string | undefined} the code a CaptureError or ApiError carries */
export function codeOf(err: unknown): string | undefined;
/** @param {unknown} err @returns {{message: string, code?: string}} a failure as the reducer's inputs carry it */
export function failure(err: unknown): {
    message: string;
    code?: string;
};
/**
 * The source already runs at the first grant's rate and frame size: a later grant (a fresh one at the start, a
 * reconnect's) for other audio cannot take it.
 * @param {Grant} first  the grant the source was opened for
 * @param {Grant} grant  the later one
 * @returns {string | null} why `grant` cannot be used, or null when it can
 */
export function audioMismatch(first: Grant, grant: Grant): string | null;
export class Connection {
    /**
     * @param {{grants: GrantSource, provider: string, tag?: string, clientOptions?: ClientOptions,
     *   onEvent: (event: ProviderEvent) => void, over: () => boolean, timers?: Timers,
     *   createClient?: (grant: Grant, options: ClientOptions) => Client}} options
     *   onEvent: the events of the client audio goes to (an attempt's failure is retried, not the session's
     *   business; a replaced client's last words are nobody's); over: the session is over (an attempt that finds it
     *   so lets go of what it got)
     */
    constructor({ grants, provider, tag, clientOptions, onEvent, over, timers, createClient }: {
        grants: GrantSource;
        provider: string;
        tag?: string;
        clientOptions?: ClientOptions;
        onEvent: (event: ProviderEvent) => void;
        over: () => boolean;
        timers?: Timers;
        createClient?: (grant: Grant, options: ClientOptions) => Client;
    });
    /** The current grant (sample rate, frame size, expiry for diagnostics): null before the first. */
    get grant(): import("./providers/grant.js").Grant | null;
    /** What the current grant's provider can do; null before the first client. */
    get capabilities(): import("./providers/protocol.js").Capabilities | null;
    /** The client audio goes to: null before the first and during an outage. */
    get client(): import("./providers/stream-session.js").SessionClient | null;
    /** The first grant (rejects as the grant source does). */
    first(): Promise<import("./providers/grant.js").Grant>;
    /** The first grant's client, not started. */
    open(): import("./providers/stream-session.js").SessionClient;
    /**
     * The 'outage' effect: the lost client and its grant go (the grant is kept for the replacement's request).
     * `outageEnded` settles when a replacement is ready or the session lets go.
     */
    beginOutage(): void;
    /** Settles when the outage under way ends, either way (at once when there is none). */
    get outageEnded(): Promise<void>;
    /** The replacement is ready and has its audio: the outage is over. */
    outageOver(): void;
    /**
     * The 'wait' effect: wait out the backoff (wake() cuts it short), then try a fresh grant like the lost one and a
     * new client. `report` gets the outcome (nothing when the session was over meanwhile), in the same task as the
     * client's readiness, so no client event comes between.
     * @param {number} delayMs
     * @param {(outcome: AttemptOutcome) => void} report
     */
    attempt(delayMs: number, report: (outcome: AttemptOutcome) => void): Promise<void>;
    /** The 'wake' effect: a backoff wait under way ends now (Stop: the user waits; Cancel: nothing more is tried). */
    wake(): void;
    /** The 'release' effect's part: grant requests, the backoff, the clients, the grant, the outage. */
    release(): void;
    /**
     * Tell the grant source `grant` is finished with (once per grant: the keeper sees to that).
     * @param {boolean} [beacon]
     * @param {Grant | null} [grant]  default: the current grant
     */
    end(beacon?: boolean, grant?: Grant | null): void;
    #private;
}
export type Grant = import("./providers/client.js").Grant;
export type Capabilities = import("./providers/client.js").Capabilities;
export type ProviderEvent = import("./providers/client.js").ProviderEvent;
export type ClientOptions = import("./providers/client.js").ClientOptions;
export type Client = import("./providers/stream.js").SessionClient;
export type GrantRequest = import("./grants.js").GrantRequest;
export type Timers = import("./grants.js").Timers;
/**
 * What the connection needs of a grant source (a GrantKeeper).
 */
export type GrantSource = {
    request: (request: GrantRequest) => Promise<Grant>;
    end: (grant: Grant | null, beacon?: boolean) => void;
    abortAll: () => void;
};
/**
 * How an attempt ended, as the reducer's input (the driver adds the facts: jitter, bufferedMs).
 */
export type AttemptOutcome = {
    type: "attempt-ready";
} | {
    type: "attempt-failed";
    message: string;
    code?: string;
    retryable: boolean;
};
