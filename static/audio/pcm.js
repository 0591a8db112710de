// Exact PCM for speech providers: resample the device's float audio to the provider's rate, convert to signed
// 16-bit little-endian PCM (the platform's Int16Array byte order on every browser we target) and cut fixed frames.
//
// Pure ES module: no DOM, no AudioWorklet globals, no imports, so the worklet, the page, Node and the tests all
// load this same file. testkit/audio.py is its Python reference: same filter, same integer phase arithmetic, same
// order of floating-point additions; only Math.sin's last bit may differ from the C library's, so int16 outputs
// agree within 1 LSB.
//
// Time model: output sample n is the input signal at time n / outRate (no phase offset). After N input samples
// exactly max(0, floor(N * outRate / inRate) - delay) outputs have been emitted; flush() emits the rest, so a
// whole stream yields exactly ceil(N * outRate / inRate) samples: every output instant inside the input's span.
//
// Also here, so Node can test them: the worklet's level meter (meter()) and the types of what the worklet and its node
// post to each other (ProcessorMessage, NodeMessage).

/** @typedef {{sampleRate: number, frameSamples: number}} PcmFormat */

/** Truebar: 16 kHz mono PCM16, 100 ms frames. @type {Readonly<PcmFormat>} */
export const TRUEBAR_FORMAT = Object.freeze({ sampleRate: 16000, frameSamples: 1600 });
/** Wiro: 24 kHz mono PCM16, 200 ms frames. @type {Readonly<PcmFormat>} */
export const WIRO_FORMAT = Object.freeze({ sampleRate: 24000, frameSamples: 4800 });

// Design constants; testkit/audio.py holds the same values (the golden tests fail if they drift apart).
/** Kaiser stopband target in dB; >= 100 dB is required, the rest is margin. */
export const ATTENUATION_DB = 120;
// Passband and stopband edges in fractions of the lower of the two rates (its Nyquist frequency is 0.5). The
// stopband starts at that Nyquist frequency: downsampling, whatever would fold back into the output is attenuated
// by ATTENUATION_DB; upsampling, so is every image (at in - f and up). 0.4 .. 0.5 is the transition band.
const PASSBAND = 0.4;
const STOPBAND = 0.5;
// Full polyphase table while it holds at most this many coefficients. Above it (e.g. 44101 -> 16000 has 16000
// phases) a table of OVERSAMPLE + 1 sub-sample phases is interpolated linearly: two dot products per output.
const MAX_TABLE = 1 << 18;
const OVERSAMPLE = 512;
// Power-series terms for I0: double precision for beta <= 14; fixed so Python sums exactly the same terms.
const I0_TERMS = 40;
// Input is consumed in blocks of at most this many samples so the history buffer stays small for any call size.
const BLOCK = 4096;

/**
 * @typedef {object} FilterDesign
 * @property {number} inRate
 * @property {number} outRate
 * @property {number} up L = outRate / gcd
 * @property {number} down M = inRate / gcd
 * @property {number} halfTaps H: output n reads inputs i-H+1 .. i+H around i = floor(n * M / L)
 * @property {number} taps 2H, a multiple of 4
 * @property {number} cutoff sinc cutoff relative to the input sample spacing (1 = input Nyquist)
 * @property {number} beta Kaiser window shape
 * @property {boolean} interpolated rows are OVERSAMPLE + 1 sub-sample phases instead of the L exact phases
 * @property {number} rows
 * @property {Float64Array} coefficients rows x taps, row-major
 * @property {number} delay output samples held back until flush()
 */

/** @param {number} a @param {number} b */
function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The highest rate in Hz the resampler takes: far above any audio device's or provider's. */
export const MAX_RATE = 1_000_000;

/**
 * Whether the resampler takes `rate`: a whole number of Hz in 1..MAX_RATE (the polyphase arithmetic is on integers).
 * @param {unknown} rate
 * @returns {rate is number}
 */
export function isRate(rate) {
  return typeof rate === 'number' && Number.isInteger(rate) && rate >= 1 && rate <= MAX_RATE;
}

/** @param {number} rate @param {string} name */
function checkRate(rate, name) {
  if (!isRate(rate)) {
    throw new RangeError(`${name} must be an integer number of Hz in 1..${MAX_RATE}, got ${rate}`);
  }
}

/** @param {number} frameSamples */
function checkFrameSamples(frameSamples) {
  if (!Number.isInteger(frameSamples) || frameSamples < 1) {
    throw new RangeError(`frameSamples must be a positive integer, got ${frameSamples}`);
  }
}

