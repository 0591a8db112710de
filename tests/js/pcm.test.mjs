// static/audio/pcm.js under Node: golden files (tests/golden/data, made by testkit/audio.py), streaming, exact
// sample counts over a simulated hour, quality figures measured here on the float output, Framer, PcmPipeline, meter.
// Run: node --test tests/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  ATTENUATION_DB, EMPTY_LEVEL_SPAN, Framer, MAX_RATE, PcmPipeline, Resampler, TRUEBAR_FORMAT, WIRO_FORMAT, checkPipeline,
  designFilter, floatTo16BitPCM, isRate, meter,
} from '../../static/audio/pcm.js';

const ROOT = new URL('../../', import.meta.url);
const DATA = new URL('tests/golden/data/', ROOT);
const manifest = JSON.parse(readFileSync(new URL('manifest.json', DATA), 'utf8'));

/** Raw little-endian bytes into a fresh, aligned typed array. */
function readRaw(name, Type) {
  const bytes = readFileSync(new URL(name, DATA));
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Type(copy.buffer);
}

function concat(parts, Type = Float32Array) {
  const out = new Type(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function resampleAll(x, inRate, outRate, chunk = x.length || 1) {
  const r = new Resampler(inRate, outRate);
  const parts = [];
  for (let k = 0; k < x.length; k += chunk) parts.push(r.process(x.subarray(k, k + chunk)));
  parts.push(r.flush());
  return concat(parts);
}

function ratio(inRate, outRate) {
  const d = designFilter(inRate, outRate);
  return { up: BigInt(d.up), down: BigInt(d.down), delay: BigInt(d.delay) };
}

function sameBits(a, b) {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

test('the module is pure: no imports, no DOM or worklet globals', () => {
  const src = readFileSync(new URL('static/audio/pcm.js', ROOT), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
  assert.doesNotMatch(src, /^\s*import\s/m);
  for (const name of ['window', 'document', 'registerProcessor', 'AudioWorkletProcessor', 'sampleRate', 'require']) {
    assert.doesNotMatch(src, new RegExp(`\\b${name}\\b(?!:)`), name);
  }
});

test('formats', () => {
  assert.deepEqual({ ...TRUEBAR_FORMAT }, { sampleRate: 16000, frameSamples: 1600 });
  assert.deepEqual({ ...WIRO_FORMAT }, { sampleRate: 24000, frameSamples: 4800 });
  assert.ok(Object.isFrozen(TRUEBAR_FORMAT) && Object.isFrozen(WIRO_FORMAT));
});

test('design constants match the Python reference (manifest)', () => {
  assert.equal(manifest.design.oversample, 512);
  assert.equal(manifest.design.attenuation_db, ATTENUATION_DB);
  const d = designFilter(44101, 16000);
  assert.equal(d.rows, manifest.design.oversample + 1);
  assert.ok(d.interpolated && d.coefficients.length <= manifest.design.max_table);
});

test('floatTo16BitPCM is bit-exact against the golden conversion file', () => {
  // A loop over nothing passes: an emptied or truncated manifest must fail here instead.
  assert.ok(manifest.convert.length > 0, 'the manifest lists conversion cases');
  let checked = 0;
  for (const c of manifest.convert) {
    const x = readRaw(c.input, Float32Array);
    const want = readRaw(c.output, Int16Array);
    assert.equal(x.length, c.samples);
    assert.deepEqual(floatTo16BitPCM(x), want);
    checked += 1;
  }
  assert.equal(checked, manifest.convert.length);
});

test('floatTo16BitPCM rules', () => {
  const x = Float32Array.from([0, -0, 1, -1, 0.5, -0.5, 1.5, -1.5, NaN, Infinity, -Infinity, 0.99999994, -1e-9,
    1.5 / 32767, -1 / 32768, 1 / 32767]);
  assert.deepEqual(Array.from(floatTo16BitPCM(x)),
    [0, 0, 32767, -32768, 16383, -16384, 32767, -32768, 0, 32767, -32768, 32766, 0, 1, -1, 0]);
});

/** Resample cases that ran to the end of their checks. */
const resampleChecked = new Set();

for (const c of manifest.resample) {
  test(`golden ${c.input} -> ${c.out_rate}: within 1 LSB of the reference; 128-sample streaming is exact`, () => {
    const x = readRaw(c.input, Float32Array);
    const want = readRaw(c.output, Int16Array);
    assert.equal(x.length, c.input_samples);
    const once = resampleAll(x, c.in_rate, c.out_rate);
    const got = floatTo16BitPCM(once);
    assert.equal(got.length, c.output_samples);
    let worst = 0;
    for (let k = 0; k < got.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]));
    assert.ok(worst <= manifest.tolerance_lsb.javascript, `max difference ${worst} LSB`);
    assert.ok(sameBits(resampleAll(x, c.in_rate, c.out_rate, 128), once), 'chunked != one call');
    resampleChecked.add(c.output);
  });
}

test('the golden resample cases are all there, and every one was checked', () => {
  // Declared after the generated tests, so it runs after them: an empty manifest generates none and fails here.
  const rates = new Set(manifest.resample.map((c) => `${c.in_rate}->${c.out_rate}`));
  for (const inRate of [8000, 11025, 16000, 22050, 44100, 44101, 48000, 96000]) {
    for (const outRate of [16000, 24000]) assert.ok(rates.has(`${inRate}->${outRate}`), `${inRate} -> ${outRate}`);
  }
  // The interpolated-table path (more than max_table coefficients) is among them, for both output rates.
  for (const outRate of [16000, 24000]) {
    assert.ok(manifest.resample.some((c) => c.out_rate === outRate && designFilter(c.in_rate, outRate).interpolated),
      `an interpolated case at ${outRate}`);
  }
  assert.deepEqual([...resampleChecked].sort(), manifest.resample.map((c) => c.output).sort());
});

test('any chunk sizes give the one-call output and exact counts', () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [inRate, outRate] of [[44100, 16000], [48000, 24000], [8000, 16000], [22050, 24000], [44101, 16000]]) {
    const x = new Float32Array(inRate / 2);
    for (let k = 0; k < x.length; k++) x[k] = rand() - 0.5;
    const { up, down, delay } = ratio(inRate, outRate);
    const r = new Resampler(inRate, outRate);
    const parts = [];
    let fed = 0n;
    let emitted = 0n;
    for (let k = 0; k < x.length;) {
      const sizes = [1, 7, 128, 4096, 1 + Math.floor(rand() * 999)];
      const size = sizes[Math.floor(rand() * sizes.length)];
      const chunk = x.subarray(k, k + size);
      k += chunk.length;
      fed += BigInt(chunk.length);
      const expected = r.outputCount(chunk.length);
      const y = r.process(chunk);
      assert.equal(y.length, expected);
      parts.push(y);
      emitted += BigInt(y.length);
      const floor = (fed * up) / down - delay;
      assert.equal(emitted, floor > 0n ? floor : 0n);
    }
    const tail = r.flush();
    parts.push(tail);
    assert.equal(emitted + BigInt(tail.length), (fed * up + down - 1n) / down, 'total after flush = ceil');
    assert.ok(sameBits(concat(parts), resampleAll(x, inRate, outRate)));
  }
});

