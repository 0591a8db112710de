/**
 * Whether the resampler takes `rate`: a whole number of Hz in 1..MAX_RATE (the polyphase arithmetic is on integers).
 * @param {unknown} rate
 * @returns {rate is number}
 */
export function isRate(rate: unknown): rate is number;
/**
 * Throws the RangeError a PcmPipeline of these options would, without designing its filter: for a caller that
 * builds the pipeline elsewhere (the worklet, on the audio thread, where a throw is only a 'processorerror').
 * @param {{inRate: number, outRate: number, frameSamples: number}} options
 */
export function checkPipeline({ inRate, outRate, frameSamples }: {
    inRate: number;
    outRate: number;
    frameSamples: number;
}): void;
/**
 * The Kaiser-windowed sinc polyphase filter for inRate -> outRate (equal rates: an empty pass-through design).
 * @param {number} inRate
 * @param {number} outRate
 * @returns {FilterDesign}
 */
export function designFilter(inRate: number, outRate: number): FilterDesign;
/**
 * Float samples to PCM16 into `output` (same rules as floatTo16BitPCM); count defaults to input.length.
 * @param {Float32Array} input
 * @param {Int16Array} output
 * @param {number} [count]
 */
export function floatTo16BitPCMInto(input: Float32Array, output: Int16Array, count?: number): void;
/**
 * Clamp to [-1, 1], negatives x 0x8000, others x 0x7FFF, truncated toward zero; NaN -> 0.
 * @param {Float32Array} input
 * @returns {Int16Array}
 */
export function floatTo16BitPCM(input: Float32Array): Int16Array;
/**
 * The level meter: `block` added to `span`. Once the span holds at least `every` samples, its level and an empty
 * span; before that, no level and the span grown. NaN samples count as 0 and +-Infinity as full scale, as the
 * resampler takes them, so one bad sample cannot make a level NaN.
 * @param {Readonly<LevelSpan>} span
 * @param {Float32Array} block
 * @param {number} every  samples per level (the worklet: 50 ms at the context's rate)
 * @returns {{span: Readonly<LevelSpan>, level: Level | null}}
 */
export function meter(span: Readonly<LevelSpan>, block: Float32Array, every: number): {
    span: Readonly<LevelSpan>;
    level: Level | null;
};
/** @typedef {{sampleRate: number, frameSamples: number}} PcmFormat */
/** Truebar: 16 kHz mono PCM16, 100 ms frames. @type {Readonly<PcmFormat>} */
export const TRUEBAR_FORMAT: Readonly<PcmFormat>;
/** Wiro: 24 kHz mono PCM16, 200 ms frames. @type {Readonly<PcmFormat>} */
export const WIRO_FORMAT: Readonly<PcmFormat>;
/** Kaiser stopband target in dB; >= 100 dB is required, the rest is margin. */
export const ATTENUATION_DB: 120;
/** The highest rate in Hz the resampler takes: far above any audio device's or provider's. */
export const MAX_RATE: 1000000;
/** Streaming windowed-sinc resampler; state is carried across calls of any length. */
export class Resampler {
    /**
     * @param {number} inRate integer Hz
     * @param {number} outRate integer Hz
     */
    constructor(inRate: number, outRate: number);
    /** @readonly */
    readonly design: FilterDesign;
    /** @readonly */
    readonly inRate: number;
    /** @readonly */
    readonly outRate: number;
    _passthrough: boolean;
    _stepInt: number;
    _stepRem: number;
    _buf: Float32Array<ArrayBuffer>;
    _len: number;
    _start: number;
    _whole: number;
    _rest: number;
    _emitted: number;
    _i: number;
    _p: number;
    _lastNonZero: number;
    /** Output samples held back until flush(): the constant latency, in output samples. */
    get delay(): number;
    /** Forget the stream: the next sample is time 0 again. */
    reset(): void;
    /**
     * How many samples process(x) will return for x.length === inputLength (given the current state).
     * @param {number} inputLength
     */
    outputCount(inputLength: number): number;
    /**
     * Resample the next chunk.
     * @param {Float32Array} input
     * @returns {Float32Array} the output samples that became available
     */
    process(input: Float32Array): Float32Array;
    /**
     * Allocation-free process(): writes into `output` from `offset`; it must have room for outputCount(n).
     * @param {Float32Array} input
     * @param {Float32Array} output
     * @param {number} [offset]
     * @returns {number} samples written
     */
    processInto(input: Float32Array, output: Float32Array, offset?: number): number;
    /**
     * End of stream: emit the held-back tail (the input is taken to be followed by zeros) and reset.
     * @returns {Float32Array}
     */
    flush(): Float32Array;
    /** Make room for `extra` more input samples after the live history. @param {number} extra */
    _reserve(extra: number): void;
    /**
     * Compute outputs _emitted .. target-1 into out[o..], then drop history no later output reads.
     * @param {number} target @param {Float32Array} out @param {number} o
     */
    _emit(target: number, out: Float32Array, o: number): number;
}
/** Cuts an Int16 stream into frames of exactly frameSamples, each with its own (transferable) ArrayBuffer. */
export class Framer {
    /** @param {number} frameSamples */
    constructor(frameSamples: number);
    /** @readonly */
    readonly frameSamples: number;
    _frame: Int16Array<ArrayBuffer>;
    _fill: number;
    /** Samples waiting for the current frame to fill. */
    get pending(): number;
    /**
     * @param {Int16Array} samples
     * @param {number} [count] use only samples[0 .. count-1]
     * @returns {Int16Array[]} the frames completed by these samples (often none)
     */
    push(samples: Int16Array, count?: number): Int16Array[];
    /** The shorter remainder (its own buffer), or null when nothing is pending. @returns {Int16Array | null} */
    flush(): Int16Array | null;
}
/** Resampler -> floatTo16BitPCM -> Framer: what the worklet and file transcription run. */
export class PcmPipeline {
    /** @param {{inRate: number, outRate: number, frameSamples: number}} options */
    constructor({ inRate, outRate, frameSamples }: {
        inRate: number;
        outRate: number;
        frameSamples: number;
    });
    /** @readonly */
    readonly resampler: Resampler;
    /** @readonly */
    readonly framer: Framer;
    _float: Float32Array<ArrayBuffer>;
    _pcm: Int16Array<ArrayBuffer>;
    /** @param {number} n */
    _scratch(n: number): void;
    /**
     * @param {Float32Array} input samples at inRate
     * @returns {Int16Array[]} complete frames at outRate
     */
    push(input: Float32Array): Int16Array[];
    /** End of stream: the resampler's tail, then the last short frame if any. @returns {Int16Array[]} */
    flush(): Int16Array[];
}
/**
 * Linear levels of the device-rate input over about 50 ms, for a level meter.
 * @typedef {object} Level
 * @property {number} rms
 * @property {number} peak  the largest magnitude
 * @property {boolean} silent  every sample was 0 (a muted track, Firefox's channel-less inputs)
 */
