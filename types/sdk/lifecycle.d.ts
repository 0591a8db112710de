/**
 * The start: resolves when audio flows to the provider; rejects (the session already in `error`, or ended) when
 * it cannot. What was got before an end (a grant, a client, a source) is let go of.
 * @param {StartHost} host
 */
export function runStart(host: StartHost): Promise<void>;
/**
 * What the finish works with. `lost`: the connection is being replaced (the reducer's link); `stopping`: the state
 * is still `stopping`; `sourceFailed`: the source's tail failed (the provider is finished all the same);
 * `unfinished`: every round ended with the connection lost again, audio still held (the driver says it is lost);
 * `timedOut`: the bound passed (the driver says what was not transcribed); `finished`: the end, whichever way.
 * @typedef {object} FinishHost
 * @property {{stop: () => Promise<unknown>} | null} source
 * @property {(err: unknown) => void} sourceFailed
 * @property {{client: {stop: () => Promise<unknown>} | null, wake: () => void, outageEnded: Promise<void>, end: () => void}} link
 * @property {number} rounds  reconnects a finish may wait through (maxReconnects)
 * @property {() => boolean} lost
 * @property {() => boolean} stopping
 * @property {() => void} unfinished
 * @property {(boundMs: number) => void} timedOut
 * @property {() => void} finished
 * @property {Timers} timers
 */
/**
 * The source's tail and the provider's last finals, bounded: an outage can otherwise hold Stop for minutes (each
 * reconnect waits for a grant, then for the socket).
 * @param {FinishHost} host
 * @param {number} [boundMs]
 */
export function runFinish(host: FinishHost, boundMs?: number): Promise<void>;
/** How long stop() waits for the last finals, reconnects included, unless the session's options say otherwise. */
export const DEFAULT_STOP_TIMEOUT_MS: 30000;
export function stopTimeoutMessage(boundMs: number, droppedMs: number): string;
/**
 * What the finish works with. `lost`: the connection is being replaced (the reducer's link); `stopping`: the state
 * is still `stopping`; `sourceFailed`: the source's tail failed (the provider is finished all the same);
 * `unfinished`: every round ended with the connection lost again, audio still held (the driver says it is lost);
 * `timedOut`: the bound passed (the driver says what was not transcribed); `finished`: the end, whichever way.
 */
export type FinishHost = {
    source: {
        stop: () => Promise<unknown>;
    } | null;
    sourceFailed: (err: unknown) => void;
    link: {
        client: {
            stop: () => Promise<unknown>;
        } | null;
        wake: () => void;
        outageEnded: Promise<void>;
        end: () => void;
    };
    /**
     * reconnects a finish may wait through (maxReconnects)
     */
    rounds: number;
    lost: () => boolean;
    stopping: () => boolean;
    unfinished: () => void;
    timedOut: (boundMs: number) => void;
    finished: () => void;
    timers: Timers;
};
export type Grant = import("./providers/client.js").Grant;
export type Client = import("./providers/stream.js").SessionClient;
export type CaptureLike = import("./session-types.js").CaptureLike;
export type CoreInput = import("./session-state.js").CoreInput;
export type Timers = import("./grants.js").Timers;
/**
 * What the start sequence works with. `starting`: the session is still `starting` (Stop or Cancel may end it while
 * the grant or the source is awaited); `ended`: settles when the session is over (a final state); `audio.prepare`:
 * the grant is here, set up what it decides (the replay accounting); `audio.use`: the opened source is the live
 * one, from `now` (ms); `audio.handOver`: a client that replaces the first before it started gets the audio
 * captured so far; `fail`: the session is over in `error` (a no-op once it is over anyway).
 */
export type StartHost = {
    link: {
        first: () => Promise<Grant>;
        open: () => Client;
        end: () => void;
        grant: Grant | null;
        client: Client | null;
    };
    audio: {
        prepare: (grant: Grant) => void;
        open: (grant: Grant) => Promise<CaptureLike>;
        use: (capture: CaptureLike, now: number) => void;
        handOver: (client: Client) => void;
    };
    starting: () => boolean;
    ended: Promise<void>;
    step: (input: CoreInput) => void;
    fail: (err: unknown) => void;
    /**
     * ms, the wall clock (default Date.now)
     */
    now?: (() => number) | undefined;
};
