// An audio file as a capture source: decode it, down-mix to mono, and push it through the same PcmPipeline the
// microphone worklet runs, so a file and a live recording reach the provider as identical frames.
//
// decodeAudioData resamples to its context's rate, so the file is decoded in an OfflineAudioContext at the file's
// own rate when the header says what it is (WAV and RF64, FLAC, Ogg Vorbis/Opus, MP3; behind ID3v2 tags too): the
// one resampling step is then pcm.js's, with its known anti-aliasing. Anything else is decoded at FALLBACK_RATE by
// the browser first.
import { EMPTY_LEVEL_SPAN, PcmPipeline, meter } from './pcm.js';

/** @typedef {import('./pcm.js').Level} Level */

const FALLBACK_RATE = 48000;
// Level reports every 50 ms of file audio, like the worklet's.
const LEVEL_INTERVAL_S = 0.05;
// Frames posted between yields in fast mode: small enough to keep the page responsive, large enough that a long
// file is not throttled by the browser's minimum timer delay.
const FRAMES_PER_YIELD = 4;

/** @param {DataView} v @param {number} at @param {string} s */
const ascii = (v, at, s) => at + s.length <= v.byteLength
  && [...s].every((c, i) => v.getUint8(at + i) === c.charCodeAt(0));

// By the header's version bits: MPEG-2.5 (00), reserved (01), MPEG-2 (10), MPEG-1 (11); then the rate index.
const MP3_RATES = [[11025, 12000, 8000], [0, 0, 0], [22050, 24000, 16000], [44100, 48000, 32000]];

/**
 * The sample rate a file's header declares, or null when it is not a format recognised here.
 * @param {ArrayBuffer} data
 * @returns {number | null}
 */
export function declaredRate(data) {
  const v = new DataView(data);
  // ID3v2 tags come first in MP3s and, written by some taggers, in FLAC files too: skip every one of them, then read
  // the header that follows as if the file started there.
  let at = 0;
  while (ascii(v, at, 'ID3') && at + 10 <= v.byteLength) {
    // Size: four 7-bit bytes, excluding the 10-byte header and the 10-byte footer (ID3v2.4, flag 0x10).
    const size = (v.getUint8(at + 6) << 21) | (v.getUint8(at + 7) << 14) | (v.getUint8(at + 8) << 7)
      | v.getUint8(at + 9);
    at += 10 + size + (v.getUint8(at + 5) & 0x10 ? 10 : 0);
  }
  return rateAt(v, at);
}

/** The rate declared by the header at byte `at`. @param {DataView} v @param {number} at @returns {number | null} */
function rateAt(v, at) {
  // RF64 and BW64 (EBU Tech 3306/3285-compatible, for files over 4 GiB) are RIFF with 64-bit sizes in a ds64
  // chunk; the fmt chunk is laid out as in RIFF.
  if ((ascii(v, at, 'RIFF') || ascii(v, at, 'RF64') || ascii(v, at, 'BW64')) && ascii(v, at + 8, 'WAVE')) {
    for (let chunk = at + 12; chunk + 8 <= v.byteLength;) {
      const size = v.getUint32(chunk + 4, true);
      if (ascii(v, chunk, 'fmt ') && chunk + 16 <= v.byteLength) return v.getUint32(chunk + 12, true);
      chunk += 8 + size + (size & 1);
    }
    return null;
  }
  if (ascii(v, at, 'fLaC') && at + 21 <= v.byteLength) {
    // STREAMINFO: 20 bits of sample rate starting at byte 18 of the stream.
    return (v.getUint8(at + 18) << 12) | (v.getUint8(at + 19) << 4) | (v.getUint8(at + 20) >> 4);
  }
  if (ascii(v, at, 'OggS') && at + 28 + 16 <= v.byteLength) {
    const body = at + 27 + v.getUint8(at + 26);
    if (ascii(v, body, 'OpusHead')) return 48000; // Opus always decodes at 48 kHz
    if (ascii(v, body + 1, 'vorbis') && body + 16 <= v.byteLength) return v.getUint32(body + 12, true);
    return null;
  }
  if (at + 4 <= v.byteLength && v.getUint8(at) === 0xff && (v.getUint8(at + 1) & 0xe0) === 0xe0) {
    // An MPEG audio frame header: 11 sync bits, version (2), layer (2), CRC (1); bitrate index (4), rate index (2).
    const version = (v.getUint8(at + 1) >> 3) & 3;
    const layer = (v.getUint8(at + 1) >> 1) & 3;
    const bitrate = v.getUint8(at + 2) >> 4;
    const index = (v.getUint8(at + 2) >> 2) & 3;
    // Layer 00 is reserved in MP3 and is what ADTS AAC has there (the same sync word): left to the browser, as
    // HE-AAC's header declares its core rate, half the rate it decodes to, and decoding at that would halve its
    // bandwidth. Version 01, bitrate 15 and rate index 3 are reserved or invalid: not an MP3 frame.
    if (layer === 0 || version === 1 || bitrate === 15 || index === 3) return null;
    return MP3_RATES[version][index];
  }
  return null;
}