test('exact counts over a simulated hour, and no phase drift after it', () => {
  for (const [inRate, outRate] of [[44100, 16000], [48000, 24000], [44101, 16000]]) {
    const { up, down, delay } = ratio(inRate, outRate);
    const r = new Resampler(inRate, outRate);
    const block = new Float32Array(1 << 20);
    const hour = BigInt(inRate) * 3600n;
    let fed = 0n;
    let emitted = 0n;
    while (fed < hour) {
      const n = hour - fed < BigInt(block.length) ? Number(hour - fed) : block.length;
      const y = r.process(block.subarray(0, n));
      fed += BigInt(n);
      emitted += BigInt(y.length);
      assert.equal(emitted, (fed * up) / down - delay);
    }
    // An hour is a whole number of ratio periods, so a tone now must give exactly a fresh stream's numbers.
    assert.equal(hour % down, 0n);
    const tone = new Float32Array(inRate / 10);
    for (let k = 0; k < tone.length; k++) tone[k] = 0.5 * Math.sin(2 * Math.PI * 997 * k / inRate);
    const late = concat([r.process(tone), r.flush()]);
    const fresh = resampleAll(tone, inRate, outRate);
    const shift = Number((hour * up) / down - emitted);
    assert.equal(late.length, shift + fresh.length);
    assert.ok(sameBits(late.subarray(shift), fresh), `${inRate}->${outRate} drifted after an hour`);
  }
});

