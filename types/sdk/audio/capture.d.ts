/**
 * A message from the worklet's port (the vocabulary ./pcm.js types), or null when `data` is not one of them: only
 * the worklet posts there, so a null is a bug, ignored rather than let through as undefined fields and NaN.
 * @param {unknown} data  MessageEvent.data
 * @returns {ProcessorMessage | null}
 */
export function parseProcessorMessage(data: unknown): ProcessorMessage | null;
/** @param {unknown} err @returns {CaptureError} */
export function describeMediaError(err: unknown): CaptureError;
/** Throws a CaptureError when this browser or page cannot capture at all. */
export function checkSupport(): void;
/**
 * A new AudioContext at the device's own rate, asked to start at once. Call it synchronously inside a click or
 * key handler, before any await: Safari starts audio only from the user's gesture itself.
 * @param {typeof AudioContext} [AC]
 * @returns {AudioContext | undefined}  undefined when there is no Web Audio (capture then says so)
 */
export function openAudioContext(AC?: typeof AudioContext): AudioContext | undefined;
/**
 * Resume `context`, or fail with a message that says what to do, within `ms`: a resume() that never settles
 * (Safari outside a gesture, iOS during a call) must not hang Start.
 * @param {AudioContext} context
 * @param {number} ms
 */
export function resumeContext(context: AudioContext, ms: number): Promise<void>;
/**
 * Open the microphone and start producing frames.
 * @param {CaptureOptions} options
 * @returns {Promise<Capture>}
 */
export function startCapture(options: CaptureOptions): Promise<Capture>;
/** @typedef {'unsupported'|'insecure'|'denied'|'no-device'|'busy'|'suspended'|'failed'} CaptureErrorCode */
/** @typedef {import('./pcm.js').ProcessorMessage} ProcessorMessage */
/** @typedef {import('./pcm.js').NodeMessage} NodeMessage */
/** @typedef {import('./pcm.js').Level} Level */
/** How long a context may take to resume before the page says why audio does not start. */
export const RESUME_TIMEOUT_MS: 3000;
export class CaptureError extends Error {
    /** @param {CaptureErrorCode} code @param {string} message @param {unknown} [cause] */
    constructor(code: CaptureErrorCode, message: string, cause?: unknown);
    code: CaptureErrorCode;
    cause: unknown;
}
export class Capture {
    /**
     * @param {MediaStream} stream @param {AudioContext} context @param {AudioWorkletNode} node
     * @param {MediaStreamAudioSourceNode} source
     * @param {{ownsStream: boolean, ownsContext: boolean}} [owns]  what release() may stop and close
     */
    constructor(stream: MediaStream, context: AudioContext, node: AudioWorkletNode, source: MediaStreamAudioSourceNode, owns?: {
        ownsStream: boolean;
        ownsContext: boolean;
    });
    stream: MediaStream;
    context: AudioContext;
    node: AudioWorkletNode;
    source: MediaStreamAudioSourceNode;
    owns: {
        ownsStream: boolean;
        ownsContext: boolean;
    };
    deviceLabel: string;
    deviceSettings: MediaTrackSettings;
    contextRate: number;
    framesPosted: number;
    /** @type {Promise<{frames: number, inSamples: number}> | null} */
    stopping: Promise<{
        frames: number;
        inSamples: number;
    }> | null;
    released: boolean;
    /** Removes the listeners startCapture put on the stream's tracks and the context (a caller's outlive us). */
    unlisten: () => void;
    /** Flush the resampler's tail (its frames reach onFrame before this resolves), then release everything. */
    stop(): Promise<{
        frames: number;
        inSamples: number;
    }>;
    /** Stop tracks and close the context without flushing (cancel, errors). Idempotent.
     * @returns {Promise<void>} resolves when the context is closed */
    release(): Promise<void>;
}
export type CaptureErrorCode = "unsupported" | "insecure" | "denied" | "no-device" | "busy" | "suspended" | "failed";
export type ProcessorMessage = import("./pcm.js").ProcessorMessage;
export type NodeMessage = import("./pcm.js").NodeMessage;
export type Level = import("./pcm.js").Level;
export type CaptureOptions = {
    /**
     * provider rate in Hz (16000 Truebar/local, 24000 Wiro)
     */
    outRate: number;
    /**
     * samples per frame at outRate (1600 = 100 ms at 16 kHz)
     */
    frameSamples: number;
    /**
     * a specific microphone; default: the system's
     */
    deviceId?: string | undefined;
    /**
     * browser processing; off by default: speech engines want the raw signal
     */
    echoCancellation?: boolean | undefined;
    noiseSuppression?: boolean | undefined;
    autoGainControl?: boolean | undefined;
    onFrame: (pcm: Int16Array, seq: number) => void;
    onLevel?: ((level: Level) => void) | undefined;
    /**
     * the device went away (ended), audio processing stopped running (the context's state) or the worklet threw
     * (failed: a new one, built the same way, would too)
     */
    onInterrupted?: ((reason: string, kind: "ended" | "suspended" | "closed" | "interrupted" | "failed") => void) | undefined;
    workletUrl?: string | undefined;
    /**
     * the caller's (made inside a click, for Safari); it is not closed here
     */
    context?: AudioContext | undefined;
    /**
     * the caller's microphone stream; its tracks are not stopped here
     */
    stream?: MediaStream | undefined;
    /**
     * default RESUME_TIMEOUT_MS
     */
    resumeTimeoutMs?: number | undefined;
};
