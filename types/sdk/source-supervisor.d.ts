/**
 * `promise`, or a rejection with `message` after `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} message
 * @returns {Promise<T>}
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T>;
export class SourceSupervisor {
    /** @param {SourceConfig} config @param {SourceHooks} hooks */
    constructor(config: SourceConfig, hooks: SourceHooks);
    /** The live source, or null. */
    get capture(): import("./session-types.js").CaptureLike | null;
    /** The first source: the caller's (a file), else the microphone. Not live until use(). */
    open(): Promise<import("./audio/capture.js").Capture> | Promise<import("./session-types.js").CaptureLike>;
    /** @param {CaptureLike} capture  the source open() gave, now the live one */
    use(capture: CaptureLike): void;
    /** The source's tail (its last frames reach onFrame before this resolves). */
    stop(): Promise<void>;
    release(): void;
    /**
     * The source went away or audio processing stopped. One recovery at a time: a second notice waits for the first
     * and is dropped when the source it came from has been replaced.
     * @param {string} reason
     * @param {InterruptionKind} [kind]
     * @param {number} [generation]  the source that reported it (default: the current one)
     */
    interrupted(reason: string, kind?: InterruptionKind, generation?: number): Promise<void>;
    #private;
}
export type SourceOptions = import("./session.js").SourceOptions;
export type CaptureLike = import("./session.js").CaptureLike;
export type InterruptionKind = import("./session.js").InterruptionKind;
export type Level = import("./session.js").Level;
export type SourceEvent = Extract<import("./session.js").SessionEvent, {
    type: "source";
}>;
/**
 * What the supervisor opens, from the session's options.
 */
export type SourceConfig = {
    /**
     * a source that is not reopened (a file)
     */
    create?: ((o: SourceOptions) => Promise<CaptureLike>) | undefined;
    microphone?: ((o: SourceOptions & {
        deviceId?: string;
    }) => Promise<CaptureLike>) | undefined;
    deviceId?: string | undefined;
    audioContext?: AudioContext | undefined;
    mediaStream?: MediaStream | undefined;
    echoCancellation?: boolean | undefined;
    noiseSuppression?: boolean | undefined;
    autoGainControl?: boolean | undefined;
    workletUrl?: string | undefined;
    /**
     * at the start default capture.js's RESUME_TIMEOUT_MS (3000), in a recovery 2000
     */
    resumeTimeoutMs?: number | undefined;
};
/**
 * The session's side.
 */
export type SourceHooks = {
    outRate: number;
    frameSamples: number;
    pacing: "fast" | "realtime";
    onFrame: (pcm: Int16Array) => void;
    onLevel: (level: Level) => void;
    canSend: () => boolean;
    /**
     * the session is ending (stopping or over): no recovery
     */
    over: () => boolean;
    report: (event: SourceEvent) => void;
    /**
     * nothing left to try
     */
    lost: (message: string, err: unknown) => void;
};
