// AudioWorkletProcessor "pcm-processor": the thin real-time shell around ./pcm.js.
// Loaded from this same-origin file (never a blob: or data: URL), so a strict Content-Security-Policy works.
//
// Port vocabulary (one place, see capture.js):
//   node -> processor  {type: 'flush'}                          release the resampler's delayed tail, then stop
//                      {type: 'stop'}                           stop now, tail discarded (the capture was released)
//   processor -> node  {type: 'frame', pcm: ArrayBuffer, seq}   one frame of PCM16LE at outRate (buffer transferred)
//                      {type: 'level', rms, peak, silent}       every ~50 ms: linear levels of the device-rate input
//                      {type: 'flushed', frames, inSamples}     after 'flush': totals; no message follows
import { PcmPipeline } from './pcm.js';

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
    this.levelCount = 0;
    this.levelSum = 0;
    this.levelPeak = 0;
    this.port.onmessage = (event) => {
      const type = event.data && event.data.type;
      if (type === 'flush') this.flush();
      // A disconnected node still has process() called while it returns true: without this it would resample
      // silence and post frames until the context closes, which a caller's long-lived context never does.
      else if (type === 'stop') this.stopped = true;
    };
  }

  /** @param {Int16Array[]} frames */
  post(frames) {
    for (const frame of frames) {
      this.port.postMessage({ type: 'frame', pcm: frame.buffer, seq: this.seq++ }, [frame.buffer]);
    }
  }

  flush() {
    if (this.stopped) return;
    this.stopped = true;
    this.post(this.pipeline.flush());
    this.port.postMessage({ type: 'flushed', frames: this.seq, inSamples: this.inSamples });
  }

  /** @param {Float32Array} block */
  meter(block) {
    let sum = this.levelSum;
    let peak = this.levelPeak;
    for (let i = 0; i < block.length; i++) {
      const v = block[i];
      sum += v * v;
      const a = v < 0 ? -v : v;
      if (a > peak) peak = a;
    }
    this.levelSum = sum;
    this.levelPeak = peak;
    this.levelCount += block.length;
    if (this.levelCount >= this.levelEvery) {
      const rms = Math.sqrt(this.levelSum / this.levelCount);
      this.port.postMessage({ type: 'level', rms, peak: this.levelPeak, silent: this.levelPeak === 0 });
      this.levelCount = 0;
      this.levelSum = 0;
      this.levelPeak = 0;
    }
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
    this.meter(block);
    this.post(this.pipeline.push(block));
    return true;
  }
}

registerProcessor('pcm-processor', PcmProcessor);