/**
 * Throws the RangeError a PcmPipeline of these options would, without designing its filter: for a caller that
 * builds the pipeline elsewhere (the worklet, on the audio thread, where a throw is only a 'processorerror').
 * @param {{inRate: number, outRate: number, frameSamples: number}} options
 */
export function checkPipeline({ inRate, outRate, frameSamples }) {
  checkRate(inRate, 'inRate');
  checkRate(outRate, 'outRate');
  checkFrameSamples(frameSamples);
}

/** I0 by its power series, in the order testkit/audio.py uses. @param {number} x */
function besselI0(x) {
  const halfSq = (x / 2) * (x / 2);
  let term = 1;
  let total = 1;
  for (let k = 1; k <= I0_TERMS; k++) {
    term = term * halfSq / (k * k);
    total = total + term;
  }
  return total;
}

/**
 * The Kaiser-windowed sinc polyphase filter for inRate -> outRate (equal rates: an empty pass-through design).
 * @param {number} inRate
 * @param {number} outRate
 * @returns {FilterDesign}
 */
export function designFilter(inRate, outRate) {
  checkRate(inRate, 'inRate');
  checkRate(outRate, 'outRate');
  const g = gcd(inRate, outRate);
  const up = outRate / g;
  const down = inRate / g;
  const base = Math.min(inRate, outRate);
  // The sinc's -6 dB point sits mid-transition, (PASSBAND + STOPBAND) / 2 of the lower rate; relative to the input's
  // Nyquist frequency that is (PASSBAND + STOPBAND) * base / inRate.
  const cutoff = (PASSBAND + STOPBAND) * base / inRate;
  const beta = 0.1102 * (ATTENUATION_DB - 8.7);
  if (up === down) {
    return { inRate, outRate, up: 1, down: 1, halfTaps: 0, taps: 0, cutoff: 1, beta, interpolated: false, rows: 1,
      coefficients: new Float64Array(0), delay: 0 };
  }
  // Kaiser's estimate: taps - 1 = (A - 7.95) / (2.285 * transition width in radians per input sample).
  const transition = 2.0 * Math.PI * (STOPBAND - PASSBAND) * base / inRate;
  const length = (ATTENUATION_DB - 7.95) / (2.285 * transition) + 1.0;
  const halfTaps = 2 * Math.ceil(length / 4.0);
  const taps = 2 * halfTaps;
  const interpolated = up * taps > MAX_TABLE;
  const rows = interpolated ? OVERSAMPLE + 1 : up;
  const coefficients = new Float64Array(rows * taps);
  const i0Beta = besselI0(beta);
  for (let r = 0; r < rows; r++) {
    const phase = interpolated ? r / OVERSAMPLE : r / up;
    for (let j = 0; j < taps; j++) {
      const tau = (j - halfTaps + 1) - phase;
      const arg = Math.PI * (cutoff * tau);
      const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
      const ratio = tau / halfTaps;
      const inside = Math.max(1.0 - ratio * ratio, 0.0);
      const kaiser = besselI0(beta * Math.sqrt(inside)) / i0Beta;
      coefficients[r * taps + j] = (cutoff * sinc) * kaiser;
    }
  }
  // Output n can be computed once input i_n + H exists; holding back D = floor(H * L / M) outputs guarantees that
  // while the emitted count stays a pure function of N: floor(N * L / M) - D.
  const delay = Math.floor((halfTaps * up) / down);
  return { inRate, outRate, up, down, halfTaps, taps, cutoff, beta, interpolated, rows, coefficients, delay };
}

/** Streaming windowed-sinc resampler; state is carried across calls of any length. */
export class Resampler {
  /**
   * @param {number} inRate integer Hz
   * @param {number} outRate integer Hz
   */
  constructor(inRate, outRate) {
    /** @readonly */
    this.design = designFilter(inRate, outRate);
    /** @readonly */
    this.inRate = inRate;
    /** @readonly */
    this.outRate = outRate;
    const d = this.design;
    this._passthrough = d.up === d.down;
    this._stepInt = Math.floor(d.down / d.up);
    this._stepRem = d.down % d.up;
    this._buf = new Float32Array(d.taps + BLOCK);
    // The stream's state, set by reset(); declared here so each field has one type.
    this._len = 0;
    this._start = 0;
    this._whole = 0;
    this._rest = 0;
    this._emitted = 0;
    this._i = 0;
    this._p = 0;
    this._lastNonZero = -Infinity;
    this.reset();
  }

