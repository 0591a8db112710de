// Benchmark (not a test): static/audio/pcm.js's Resampler vs libsamplerate-js (best quality) and wave-resampler,
// 44.1/48 kHz -> 16/24 kHz: speed on one core, passband SINAD, alias suppression, sample-count drift when fed
// 128-sample blocks as an AudioWorklet does; plus the cost of the float -> Int16 conversion.
//
// Run from the repository root: node bench/resampler.mjs   (about 1-2 minutes; prints a Markdown table)
import { createRequire } from 'node:module';

import { Resampler, floatTo16BitPCM, floatTo16BitPCMInto } from '../static/audio/pcm.js';

const require = createRequire(import.meta.url);
const LibSampleRate = require('@alexanderolsen/libsamplerate-js');
const waveResampler = require('wave-resampler');

const PAIRS = [[44100, 16000], [48000, 16000], [44100, 24000], [48000, 24000]];
const BLOCK = 128;
const SPEED_SECONDS = 10;
const QUALITY_SECONDS = 1;
const DRIFT_SECONDS = [10, 60];

function noise(n, seed = 1) {
  const x = new Float32Array(n);
  let s = seed;
  for (let k = 0; k < n; k++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    x[k] = (s / 2147483648 - 0.5) * 0.5;
  }
  return x;
}

function tone(freq, rate, n) {
  const x = new Float32Array(n);
  for (let k = 0; k < n; k++) x[k] = 0.5 * Math.sin((2 * Math.PI * freq * k) / rate);
  return x;
}

function concat(parts) {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// Each contender: a streaming factory (block in, samples out) and a one-shot call on a whole signal.
const CONTENDERS = {
  'pcm.js Resampler': {
    stream: async (inRate, outRate) => {
      const r = new Resampler(inRate, outRate);
      return { push: (x) => r.process(x), end: () => r.flush(), close: () => {} };
    },
    once: async (x, inRate, outRate) => {
      const r = new Resampler(inRate, outRate);
      return concat([r.process(x), r.flush()]);
    },
  },
  'libsamplerate-js best': {
    stream: async (inRate, outRate) => {
      const src = await LibSampleRate.create(1, inRate, outRate, {
        converterType: LibSampleRate.ConverterType.SRC_SINC_BEST_QUALITY,
      });
      // full() returns a view of its reusable WASM buffer: copy before the next call.
      return { push: (x) => src.full(x).slice(), end: () => new Float32Array(0), close: () => src.destroy() };
    },
    once: async (x, inRate, outRate) => {
      const src = await LibSampleRate.create(1, inRate, outRate, {
        converterType: LibSampleRate.ConverterType.SRC_SINC_BEST_QUALITY,
      });
      const y = src.simple(x).slice();
      src.destroy();
      return y;
    },
  },
  'wave-resampler (default: cubic + IIR LPF)': {
    stream: async (inRate, outRate) => ({
      push: (x) => Float32Array.from(waveResampler.resample(x, inRate, outRate)),
      end: () => new Float32Array(0),
      close: () => {},
    }),
    once: async (x, inRate, outRate) => Float32Array.from(waveResampler.resample(x, inRate, outRate)),
  },
  'wave-resampler sinc': {
    stream: async (inRate, outRate) => ({
      push: (x) => Float32Array.from(waveResampler.resample(x, inRate, outRate, { method: 'sinc' })),
      end: () => new Float32Array(0),
      close: () => {},
    }),
    once: async (x, inRate, outRate) =>
      Float32Array.from(waveResampler.resample(x, inRate, outRate, { method: 'sinc' })),
  },
};

/** Input Msamples/s through `stream` fed BLOCK-sample blocks (best of 3 runs). */
async function speed(make, inRate, outRate) {
  const x = noise(inRate * SPEED_SECONDS);
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const s = await make(inRate, outRate);
    const t0 = performance.now();
    for (let k = 0; k < x.length; k += BLOCK) s.push(x.subarray(k, k + BLOCK));
    s.end();
    best = Math.min(best, performance.now() - t0);
    s.close();
  }
  return x.length / (best / 1000) / 1e6;
}

/** Fitted-tone power over residual power (dB) on y with `trim` samples dropped at each end. */
function sinad(y, freq, rate, trim) {
  const z = y.subarray(trim, y.length - trim);
  const w = (2 * Math.PI * freq) / rate;
  let cc = 0, ss = 0, cs = 0, c1 = 0, s1 = 0, yc = 0, ys = 0, y1 = 0;
  const n = z.length;
  for (let k = 0; k < n; k++) {
    const c = Math.cos(w * k), s = Math.sin(w * k);
    cc += c * c; ss += s * s; cs += c * s; c1 += c; s1 += s;
    yc += z[k] * c; ys += z[k] * s; y1 += z[k];
  }
  // Solve the 3x3 normal equations [cc cs c1; cs ss s1; c1 s1 n] [a b d] = [yc ys y1] by Cramer's rule.
  const det3 = (m) => m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
    + m[2] * (m[3] * m[7] - m[4] * m[6]);
  const M = [cc, cs, c1, cs, ss, s1, c1, s1, n];
  const D = det3(M);
  const a = det3([yc, cs, c1, ys, ss, s1, y1, s1, n]) / D;
  const b = det3([cc, yc, c1, cs, ys, s1, c1, y1, n]) / D;
  const d = det3([cc, cs, yc, cs, ss, ys, c1, s1, y1]) / D;
  let sig = 0, res = 0;
  for (let k = 0; k < n; k++) {
    const t = a * Math.cos(w * k) + b * Math.sin(w * k);
    sig += t * t;
    res += (z[k] - t - d) ** 2;
  }
  return 10 * Math.log10(sig / res);
}

