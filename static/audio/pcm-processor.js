// AudioWorkletProcessor "pcm-processor": the thin real-time shell around ./pcm.js.
// Loaded from this same-origin file (never a blob: or data: URL), so a strict Content-Security-Policy works.
// What it posts and is told (its port's vocabulary) is typed in ./pcm.js: ProcessorMessage and NodeMessage.
import { EMPTY_LEVEL_SPAN, PcmPipeline, meter } from './pcm.js';

/** @typedef {import('./pcm.js').ProcessorMessage} ProcessorMessage */
/** @typedef {import('./pcm.js').NodeMessage} NodeMessage */

const LEVEL_INTERVAL_S = 0.05;

class PcmProcessor extends AudioWorkletProcessor {
  /** @param {{processorOptions: {outRate: number, frameSamples: number}}} options */
  constructor(options) {
    super();
    const { outRate, frameSamples } = options.processorOptions;
    // `sampleRate` is the AudioContext's rate: the device's own, never forced.
    this.pipeline = new PcmPipeline({ inRate: sampleRate, outRate, frameSamples });
    this.seq = 0;
    this.inSamples = 0;
    this.stopped = false;
    this.silence = new Float32Array(128);
    this.levelEvery = Math.round(sampleRate * LEVEL_INTERVAL_S);
    this.levels = EMPTY_LEVEL_SPAN;
    this.port.onmessage = (/** @type {MessageEvent<unknown>} */ event) => {
      const data = event.data;
      /** @type {NodeMessage['type'] | null} */
      const type = typeof data === 'object' && data !== null && 'type' in data
        && (data.type === 'flush' || data.type === 'stop') ? data.type : null;
      if (type === 'flush') this.flush();
      // A disconnected node still has process() called while it returns true: without this it would resample
      // silence and post frames until the context closes, which a caller's long-lived context never does.
      else if (type === 'stop') this.stopped = true;
    };
  }

  /** @param {ProcessorMessage} message @param {Transferable[]} [transfer] */
  send(message, transfer = []) {
    this.port.postMessage(message, transfer);
  }

  /** @param {Int16Array[]} frames */
  post(frames) {
    for (const frame of frames) {
      // The Framer's frames each own a plain ArrayBuffer (its own allocation, never shared memory).
      const pcm = /** @type {ArrayBuffer} */ (frame.buffer);
      this.send({ type: 'frame', pcm, seq: this.seq++ }, [pcm]);
    }
  }

  flush() {
    if (this.stopped) return;
    this.stopped = true;
    this.post(this.pipeline.flush());
    this.send({ type: 'flushed', frames: this.seq, inSamples: this.inSamples });
  }

  /** @param {Float32Array[][]} inputs */
  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    // Firefox hands over an input with zero channels while the source is silent: that is silence, not a gap,
    // so keep feeding zeros and the sample count stays true to the audio clock.
    let block = input && input.length > 0 ? input[0] : null;
    if (!block) {
      // As long as the quanta with sound: 128 samples by default, but a context may render in other sizes.
      block = this.silence;
    } else if (this.silence.length !== block.length) {
      this.silence = new Float32Array(block.length);
    }
    this.inSamples += block.length;
    const { span, level } = meter(this.levels, block, this.levelEvery);
    this.levels = span;
    if (level) this.send({ type: 'level', ...level });
    this.post(this.pipeline.push(block));
    return true;
  }
}

registerProcessor('pcm-processor', PcmProcessor);