  /** Output samples held back until flush(): the constant latency, in output samples. */
  get delay() {
    return this.design.delay;
  }

  /** Forget the stream: the next sample is time 0 again. */
  reset() {
    const h = this.design.halfTaps;
    // The stream is preceded by zeros: the first outputs read H - 1 of them before input index 0.
    this._len = Math.max(h - 1, 0);
    this._buf.fill(0, 0, this._len);
    this._start = -this._len; // absolute input index of _buf[0]
    this._whole = 0; // floor(N * L / M)
    this._rest = 0; // N * L mod M
    this._emitted = 0; // n of the next output
    this._i = 0; // floor(n * M / L)
    this._p = 0; // n * M mod L
    this._lastNonZero = -Infinity; // absolute index of the newest non-zero input sample
  }

  /**
   * How many samples process(x) will return for x.length === inputLength (given the current state).
   * @param {number} inputLength
   */
  outputCount(inputLength) {
    if (this._passthrough) return inputLength;
    const d = this.design;
    const whole = this._whole + Math.floor((this._rest + inputLength * d.up) / d.down);
    return Math.max(0, whole - d.delay - this._emitted);
  }

  /**
   * Resample the next chunk.
   * @param {Float32Array} input
   * @returns {Float32Array} the output samples that became available
   */
  process(input) {
    if (this._passthrough) return input.slice();
    const out = new Float32Array(this.outputCount(input.length));
    this.processInto(input, out);
    return out;
  }

  /**
   * Allocation-free process(): writes into `output` from `offset`; it must have room for outputCount(n).
   * @param {Float32Array} input
   * @param {Float32Array} output
   * @param {number} [offset]
   * @returns {number} samples written
   */
  processInto(input, output, offset = 0) {
    const n = input.length;
    if (this._passthrough) {
      output.set(input, offset);
      return n;
    }
    const need = this.outputCount(n);
    if (output.length - offset < need) throw new RangeError(`output needs room for ${need} samples`);
    const d = this.design;
    let o = offset;
    for (let k = 0; k < n; k += BLOCK) {
      const end = Math.min(n, k + BLOCK);
      this._reserve(end - k);
      const buf = this._buf;
      let w = this._len;
      let last = -1;
      for (let j = k; j < end; j++) {
        let v = input[j];
        // NaN -> 0 and +-Inf -> +-1, so one bad sample cannot poison every output that reads it.
        if (v - v !== 0) v = v !== v ? 0 : (v > 0 ? 1 : -1);
        if (v !== 0) last = w;
        buf[w++] = v;
      }
      if (last >= 0) this._lastNonZero = this._start + last;
      this._len = w;
      const total = this._rest + (end - k) * d.up;
      this._whole += Math.floor(total / d.down);
      this._rest = total % d.down;
      o += this._emit(this._whole - d.delay, output, o);
    }
    return o - offset;
  }

  /**
   * End of stream: emit the held-back tail (the input is taken to be followed by zeros) and reset.
   * @returns {Float32Array}
   */
  flush() {
    if (this._passthrough) return new Float32Array(0);
    const d = this.design;
    const target = this._whole + (this._rest > 0 ? 1 : 0);
    const out = new Float32Array(Math.max(0, target - this._emitted));
    this._reserve(d.halfTaps);
    this._buf.fill(0, this._len, this._len + d.halfTaps);
    this._len += d.halfTaps;
    this._emit(target, out, 0);
    this.reset();
    return out;
  }

  /** Make room for `extra` more input samples after the live history. @param {number} extra */
  _reserve(extra) {
    if (this._len + extra <= this._buf.length) return;
    const bigger = new Float32Array(this._len + extra + BLOCK);
    bigger.set(this._buf.subarray(0, this._len));
    this._buf = bigger;
  }