test('equal rates pass through bit-identical', () => {
  const x = Float32Array.from([0.1, -0.2, NaN, Infinity, -Infinity, 1.5, -0]);
  const r = new Resampler(16000, 16000);
  assert.equal(r.delay, 0);
  assert.ok(sameBits(r.process(x), x));
  assert.equal(r.flush().length, 0);
});

test('non-finite inputs act as 0 (NaN) and full scale (Inf)', () => {
  const n = 4800;
  const clean = new Float32Array(n);
  for (let k = 0; k < n; k++) clean[k] = 0.5 * Math.sin(k / 10);
  const dirty = clean.slice();
  [dirty[100], dirty[200], dirty[300]] = [NaN, Infinity, -Infinity];
  [clean[100], clean[200], clean[300]] = [0, 1, -1];
  const y = resampleAll(dirty, 48000, 16000);
  assert.ok(y.every(Number.isFinite));
  assert.ok(sameBits(y, resampleAll(clean, 48000, 16000)));
});

test('bad rates are rejected', () => {
  for (const bad of [0, -1, 16000.5, NaN, 2e6]) assert.throws(() => new Resampler(bad, 16000), RangeError);
  assert.throws(() => new Resampler(48000, 0), RangeError);
});

// Quality measured here, on the float output.

/** Least-squares fit of a*cos + b*sin + c at freq; returns [signal power, residual power]. */
function fitTone(y, freq, rate) {
  const w = (2 * Math.PI * freq) / rate;
  const n = y.length;
  const A = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  const v = [0, 0, 0];
  for (let k = 0; k < n; k++) {
    const b = [Math.cos(w * k), Math.sin(w * k), 1];
    for (let i = 0; i < 3; i++) {
      v[i] += b[i] * y[k];
      for (let j = 0; j < 3; j++) A[i][j] += b[i] * b[j];
    }
  }
  // Gaussian elimination on the 3x3 normal equations.
  for (let i = 0; i < 3; i++) {
    for (let r = i + 1; r < 3; r++) {
      const f = A[r][i] / A[i][i];
      for (let c = i; c < 3; c++) A[r][c] -= f * A[i][c];
      v[r] -= f * v[i];
    }
  }
  const coef = [0, 0, 0];
  for (let i = 2; i >= 0; i--) {
    let s = v[i];
    for (let c = i + 1; c < 3; c++) s -= A[i][c] * coef[c];
    coef[i] = s / A[i][i];
  }
  let sig = 0;
  let res = 0;
  for (let k = 0; k < n; k++) {
    const t = coef[0] * Math.cos(w * k) + coef[1] * Math.sin(w * k);
    sig += t * t;
    res += (y[k] - t - coef[2]) ** 2;
  }
  return [sig / n, res / n];
}

function toneAt(freq, rate, n) {
  const x = new Float32Array(n);
  for (let k = 0; k < n; k++) x[k] = 0.5 * Math.sin((2 * Math.PI * freq * k) / rate);
  return x;
}

function trimFor(inRate, outRate) {
  const d = designFilter(inRate, outRate);
  return Math.ceil((2 * d.halfTaps * outRate) / inRate) + 4;
}

const QUALITY_PAIRS = [[8000, 16000], [22050, 16000], [44100, 16000], [44100, 24000], [48000, 16000],
  [48000, 24000], [96000, 16000], [96000, 24000], [44101, 16000], [192000, 24000]];

test('passband SINAD >= 100 dB (0 .. 0.4 of the lower rate)', () => {
  for (const [inRate, outRate] of QUALITY_PAIRS) {
    const base = Math.min(inRate, outRate);
    const trim = trimFor(inRate, outRate);
    for (const freq of [61.3, 0.17 * base, 0.31 * base, 0.4 * base]) {
      const y = resampleAll(toneAt(freq, inRate, inRate / 4), inRate, outRate);
      const [sig, res] = fitTone(y.subarray(trim, y.length - trim), freq, outRate);
      const db = 10 * Math.log10(sig / res);
      assert.ok(db >= 100, `${inRate}->${outRate} at ${freq} Hz: SINAD ${db.toFixed(1)} dB`);
    }
  }
});