/**
 * What the level meter has summed since it last reported.
 * @typedef {object} LevelSpan
 * @property {number} count  samples
 * @property {number} sum  of their squares
 * @property {number} peak  the largest magnitude
 */
/** A span with nothing in it yet: where a meter starts. @type {Readonly<LevelSpan>} */
export const EMPTY_LEVEL_SPAN: Readonly<LevelSpan>;
export type FilterDesign = {
    inRate: number;
    outRate: number;
    /**
     * L = outRate / gcd
     */
    up: number;
    /**
     * M = inRate / gcd
     */
    down: number;
    /**
     * H: output n reads inputs i-H+1 .. i+H around i = floor(n * M / L)
     */
    halfTaps: number;
    /**
     * 2H, a multiple of 4
     */
    taps: number;
    /**
     * sinc cutoff relative to the input sample spacing (1 = input Nyquist)
     */
    cutoff: number;
    /**
     * Kaiser window shape
     */
    beta: number;
    /**
     * rows are OVERSAMPLE + 1 sub-sample phases instead of the L exact phases
     */
    interpolated: boolean;
    rows: number;
    /**
     * rows x taps, row-major
     */
    coefficients: Float64Array;
    /**
     * output samples held back until flush()
     */
    delay: number;
};
export type PcmFormat = {
    sampleRate: number;
    frameSamples: number;
};
/**
 * Linear levels of the device-rate input over about 50 ms, for a level meter.
 */
export type Level = {
    rms: number;
    /**
     * the largest magnitude
     */
    peak: number;
    /**
     * every sample was 0 (a muted track, Firefox's channel-less inputs)
     */
    silent: boolean;
};
/**
 * What the level meter has summed since it last reported.
 */
export type LevelSpan = {
    /**
     * samples
     */
    count: number;
    /**
     * of their squares
     */
    sum: number;
    /**
     * the largest magnitude
     */
    peak: number;
};
/**
 * What the "pcm-processor" worklet (./pcm-processor.js) posts to its node, read by capture.js:
 * - frame: one frame of PCM16LE at outRate, its buffer transferred; seq counts frames from 0
 * - level: every ~50 ms, the linear levels of the device-rate input (meter())
 * - flushed: after a 'flush', the totals (frames posted, device-rate samples taken in); no message follows
 */
export type ProcessorMessage = {
    type: "frame";
    pcm: ArrayBuffer;
    seq: number;
} | {
    type: "level";
    rms: number;
    peak: number;
    silent: boolean;
} | {
    type: "flushed";
    frames: number;
    inSamples: number;
};
/**
 * What the node posts to the worklet: 'flush' releases the resampler's delayed tail, then stops; 'stop' stops at
 * once, the tail discarded (the capture was released).
 */
export type NodeMessage = {
    type: "flush";
} | {
    type: "stop";
};