  /**
   * Compute outputs _emitted .. target-1 into out[o..], then drop history no later output reads.
   * @param {number} target @param {Float32Array} out @param {number} o
   */
  _emit(target, out, o) {
    const count = target - this._emitted;
    if (count <= 0) return 0;
    const d = this.design;
    const buf = this._buf;
    const coef = d.coefficients;
    const taps = d.taps;
    const up = d.up;
    const stepInt = this._stepInt;
    const stepRem = this._stepRem;
    const shift = d.halfTaps - 1 + this._start;
    let i = this._i;
    let p = this._p;
    // Outputs whose whole window is digital silence (muted tracks, Firefox's channel-less inputs) are +0, which
    // is exactly what the dot product gives for zeros, so they are written without computing it.
    const loud = this._lastNonZero + d.halfTaps - 1; // output n is silent once i_n exceeds this
    let m = 0;
    if (!d.interpolated) {
      for (; m < count && i <= loud; m++) {
        const s = i - shift;
        const c = p * taps;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (let j = 0; j < taps; j += 4) {
          a0 += coef[c + j] * buf[s + j];
          a1 += coef[c + j + 1] * buf[s + j + 1];
          a2 += coef[c + j + 2] * buf[s + j + 2];
          a3 += coef[c + j + 3] * buf[s + j + 3];
        }
        out[o + m] = (a0 + a1) + (a2 + a3);
        p += stepRem;
        i += stepInt;
        if (p >= up) {
          p -= up;
          i++;
        }
      }
    } else {
      for (; m < count && i <= loud; m++) {
        const s = i - shift;
        // Sub-phase from integers only: p * OVERSAMPLE / L = row + frac, exact for L * OVERSAMPLE < 2^53.
        const scaled = p * OVERSAMPLE;
        const rem = scaled % up;
        const row = (scaled - rem) / up;
        const frac = rem / up;
        const c0 = row * taps;
        const c1 = c0 + taps;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        let b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        for (let j = 0; j < taps; j += 4) {
          const x0 = buf[s + j], x1 = buf[s + j + 1], x2 = buf[s + j + 2], x3 = buf[s + j + 3];
          a0 += coef[c0 + j] * x0;
          a1 += coef[c0 + j + 1] * x1;
          a2 += coef[c0 + j + 2] * x2;
          a3 += coef[c0 + j + 3] * x3;
          b0 += coef[c1 + j] * x0;
          b1 += coef[c1 + j + 1] * x1;
          b2 += coef[c1 + j + 2] * x2;
          b3 += coef[c1 + j + 3] * x3;
        }
        const s0 = (a0 + a1) + (a2 + a3);
        const s1 = (b0 + b1) + (b2 + b3);
        out[o + m] = s0 + frac * (s1 - s0);
        p += stepRem;
        i += stepInt;
        if (p >= up) {
          p -= up;
          i++;
        }
      }
    }
    if (m < count) {
      out.fill(0, o + m, o + count);
      const ahead = p + (count - m) * d.down;
      i += Math.floor(ahead / up);
      p = ahead % up;
    }
    this._i = i;
    this._p = p;
    this._emitted = target;
    const drop = i - d.halfTaps + 1 - this._start;
    if (drop > 0) {
      buf.copyWithin(0, drop, this._len);
      this._len -= drop;
      this._start += drop;
    }
    return count;
  }
}

/**
 * Float samples to PCM16 into `output` (same rules as floatTo16BitPCM); count defaults to input.length.
 * @param {Float32Array} input
 * @param {Int16Array} output
 * @param {number} [count]
 */
export function floatTo16BitPCMInto(input, output, count = input.length) {
  for (let k = 0; k < count; k++) {
    const v = input[k];
    // Asymmetric scale keeps +1 at 32767 and -1 at -32768; the Int16Array store truncates toward zero, maps NaN
    // to 0, and the comparisons above have already clamped +-Inf.
    output[k] = v < 0 ? (v < -1 ? -32768 : v * 32768) : (v > 1 ? 32767 : v * 32767);
  }
}

/**
 * Clamp to [-1, 1], negatives x 0x8000, others x 0x7FFF, truncated toward zero; NaN -> 0.
 * @param {Float32Array} input
 * @returns {Int16Array}
 */
export function floatTo16BitPCM(input) {
  const out = new Int16Array(input.length);
  floatTo16BitPCMInto(input, out);
  return out;
}

/** Cuts an Int16 stream into frames of exactly frameSamples, each with its own (transferable) ArrayBuffer. */
export class Framer {
  /** @param {number} frameSamples */
  constructor(frameSamples) {
    checkFrameSamples(frameSamples);
    /** @readonly */
    this.frameSamples = frameSamples;
    this._frame = new Int16Array(frameSamples);
    this._fill = 0;
  }

  /** Samples waiting for the current frame to fill. */
  get pending() {
    return this._fill;
  }