test('tones that would alias into the output band are suppressed >= 100 dB, from just above 0.5 x out', () => {
  // Anything above the output's Nyquist frequency folds back (0.52 x out lands at 0.48 x out), so the tones start
  // there, not at the passband's mirror image: a transition band straddling 0.5 x out leaks most just above it.
  // Not exactly 0.5 x out: a zero-phase sine there is sampled at its zero crossings.
  for (const [inRate, outRate] of QUALITY_PAIRS.filter(([i, o]) => i > o)) {
    const trim = trimFor(inRate, outRate);
    const hi = 0.499 * inRate;
    const freqs = [0.505, 0.52, 0.55, 0.6].map((f) => f * outRate);
    for (let s = 0; s < 4; s++) freqs.push(0.65 * outRate + ((hi - 0.65 * outRate) * s) / 3);
    for (const freq of freqs) {
      assert.ok(freq > 0.5 * outRate && freq <= hi);
      const x = toneAt(freq, inRate, inRate / 4);
      const y = resampleAll(x, inRate, outRate).subarray(trim, -trim);
      const pin = x.reduce((a, v) => a + v * v, 0) / x.length;
      const pout = y.reduce((a, v) => a + v * v, 0) / y.length;
      const db = 10 * Math.log10(pin / Math.max(pout, 1e-300));
      assert.ok(db >= 100, `${inRate}->${outRate} at ${freq.toFixed(0)} Hz: ${db.toFixed(1)} dB`);
    }
  }
});

test('upsampling leaves no image of a tone below the input Nyquist frequency (>= 100 dB down)', () => {
  // A tone at f < 0.5 x in has images at in - f, in + f, ... wherever they land in the output: after fitting the
  // tone itself, all that is left is image, noise and distortion, and it must be 100 dB below the input tone.
  // f from 0.4 to 0.48 x in, between the passband and the input Nyquist frequency, whose images lie just above it.
  for (const [inRate, outRate] of [[8000, 16000], [8000, 24000], [11025, 16000], [11025, 24000], [16000, 24000],
    [22050, 24000]]) {
    const trim = trimFor(inRate, outRate);
    for (const frac of [0.4, 0.45, 0.48]) {
      const freq = frac * inRate;
      const x = toneAt(freq, inRate, inRate / 4);
      const y = resampleAll(x, inRate, outRate);
      const [, res] = fitTone(y.subarray(trim, y.length - trim), freq, outRate);
      const pin = x.reduce((a, v) => a + v * v, 0) / x.length;
      const db = 10 * Math.log10(pin / Math.max(res, 1e-300));
      assert.ok(db >= 100, `${inRate}->${outRate} at ${freq.toFixed(0)} Hz: image ${db.toFixed(1)} dB down`);
    }
  }
});

// Framer and PcmPipeline.