/**
 * Decode `data` to mono at the file's own rate when possible.
 * @param {ArrayBuffer} data
 * @returns {Promise<{samples: Float32Array, sampleRate: number, channels: number, durationMs: number}>}
 */
export async function decodeToMono(data) {
  const wanted = declaredRate(data) ?? FALLBACK_RATE;
  let context;
  try {
    context = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: wanted });
  } catch {
    // Outside the browser's supported range (e.g. 4 kHz in Firefox): let it resample to a common rate first.
    context = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: FALLBACK_RATE });
  }
  let buffer;
  try {
    // slice(): some browsers detach the buffer they are given.
    buffer = await context.decodeAudioData(data.slice(0));
  } catch (err) {
    const detail = err instanceof Error && err.message ? ` (${err.message})` : '';
    throw new Error(`This file could not be decoded as audio by the browser${detail}. Try WAV, MP3, OGG or FLAC.`);
  }
  const n = buffer.length;
  const channels = buffer.numberOfChannels;
  const samples = downmix(Array.from({ length: channels }, (_, c) => buffer.getChannelData(c)));
  return { samples, sampleRate: buffer.sampleRate, channels, durationMs: (n * 1000) / buffer.sampleRate };
}

/**
 * One mono signal from a file's channels, by the Web Audio spec's 'speakers' down-mix to mono: what the microphone
 * path gets from its node's channelInterpretation, so a file and a live recording are mixed alike. Channels in
 * AudioBuffer order: mono M; stereo L R -> 0.5(L+R); quad L R SL SR -> 0.25(L+R+SL+SR); 5.1 L R C LFE SL SR ->
 * sqrt(0.5)(L+R) + C + 0.5(SL+SR), the LFE dropped (the centre, where a film's dialogue is, at full level). The spec
 * has no rule for other counts (it falls back to keeping the first channel): they are averaged, so no channel's
 * speech is lost.
 * @param {Float32Array[]} channels  all the same length
 * @returns {Float32Array}  a single channel is returned as is
 */
export function downmix(channels) {
  if (channels.length === 1) return channels[0];
  const n = channels.length ? channels[0].length : 0;
  const out = new Float32Array(n);
  if (channels.length === 2) {
    const [L, R] = channels;
    for (let i = 0; i < n; i++) out[i] = 0.5 * (L[i] + R[i]);
  } else if (channels.length === 4) {
    const [L, R, SL, SR] = channels;
    for (let i = 0; i < n; i++) out[i] = 0.25 * (L[i] + R[i] + SL[i] + SR[i]);
  } else if (channels.length === 6) {
    const [L, R, C, , SL, SR] = channels;
    for (let i = 0; i < n; i++) out[i] = Math.SQRT1_2 * (L[i] + R[i]) + C[i] + 0.5 * (SL[i] + SR[i]);
  } else if (channels.length > 0) {
    for (const ch of channels) for (let i = 0; i < n; i++) out[i] += ch[i];
    for (let i = 0; i < n; i++) out[i] /= channels.length;
  }
  return out;
}

/** @returns {Promise<void>} resolves after the browser has had a turn (timers, input, sockets) */
const yieldToLoop = () => new Promise((resolve) => { setTimeout(resolve, 0); });

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * @typedef {object} FileSourceOptions
 * @property {number} outRate
 * @property {number} frameSamples
 * @property {(pcm: Int16Array, seq: number) => void} onFrame
 * @property {(level: Level) => void} [onLevel]
 * @property {'fast'|'realtime'} [pacing]  'realtime': 1x, for a provider that ends utterances by wall-clock
 *                                     pauses; default 'fast'
 * @property {() => boolean} [canSend] polled before each frame; false holds the file back (the provider is not
 *                                     ready, or the audio it has not finalised yet fills the replay buffer)
 * @property {() => void} [onEnded]    every frame, the flushed tail included, has been delivered
 * @property {(err: Error) => void} [onError]
 */

/**
 * Start delivering the file's frames. Resolves once the file is decoded (a CaptureLike, as startCapture's).
 * @param {Blob} file
 * @param {FileSourceOptions} options
 */
export async function startFileSource(file, options) {
  const { outRate, frameSamples, onFrame, onLevel, pacing = 'fast', canSend = () => true, onEnded } = options;
  const decoded = await decodeToMono(await file.arrayBuffer());
  const source = new FileSource(file, decoded, { outRate, frameSamples });
  source.run({ onFrame, onLevel, pacing, canSend, onEnded, onError: options.onError });
  return source;
}

