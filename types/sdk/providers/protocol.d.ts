/** @typedef {'idle'|'connecting'|'configuring'|'streaming'|'finishing'|'closed'|'error'} ClientState */
/** @typedef {{text: string, startMs: number, endMs: number}} Word */
/**
 * Why a session failed, decided where it is known rather than read back from the message:
 * 'transport' the connection went away without the protocol saying so (worth a reconnect);
 * 'expired'   the grant's token ran out (a fresh grant continues);
 * 'protocol'  the provider reported an error or broke the protocol (another attempt would fail the same way).
 * @typedef {'transport'|'protocol'|'expired'} ErrorCause
 */
/**
 * Where a transcript's times come from, decided once, here at the provider adapter, and carried by every layer
 * after it (session, page, saved transcripts, exports): 'provider' when the provider gave both times, 'estimated'
 * when they are the client's guess (Wiro's arrival times) or missing (an export then places them).
 * @typedef {'provider'|'estimated'} Timing
 */
/**
 * @typedef {{type: 'state', state: Exclude<ClientState, 'idle'>}
 *   | {type: 'partial', text: string, startMs: number|null, endMs: number|null, timing: Timing}
 *   | {type: 'final', text: string, startMs: number|null, endMs: number|null, words: Word[], timing: Timing}
 *   | {type: 'warning', message: string, code?: 'slow_uplink'}
 *   | {type: 'error', message: string, fatal: boolean, cause: ErrorCause}
 *   | {type: 'cost', turnCost: number|null, cumulativeCost: number|null}
 *   | {type: 'closed', code: number, reason: string, clean: boolean}} ProviderEvent
 */
/**
 * What a protocol can and cannot do, for the session and the page to ask instead of testing provider names.
 * @typedef {object} ProtocolCapabilities
 * @property {boolean} timedWords      finals carry the provider's own times (else they are the client's estimates)
 * @property {'fast'|'realtime'} pacing how fast a file may be sent: as fast as accepted, or at 1x
 * @property {boolean} replayRepeats   audio replayed after a reconnect may come back as words already final
 */
/**
 * @typedef {ProtocolCapabilities & {tagsListing: boolean}} Capabilities  a provider's: its protocol's, plus
 *   whether it lists models (ASR tags) the page may offer
 */
/**
 * @typedef {object} Timers  injectable so tests can drive time; defaults to the global timers
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 * @property {(id: unknown) => void} clearTimeout
 */
/**
 * @typedef {object} ClientOptions
 * @property {(event: ProviderEvent) => void} [onEvent]
 * @property {{new (url: string): WebSocket}} [WebSocketImpl]  defaults to globalThis.WebSocket
 * @property {number} [readyTimeoutMs]   connect + configure budget (default 15000)
 * @property {number} [finishTimeoutMs]  stop()'s wait for the provider to confirm the end (default 10000)
 * @property {number} [maxQueuedMs]      audio buffered before the session is ready (default 30000)
 * @property {Timers} [timers]
 * @property {() => number} [now]       ms since the epoch, for the grant's expiry (its expires_in counted from when
 *   the client is made; only a grant without one compares its expires_at with this clock), the liveness check and
 *   (Wiro) how much of the audio sent the provider can have heard (default Date.now)
 * @property {number} [maxBufferedMs]  audio the socket's send buffer may hold before the connection is given up as
 *   too slow (default 30000; a Session passes its maxReplayMs: audio beyond it could not be replayed)
 * @property {number} [livenessTimeoutMs]  a streaming socket that receives nothing and sends nothing out of its
 *   buffer this long is taken for dead (default 10000; 0: never)
 * @property {boolean} [interims]        Truebar: ask for interim results (default true)
 * @property {number} [utteranceGapMs]   Wiro: silence in increments that ends an utterance (default 1500)
 * @property {number} [endGraceMs]       Wiro: wait after task_end for task_postprocess_end (default 2000)
 */