test('Framer cuts exact frames, each with its own transferable buffer', () => {
  const f = new Framer(4);
  assert.equal(f.pending, 0);
  assert.equal(f.flush(), null);
  assert.deepEqual(f.push(Int16Array.from([1, 2, 3])), []);
  assert.equal(f.pending, 3);
  const frames = f.push(Int16Array.from([4, 5, 6, 7, 8, 9, 10]));
  assert.deepEqual(frames.map((x) => Array.from(x)), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  assert.equal(f.pending, 2);
  for (const x of frames) assert.equal(x.buffer.byteLength, 8);
  assert.notEqual(frames[0].buffer, frames[1].buffer);
  const moved = structuredClone(frames[0], { transfer: [frames[0].buffer] });
  assert.equal(frames[0].byteLength, 0);
  assert.deepEqual(Array.from(moved), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(f.push(Int16Array.from([11, 12]))[0]), [9, 10, 11, 12]);
  assert.deepEqual(f.push(Int16Array.from([13]), 1), []);
  const rest = f.flush();
  assert.deepEqual(Array.from(rest), [13]);
  assert.equal(rest.buffer.byteLength, 2);
  assert.equal(f.flush(), null);
  assert.throws(() => new Framer(0), RangeError);
});

test('PcmPipeline = Resampler -> floatTo16BitPCM -> Framer, fed 128 samples at a time', () => {
  const c = manifest.resample.find((e) => e.signal === 'speech' && e.in_rate === 44100 && e.out_rate === 16000);
  const x = readRaw(c.input, Float32Array);
  const want = floatTo16BitPCM(resampleAll(x, 44100, 16000));
  const p = new PcmPipeline({ inRate: 44100, outRate: TRUEBAR_FORMAT.sampleRate, frameSamples: 160 });
  const frames = [];
  for (let k = 0; k < x.length; k += 128) frames.push(...p.push(x.subarray(k, k + 128)));
  const body = frames.length;
  frames.push(...p.flush());
  assert.ok(frames.slice(0, -1).every((f) => f.length === 160));
  assert.ok(frames.at(-1).length <= 160 && frames.length > body);
  assert.deepEqual(concat(frames, Int16Array), want);
});

test('checkPipeline refuses what PcmPipeline refuses, with the same RangeError, without designing a filter', () => {
  // capture.js checks on the main thread what the worklet would otherwise refuse only on the audio thread.
  for (const bad of [
    { inRate: 48000, outRate: 22050.5, frameSamples: 1600 },
    { inRate: 48000, outRate: MAX_RATE + 1, frameSamples: 1600 },
    { inRate: 0, outRate: 16000, frameSamples: 1600 },
    { inRate: 48000, outRate: 16000, frameSamples: 0 },
  ]) {
    let want = null;
    try { new PcmPipeline(bad); } catch (err) { want = err; }
    assert.ok(want instanceof RangeError, JSON.stringify(bad));
    assert.throws(() => checkPipeline(bad), { name: 'RangeError', message: want.message });
  }
  assert.doesNotThrow(() => checkPipeline({ inRate: 1, outRate: MAX_RATE, frameSamples: 1 }));
  assert.deepEqual([1, 44100, MAX_RATE].map(isRate), [true, true, true]);
  assert.deepEqual([0, -16000, 16000.5, MAX_RATE + 1, NaN, Infinity, '16000', null].map(isRate), Array(8).fill(false));
});

test('meter: a level once `every` samples are summed, over all of them; the span grows until then', () => {
  const every = 2400; // 50 ms at 48 kHz
  const block = new Float32Array(128).map((_, i) => 0.5 * Math.sin(i / 5));
  let sumSq = 0;
  let peak = 0;
  for (const v of block) { sumSq += v * v; peak = Math.max(peak, Math.abs(v)); }
  let span = EMPTY_LEVEL_SPAN;
  const levels = [];
  for (let q = 0; q < 18; q++) {
    const out = meter(span, block, every);
    span = out.span;
    if (out.level) levels.push(out.level);
  }
  assert.deepEqual(levels, [], '18 x 128 = 2304 samples: not yet');
  assert.equal(span.count, 18 * 128);
  assert.equal(span.peak, peak);
  assert.ok(Math.abs(span.sum - 18 * sumSq) < 1e-9);
  const out = meter(span, block, every);
  assert.equal(out.span, EMPTY_LEVEL_SPAN, 'reported: the span starts again');
  assert.ok(out.level);
  // 19 quanta of 128 = 2432 >= 2400: the level covers all 2432, not only the first 2400.
  assert.ok(Math.abs(out.level.rms - Math.sqrt((19 * sumSq) / 2432)) < 1e-12, String(out.level.rms));
  assert.equal(out.level.peak, peak);
  assert.equal(out.level.silent, false);
});

test('meter: silence is flagged, the input span is never changed, no NaN from an empty span', () => {
  const span = Object.freeze({ count: 100, sum: 0, peak: 0 });
  const out = meter(span, new Float32Array(128), 200);
  assert.deepEqual(out.level, { rms: 0, peak: 0, silent: true });
  assert.deepEqual(span, { count: 100, sum: 0, peak: 0 }, 'pure: the span handed in is as it was');
  const grown = meter(Object.freeze({ count: 1, sum: 0.25, peak: 0.5 }), new Float32Array([-0.75]), 10);
  assert.deepEqual(grown, { span: { count: 2, sum: 0.25 + 0.5625, peak: 0.75 }, level: null }, 'a negative peak counts by magnitude');
  assert.deepEqual(meter(EMPTY_LEVEL_SPAN, new Float32Array(0), 0), { span: { count: 0, sum: 0, peak: 0 }, level: null });
});

test('meter: NaN samples count as 0 and infinities as full scale, as the resampler takes them', () => {
  const out = meter(EMPTY_LEVEL_SPAN, new Float32Array([NaN, Infinity, -Infinity, NaN]), 4);
  assert.deepEqual(out.level, { rms: Math.sqrt(2 / 4), peak: 1, silent: false });
  assert.deepEqual(meter(EMPTY_LEVEL_SPAN, new Float32Array([NaN, NaN]), 2).level, { rms: 0, peak: 0, silent: true });
});