function power(x) {
  let p = 0;
  for (let k = 0; k < x.length; k++) p += x[k] * x[k];
  return p / x.length;
}

async function quality(once, inRate, outRate) {
  const n = inRate * QUALITY_SECONDS;
  const trim = Math.round(outRate * 0.05);
  let worstSinad = Infinity;
  for (const f of [100, 0.1 * outRate, 0.25 * outRate, 0.4 * outRate]) {
    worstSinad = Math.min(worstSinad, sinad(await once(tone(f, inRate, n), inRate, outRate), f, outRate, trim));
  }
  let worstAlias = Infinity;
  // From just above the output's Nyquist frequency (exactly at it a zero-phase sine is sampled at its zero
  // crossings), where a transition band that straddles it leaks the most, to the input's.
  const lo = 0.505 * outRate, hi = 0.499 * inRate;
  const freqs = [lo, 0.52 * outRate, 0.55 * outRate];
  for (let s = 0; s < 6; s++) freqs.push(0.6 * outRate + ((hi - 0.6 * outRate) * s) / 5);
  for (const f of freqs) {
    const x = tone(f, inRate, n);
    const y = await once(x, inRate, outRate);
    worstAlias = Math.min(worstAlias, 10 * Math.log10(power(x) / Math.max(power(y.subarray(trim, -trim)), 1e-300)));
  }
  return { worstSinad, worstAlias };
}

/** Output count minus floor(N * out / in) after each duration in DRIFT_SECONDS, fed BLOCK-sample blocks. */
async function drift(make, inRate, outRate) {
  const s = await make(inRate, outRate);
  const block = noise(BLOCK, 7);
  const errors = [];
  let fed = 0, got = 0;
  for (const seconds of DRIFT_SECONDS) {
    while (fed < inRate * seconds) {
      got += s.push(block).length;
      fed += BLOCK;
    }
    errors.push(got - Math.floor((fed * outRate) / inRate));
  }
  s.close();
  return errors;
}

function conversionCost() {
  const x = noise(1 << 20, 3);
  for (let k = 0; k < x.length; k += 97) x[k] *= 3; // some clipping
  const out = new Int16Array(x.length);
  const rounds = 40;
  const time = (fn) => {
    let best = Infinity;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      for (let r = 0; r < rounds; r++) fn();
      best = Math.min(best, performance.now() - t0);
    }
    return (best * 1e6) / (rounds * x.length);
  };
  return {
    alloc: time(() => floatTo16BitPCM(x)),
    into: time(() => floatTo16BitPCMInto(x, out)),
    block: time(() => {
      for (let k = 0; k < x.length; k += BLOCK) floatTo16BitPCM(x.subarray(k, k + BLOCK));
    }),
  };
}

const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

console.log(`node ${process.version}, ${BLOCK}-sample blocks, speed = input Msamples/s on one core (best of 3)\n`);
console.log('| resampler | rate | speed (Ms/s) | passband SINAD (dB, worst) | alias suppression (dB, worst) |'
  + ` count error after ${DRIFT_SECONDS.join(' s / ')} s (samples) |`);
console.log('|---|---|---:|---:|---:|---:|');
for (const [inRate, outRate] of PAIRS) {
  for (const [name, c] of Object.entries(CONTENDERS)) {
    const sp = await speed(c.stream, inRate, outRate);
    const q = await quality(c.once, inRate, outRate);
    const dr = await drift(c.stream, inRate, outRate);
    const pct = (100 * dr.at(-1)) / Math.floor((inRate * DRIFT_SECONDS.at(-1) * outRate) / inRate);
    console.log(`| ${name} | ${inRate} -> ${outRate} | ${fmt(sp, 2)} | ${fmt(q.worstSinad)} | ${fmt(q.worstAlias)} |`
      + ` ${dr.join(' / ')} (${pct.toFixed(3)} %) |`);
  }
}
const cost = conversionCost();
console.log(`\nfloatTo16BitPCM: ${fmt(cost.alloc, 2)} ns/sample on 1 Mi-sample arrays, ${fmt(cost.block, 2)} ns/sample`
  + ` on ${BLOCK}-sample arrays (allocation included); floatTo16BitPCMInto: ${fmt(cost.into, 2)} ns/sample.`);
