export { stripOverlap } from "./replay-accounting.js";
export { withTimeout } from "./source-supervisor.js";
export { SessionError };
/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./providers/client.js').Capabilities} Capabilities */
/** @typedef {import('./providers/client.js').Word} Word */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./providers/protocol.js').ErrorCause} ErrorCause */
/** @typedef {import('./grants.js').GetGrant} GetGrant */
/** @typedef {import('./grants.js').EndGrant} EndGrant */
/** @typedef {import('./grants.js').GrantRequest} GrantRequest */
/** @typedef {import('./session-state.js').SessionState} SessionState */
/** @typedef {import('./session-state.js').StateDetail} StateDetail */
/** @typedef {import('./session-state.js').StateListener} StateListener */
/** @typedef {import('./session-state.js').Core} Core */
/** @typedef {import('./session-state.js').CoreInput} CoreInput */
/** @typedef {import('./session-state.js').Effect} Effect */
/** @typedef {import('./session-types.js').Level} Level */
/** @typedef {import('./session-types.js').InterruptionKind} InterruptionKind */
/** @typedef {import('./session-types.js').ErrorCode} ErrorCode */
/** @typedef {import('./session-types.js').SourceCode} SourceCode */
/** @typedef {import('./session-types.js').Timing} Timing */
/** @typedef {import('./session-types.js').SessionEvent} SessionEvent */
/** @typedef {import('./session-types.js').StateEvent} StateEvent */
/** @typedef {import('./session-types.js').SessionEventMap} SessionEventMap */
/** @typedef {import('./session-types.js').SourceOptions} SourceOptions */
/** @typedef {import('./session-types.js').CaptureLike} CaptureLike */
/** @typedef {import('./session-types.js').SessionOptions} SessionOptions */
/** @typedef {import('./session-types.js').SessionErrorCode} SessionErrorCode */
export class Session {
    /** @param {SessionOptions} options */
    constructor(options: SessionOptions);
    /**
     * Listen for `type` ('state', 'level', 'event' for every SessionEvent, or one event type such as 'final').
     * Listeners run in the order added; one that throws is logged and the others still run.
     * @template {keyof SessionEventMap} K
     * @param {K} type
     * @param {(e: SessionEventMap[K]) => void} fn
     * @returns {() => void} removes the listener (the same as off(type, fn))
     */
    on<K extends keyof SessionEventMap>(type: K, fn: (e: SessionEventMap[K]) => void): () => void;
    /**
     * @template {keyof SessionEventMap} K
     * @param {K} type
     * @param {(e: SessionEventMap[K]) => void} fn
     */
    off<K extends keyof SessionEventMap>(type: K, fn: (e: SessionEventMap[K]) => void): void;
    /** The provider this session asks grants for. */
    get provider(): string;
    /** What the current grant's provider can do (timed words, pacing, …); null before the first grant. */
    get capabilities(): import("./providers/protocol.js").Capabilities | null;
    /** @returns {SessionState} */
    get state(): SessionState;
    /** The audio clock: ms of audio captured so far, at the provider's rate. */
    get audioMs(): number;
    /**
     * Starts the recording; once per instance.
     * Resolves when audio flows to the provider: the state is then `streaming`, or `stopping` when stop() came while
     * connecting (the audio captured so far is still transcribed, and stop() waits for its finals).
     * Rejects with:
     * - a SessionError 'already_started': a second call (the session is untouched);
     * - the `signal`'s reason when it was aborted before or during the start (a SessionError 'aborted' for a signal
     *   without one); the state is `cancelled`;
     * - a SessionError 'ended': stop() or cancel() ended the session before audio flowed, before start() (then no
     *   grant is asked for) or during it; the state is `stopped` or `cancelled`;
     * - otherwise the failure itself (a CaptureError such as 'denied', the grant source's rejection, the provider
     *   client's error): the state is `error`, its detail carries the same message and code.
     * @returns {Promise<void>}
     */
    start(): Promise<void>;
    /** Graceful: the source's tail is sent, then the provider is asked to finish and its last finals arrive. A
     * connection lost meanwhile is replaced and what no final covered is sent again, then that one finishes.
     * Stop again while stopping (a file that ran out stops itself, then the user presses Stop) waits for the same end.
     * Resolves, never rejects, once the session is over and the grant handed back, whichever way it ended: `stopped`,
     * `error` (the last finals could not be had in time or at all, or the source failed: the state's detail says why)
     * or `cancelled` (cancel() meanwhile); read `state`. Before start() or while starting, it ends the session at once
     * (`stopped`), and a start() under way rejects with a SessionError 'ended'.
     * @returns {Promise<void>} */
    stop(): Promise<void>;
    /** Abandon the session now: nothing more reaches the listeners but the `state` change to `cancelled`. */
    cancel(): void;
    /**
     * Tell the grant source the current grant is finished with, so it can release what it holds upstream (a billed
     * Wiro task). The session does this itself when it ends; a page calls it on pagehide, with `beacon`, since an
     * unloading page gets only a beacon out.
     * @param {{beacon?: boolean}} [init]
     */
    endGrant({ beacon }?: {
        beacon?: boolean;
    }): void;
    /** What a bug report needs, as plain values. */
    diagnostics(): {
        provider: string | undefined;
        protocol: "truebar" | "wiro" | undefined;
        browser: string;
        deviceLabel: string;
        deviceRate: number | null;
        contextRate: number | null;
        providerRate: number | null;
        ratio: string | null;
        framesSent: number;
        framesExpected: number;
        clientFramesSent: number;
        socketState: string;
        sessionState: import("./session-state.js").SessionState;
        reconnects: number;
        tokenExpiresAt: string | null;
        bufferedMs: number;
        droppedMs: number;
    };
    #private;
}
export type Grant = import("./providers/client.js").Grant;
export type ProviderEvent = import("./providers/client.js").ProviderEvent;
export type Capabilities = import("./providers/client.js").Capabilities;
export type Word = import("./providers/client.js").Word;
export type Client = import("./providers/stream.js").SessionClient;
export type ErrorCause = import("./providers/protocol.js").ErrorCause;
export type GetGrant = import("./grants.js").GetGrant;
export type EndGrant = import("./grants.js").EndGrant;
export type GrantRequest = import("./grants.js").GrantRequest;
export type SessionState = import("./session-state.js").SessionState;
export type StateDetail = import("./session-state.js").StateDetail;
export type StateListener = import("./session-state.js").StateListener;
export type Core = import("./session-state.js").Core;
export type CoreInput = import("./session-state.js").CoreInput;
export type Effect = import("./session-state.js").Effect;
export type Level = import("./session-types.js").Level;
export type InterruptionKind = import("./session-types.js").InterruptionKind;
export type ErrorCode = import("./session-types.js").ErrorCode;
export type SourceCode = import("./session-types.js").SourceCode;
export type Timing = import("./session-types.js").Timing;
export type SessionEvent = import("./session-types.js").SessionEvent;
export type StateEvent = import("./session-types.js").StateEvent;
export type SessionEventMap = import("./session-types.js").SessionEventMap;
export type SourceOptions = import("./session-types.js").SourceOptions;
export type CaptureLike = import("./session-types.js").CaptureLike;
export type SessionOptions = import("./session-types.js").SessionOptions;
export type SessionErrorCode = import("./session-types.js").SessionErrorCode;
import { SessionError } from './session-types.js';
export { ApiError, appGrants } from "./grants.js";