/** The `type` of every ProviderEvent. */
export const EVENT: Readonly<{
    STATE: "state";
    PARTIAL: "partial";
    FINAL: "final";
    WARNING: "warning";
    ERROR: "error";
    COST: "cost";
    CLOSED: "closed";
}>;
/** Values of client.state; every one except IDLE is also announced as a `state` event. */
export const STATE: Readonly<{
    IDLE: "idle";
    CONNECTING: "connecting";
    CONFIGURING: "configuring";
    STREAMING: "streaming";
    FINISHING: "finishing";
    CLOSED: "closed";
    ERROR: "error";
}>;
export const DEFAULTS: Readonly<{
    readyTimeoutMs: 15000;
    finishTimeoutMs: 10000;
    maxQueuedMs: 30000;
    closeWaitMs: 3000;
    livenessTimeoutMs: 10000;
    slowUplinkWarnMs: 5000;
    maxBufferedMs: 30000;
    uplinkGraceMs: 10000;
    expirySkewS: 5;
}>;
export type ClientState = "idle" | "connecting" | "configuring" | "streaming" | "finishing" | "closed" | "error";
export type Word = {
    text: string;
    startMs: number;
    endMs: number;
};
/**
 * Why a session failed, decided where it is known rather than read back from the message:
 * 'transport' the connection went away without the protocol saying so (worth a reconnect);
 * 'expired'   the grant's token ran out (a fresh grant continues);
 * 'protocol'  the provider reported an error or broke the protocol (another attempt would fail the same way).
 */
export type ErrorCause = "transport" | "protocol" | "expired";
/**
 * Where a transcript's times come from, decided once, here at the provider adapter, and carried by every layer
 * after it (session, page, saved transcripts, exports): 'provider' when the provider gave both times, 'estimated'
 * when they are the client's guess (Wiro's arrival times) or missing (an export then places them).
 */
export type Timing = "provider" | "estimated";
export type ProviderEvent = {
    type: "state";
    state: Exclude<ClientState, "idle">;
} | {
    type: "partial";
    text: string;
    startMs: number | null;
    endMs: number | null;
    timing: Timing;
} | {
    type: "final";
    text: string;
    startMs: number | null;
    endMs: number | null;
    words: Word[];
    timing: Timing;
} | {
    type: "warning";
    message: string;
    code?: "slow_uplink";
} | {
    type: "error";
    message: string;
    fatal: boolean;
    cause: ErrorCause;
} | {
    type: "cost";
    turnCost: number | null;
    cumulativeCost: number | null;
} | {
    type: "closed";
    code: number;
    reason: string;
    clean: boolean;
};
/**
 * What a protocol can and cannot do, for the session and the page to ask instead of testing provider names.
 */
export type ProtocolCapabilities = {
    /**
     * finals carry the provider's own times (else they are the client's estimates)
     */
    timedWords: boolean;
    /**
     * how fast a file may be sent: as fast as accepted, or at 1x
     */
    pacing: "fast" | "realtime";
    /**
     * audio replayed after a reconnect may come back as words already final
     */
    replayRepeats: boolean;
};
/**
 * a provider's: its protocol's, plus
 *   whether it lists models (ASR tags) the page may offer
 */
export type Capabilities = ProtocolCapabilities & {
    tagsListing: boolean;
};
/**
 * injectable so tests can drive time; defaults to the global timers
 */
export type Timers = {
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (id: unknown) => void;
};
export type ClientOptions = {
    onEvent?: ((event: ProviderEvent) => void) | undefined;
    /**
     * defaults to globalThis.WebSocket
     */
    WebSocketImpl?: (new (url: string) => WebSocket) | undefined;
    /**
     * connect + configure budget (default 15000)
     */
    readyTimeoutMs?: number | undefined;
    /**
     * stop()'s wait for the provider to confirm the end (default 10000)
     */
    finishTimeoutMs?: number | undefined;
    /**
     * audio buffered before the session is ready (default 30000)
     */
    maxQueuedMs?: number | undefined;
    timers?: Timers | undefined;
    /**
     * ms since the epoch, for the grant's expiry (its expires_in counted from when
     * the client is made; only a grant without one compares its expires_at with this clock), the liveness check and
     * (Wiro) how much of the audio sent the provider can have heard (default Date.now)
     */
    now?: (() => number) | undefined;
    /**
     * audio the socket's send buffer may hold before the connection is given up as
     * too slow (default 30000; a Session passes its maxReplayMs: audio beyond it could not be replayed)
     */
    maxBufferedMs?: number | undefined;
    /**
     * a streaming socket that receives nothing and sends nothing out of its
     * buffer this long is taken for dead (default 10000; 0: never)
     */
    livenessTimeoutMs?: number | undefined;
    /**
     * Truebar: ask for interim results (default true)
     */
    interims?: boolean | undefined;
    /**
     * Wiro: silence in increments that ends an utterance (default 1500)
     */
    utteranceGapMs?: number | undefined;
    /**
     * Wiro: wait after task_end for task_postprocess_end (default 2000)
     */
    endGraceMs?: number | undefined;
};