export class FileSource {
  /**
   * @param {Blob} file
   * @param {{samples: Float32Array, sampleRate: number, channels: number, durationMs: number}} decoded
   * @param {{outRate: number, frameSamples: number}} format
   */
  constructor(file, decoded, { outRate, frameSamples }) {
    this.decoded = decoded;
    this.contextRate = decoded.sampleRate;
    this.deviceLabel = `file: ${'name' in file ? /** @type {File} */ (file).name : 'audio'}`;
    this.deviceSettings = { sampleRate: decoded.sampleRate, channelCount: decoded.channels };
    this.durationMs = decoded.durationMs;
    this.outRate = outRate;
    this.frameSamples = frameSamples;
    this.pipeline = new PcmPipeline({ inRate: decoded.sampleRate, outRate, frameSamples });
    this.framesPosted = 0;
    this.inSamples = 0;
    this.ended = false;
    this.stopping = false;
    this.released = false;
    /** @type {Promise<void> | null} */
    this.done = null;
  }

  /** The source's own clock, as an AudioContext's currentTime: seconds of the file read so far. */
  get context() {
    return { currentTime: this.inSamples / this.decoded.sampleRate };
  }

  /** @param {Required<Pick<FileSourceOptions, 'onFrame'|'canSend'>> & Omit<FileSourceOptions, 'outRate'|'frameSamples'>} opts */
  run(opts) {
    this.done = this._run(opts).catch((err) => {
      if (opts.onError) opts.onError(err instanceof Error ? err : new Error(String(err)));
    });
  }

  /** @param {Required<Pick<FileSourceOptions, 'onFrame'|'canSend'>> & Omit<FileSourceOptions, 'outRate'|'frameSamples'>} opts */
  async _run({ onFrame, onLevel, pacing, canSend, onEnded }) {
    const realtime = pacing === 'realtime';
    const { samples, sampleRate } = this.decoded;
    // One frame's worth of input per step, so levels and frames advance together.
    const step = Math.max(1, Math.round((this.frameSamples * sampleRate) / this.outRate));
    const levelEvery = Math.max(1, Math.round(sampleRate * LEVEL_INTERVAL_S));
    const frameMs = (this.frameSamples * 1000) / this.outRate;
    let startedAt = performance.now();
    let sentMs = 0;
    let sinceYield = 0;
    /** @param {Int16Array[]} frames */
    const post = async (frames) => {
      for (const frame of frames) {
        // Once stopping, frames go out anyway: the client queues them until it is ready.
        const heldFrom = performance.now();
        while (!this.released && !this.stopping && !canSend()) await sleep(20);
        // Time held back is not time the audio played: pacing resumes from here, not with a burst.
        startedAt += performance.now() - heldFrom;
        if (this.released) return;
        onFrame(frame, this.framesPosted++);
        sentMs += frameMs;
        if (realtime && !this.stopping) {
          const ahead = sentMs - (performance.now() - startedAt);
          if (ahead > 0) await sleep(ahead);
        } else if (++sinceYield >= FRAMES_PER_YIELD) {
          sinceYield = 0;
          await yieldToLoop();
        }
      }
    };
    for (let at = 0; at < samples.length && !this.released && !this.stopping; at += step) {
      const block = samples.subarray(at, Math.min(samples.length, at + step));
      this.inSamples += block.length;
      if (onLevel) reportLevels(block, levelEvery, onLevel);
      await post(this.pipeline.push(block));
    }
    if (this.released) return;
    await post(this.pipeline.flush());
    if (this.released) return;
    this.ended = true;
    if (onEnded && !this.stopping) onEnded();
  }

  /** Stop reading the file; the resampler's tail still reaches onFrame before this resolves. */
  async stop() {
    this.stopping = true;
    if (this.done) await this.done;
    this.released = true;
    return { frames: this.framesPosted, inSamples: this.inSamples };
  }

  /** Stop delivering at once. */
  release() {
    this.released = true;
    return Promise.resolve();
  }
}

/**
 * RMS and peak per level interval of `block` (the tail shorter than an interval is reported on its own), by the
 * worklet's meter(): a NaN sample counts as 0 and an infinite one as full scale, so a bad sample in a float file
 * cannot make a level NaN or Infinity.
 * @param {Float32Array} block
 * @param {number} every
 * @param {(level: Level) => void} onLevel
 */
function reportLevels(block, every, onLevel) {
  for (let at = 0; at < block.length; at += every) {
    const part = block.subarray(at, Math.min(block.length, at + every));
    // A fresh span the length of the part: meter() reports it at once.
    const { level } = meter(EMPTY_LEVEL_SPAN, part, part.length);
    if (level) onLevel(level);
  }
}