  /**
   * @param {Int16Array} samples
   * @param {number} [count] use only samples[0 .. count-1]
   * @returns {Int16Array[]} the frames completed by these samples (often none)
   */
  push(samples, count = samples.length) {
    /** @type {Int16Array[]} */
    const done = [];
    const size = this.frameSamples;
    let frame = this._frame;
    let fill = this._fill;
    for (let k = 0; k < count; k++) {
      frame[fill++] = samples[k];
      if (fill === size) {
        done.push(frame);
        frame = new Int16Array(size);
        fill = 0;
      }
    }
    this._frame = frame;
    this._fill = fill;
    return done;
  }

  /** The shorter remainder (its own buffer), or null when nothing is pending. @returns {Int16Array | null} */
  flush() {
    if (this._fill === 0) return null;
    const rest = this._frame.slice(0, this._fill);
    this._fill = 0;
    return rest;
  }
}

/** Resampler -> floatTo16BitPCM -> Framer: what the worklet and file transcription run. */
export class PcmPipeline {
  /** @param {{inRate: number, outRate: number, frameSamples: number}} options */
  constructor({ inRate, outRate, frameSamples }) {
    /** @readonly */
    this.resampler = new Resampler(inRate, outRate);
    /** @readonly */
    this.framer = new Framer(frameSamples);
    this._float = new Float32Array(256);
    this._pcm = new Int16Array(256);
  }

  /** @param {number} n */
  _scratch(n) {
    if (this._float.length < n) {
      this._float = new Float32Array(n);
      this._pcm = new Int16Array(n);
    }
  }

  /**
   * @param {Float32Array} input samples at inRate
   * @returns {Int16Array[]} complete frames at outRate
   */
  push(input) {
    this._scratch(this.resampler.outputCount(input.length));
    const n = this.resampler.processInto(input, this._float);
    floatTo16BitPCMInto(this._float, this._pcm, n);
    return this.framer.push(this._pcm, n);
  }

  /** End of stream: the resampler's tail, then the last short frame if any. @returns {Int16Array[]} */
  flush() {
    const tail = this.resampler.flush();
    const pcm = floatTo16BitPCM(tail);
    const done = this.framer.push(pcm);
    const rest = this.framer.flush();
    if (rest) done.push(rest);
    return done;
  }
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
export const EMPTY_LEVEL_SPAN = Object.freeze({ count: 0, sum: 0, peak: 0 });

/**
 * The level meter: `block` added to `span`. Once the span holds at least `every` samples, its level and an empty
 * span; before that, no level and the span grown. NaN samples count as 0 and +-Infinity as full scale, as the
 * resampler takes them, so one bad sample cannot make a level NaN.
 * @param {Readonly<LevelSpan>} span
 * @param {Float32Array} block
 * @param {number} every  samples per level (the worklet: 50 ms at the context's rate)
 * @returns {{span: Readonly<LevelSpan>, level: Level | null}}
 */
export function meter(span, block, every) {
  let sum = span.sum;
  let peak = span.peak;
  for (let i = 0; i < block.length; i++) {
    let v = block[i];
    if (v - v !== 0) v = v !== v ? 0 : 1; // only the magnitude counts here
    sum += v * v;
    const a = v < 0 ? -v : v;
    if (a > peak) peak = a;
  }
  const count = span.count + block.length;
  if (count < every || count === 0) return { span: { count, sum, peak }, level: null };
  return { span: EMPTY_LEVEL_SPAN, level: { rms: Math.sqrt(sum / count), peak, silent: peak === 0 } };
}

/**
 * What the "pcm-processor" worklet (./pcm-processor.js) posts to its node, read by capture.js:
 * - frame: one frame of PCM16LE at outRate, its buffer transferred; seq counts frames from 0
 * - level: every ~50 ms, the linear levels of the device-rate input (meter())
 * - flushed: after a 'flush', the totals (frames posted, device-rate samples taken in); no message follows
 * @typedef {{type: 'frame', pcm: ArrayBuffer, seq: number}
 *   | {type: 'level', rms: number, peak: number, silent: boolean}
 *   | {type: 'flushed', frames: number, inSamples: number}} ProcessorMessage
 */

/**
 * What the node posts to the worklet: 'flush' releases the resampler's delayed tail, then stops; 'stop' stops at
 * once, the tail discarded (the capture was released).
 * @typedef {{type: 'flush'} | {type: 'stop'}} NodeMessage
 */
