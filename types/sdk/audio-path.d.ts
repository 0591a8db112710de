export const MAX_SEND_AHEAD_MS: 2000;
/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./session-state.js').SessionState} SessionState */
/** @typedef {import('./session-types.js').SessionOptions} SessionOptions */
/** @typedef {import('./session-types.js').SessionEvent} SessionEvent */
/** @typedef {import('./session-types.js').CaptureLike} CaptureLike */
/** @typedef {import('./session-types.js').Level} Level */
/**
 * @typedef {object} AudioHost
 * @property {() => SessionState} state
 * @property {() => boolean} lost  the connection is being replaced (live frames only go to the buffer)
 * @property {{client: Pick<Client, 'sendAudio' | 'bufferedMs'> | null, grant: Grant | null,
 *   capabilities: {pacing: 'fast'|'realtime'} | null}} link
 * @property {(event: SessionEvent) => void} emit
 * @property {(level: Level) => void} level
 * @property {(message: string, err: unknown) => void} sourceLost  nothing left to try
 * @property {() => number} [now]  ms, for the backpressure stall (default Date.now)
 */
export class AudioPath {
    /** @param {SessionOptions} options  the source's and the replay's @param {AudioHost} host */
    constructor(options: SessionOptions, host: AudioHost);
    /** The replay accounting, once the first grant set its rate (null before). */
    get replay(): ReplayAccounting | null;
    /** The audio clock: ms captured so far, at the provider's rate. */
    get audioMs(): number;
    /** The live source, or null. */
    get capture(): import("./session-types.js").CaptureLike | null;
    /** The first grant is here: the replay accounting runs at its rate. @param {Grant} grant */
    prepare(grant: Grant): void;
    /** The source the grant asks for, opened (not live until use()). @param {Grant} grant */
    open(grant: Grant): Promise<import("./audio/capture.js").Capture> | Promise<import("./session-types.js").CaptureLike>;
    /**
     * The opened source is the live one; the clocks diagnostics compare start now.
     * @param {CaptureLike} capture @param {number} now  ms, the wall clock
     */
    use(capture: CaptureLike, now: number): void;
    /**
     * Backpressure for a source that can wait: hold it while the provider is not taking audio, while the socket's
     * send buffer holds more than MAX_SEND_AHEAD_MS of it, or while one more frame would push audio no final covers
     * out of the replay buffer (it could not be sent again after a drop). Asking the client's bufferedMs() is also
     * what gives up a socket whose buffer never drains: held here, the source sends nothing that would notice.
     */
    canSend(): boolean;
    /** 'terminal-loss': the audio no final covered, held or already pushed out, is lost (said before the end). */
    terminalLoss(): void;
    /** 'outage': what the buffer could not keep is said now; live frames go to the buffer from here. */
    beginOutage(): void;
    /**
     * 'replay': the new client is ready: the held audio first, in order (live frames went to the buffer until now).
     * @param {Pick<Client, 'sendAudio'>} client @param {boolean} repeats  the provider may say final words again
     */
    replayInto(client: Pick<Client, "sendAudio">, repeats: boolean): void;
    /**
     * The first client was replaced before it started (its grant ran out during the start): the new one gets the
     * audio captured so far, which the old one only queued. Not a reconnect: nothing was sent or lost.
     * @param {Pick<Client, 'sendAudio'>} client  not started: it queues the audio until its provider is ready
     */
    handOver(client: Pick<Client, "sendAudio">): void;
    /** 'reconnected': what was replayed and what was lost. @param {number} attempt */
    reconnected(attempt: number): void;
    /** The source's tail (its last frames pass through before this resolves), or nothing without a source. */
    get tail(): {
        stop: () => Promise<void>;
    } | null;
    /** The source goes (the session is over). */
    release(): void;
    /**
     * An interruption of the live source, as its own events would report it (this repository's tests).
     * @param {string} reason @param {import('./session-types.js').InterruptionKind} [kind]
     */
    interrupted(reason: string, kind?: import("./session-types.js").InterruptionKind): Promise<void>;
    /** The audio side of diagnostics(). @param {number} now  ms, the wall clock */
    facts(now: number): {
        capture: import("./session-types.js").CaptureLike | null;
        clockStart: {
            capture: CaptureLike;
            time: number;
        } | null;
        startedAt: number;
        now: number;
        replay: ReplayAccounting | null;
        reconnects: number;
    };
    #private;
}
export type Grant = import("./providers/client.js").Grant;
export type Client = import("./providers/stream.js").SessionClient;
export type SessionState = import("./session-state.js").SessionState;
export type SessionOptions = import("./session-types.js").SessionOptions;
export type SessionEvent = import("./session-types.js").SessionEvent;
export type CaptureLike = import("./session-types.js").CaptureLike;
export type Level = import("./session-types.js").Level;
export type AudioHost = {
    state: () => SessionState;
    /**
     * the connection is being replaced (live frames only go to the buffer)
     */
    lost: () => boolean;
    link: {
        client: Pick<Client, "sendAudio" | "bufferedMs"> | null;
        grant: Grant | null;
        capabilities: {
            pacing: "fast" | "realtime";
        } | null;
    };
    emit: (event: SessionEvent) => void;
    level: (level: Level) => void;
    /**
     * nothing left to try
     */
    sourceLost: (message: string, err: unknown) => void;
    /**
     * ms, for the backpressure stall (default Date.now)
     */
    now?: (() => number) | undefined;
};
import { ReplayAccounting } from './replay-accounting.js';
