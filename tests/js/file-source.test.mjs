// static/audio/file-source.js on its own: the rate a file's header declares (declaredRate), the down-mix of its
// channels to mono (downmix, and decodeToMono with a stand-in OfflineAudioContext), and the levels a FileSource
// reports. No browser: headers and decoded audio are built by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FileSource, declaredRate, decodeToMono, downmix } from '../../static/audio/file-source.js';
import { EMPTY_LEVEL_SPAN, meter } from '../../static/audio/pcm.js';

/** A header's first bytes, padded so every reader has room. @param {number[]} bytes */
const header = (bytes) => new Uint8Array([...bytes, 0, 0, 0, 0, 0, 0, 0, 0]).buffer;

// ---- declaredRate: MP3 frame headers, and ADTS AAC ones that share their sync word ----

test('declaredRate: an MP3 frame header gives its rate by version and rate index', () => {
  // 0xFFFB: MPEG-1 layer III, no CRC; byte 2 = bitrate index 9 (128 kb/s) << 4 | rate index << 2.
  assert.equal(declaredRate(header([0xff, 0xfb, 0x90, 0x44])), 44100);
  assert.equal(declaredRate(header([0xff, 0xfb, 0x94, 0x44])), 48000);
  // 0xFFF3: MPEG-2 layer III (version bits 10): half the MPEG-1 rates.
  assert.equal(declaredRate(header([0xff, 0xf3, 0x84, 0x44])), 24000);
  assert.equal(declaredRate(header([0xff, 0xf3, 0x88, 0x44])), 16000);
  // 0xFFE3: MPEG-2.5 (version bits 00).
  assert.equal(declaredRate(header([0xff, 0xe3, 0x88, 0x44])), 8000);
  // Behind an ID3v2 tag of 4 bytes.
  const tagged = header([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4, 0xff, 0xfb, 0x90, 0x44]);
  assert.equal(declaredRate(tagged), 44100);
});

test('declaredRate: frame headers with reserved fields are not MP3', () => {
  assert.equal(declaredRate(header([0xff, 0xf9, 0x90, 0x44])), null, 'layer bits 00 (reserved in MP3: ADTS uses them)');
  assert.equal(declaredRate(header([0xff, 0xeb, 0x90, 0x44])), null, 'version bits 01 (reserved)');
  assert.equal(declaredRate(header([0xff, 0xfb, 0xf0, 0x44])), null, 'bitrate index 15 (invalid)');
  assert.equal(declaredRate(header([0xff, 0xfb, 0x9c, 0x44])), null, 'rate index 3 (reserved)');
});

test('declaredRate: an ADTS AAC header is not read as MP3; the browser decodes it on the generic path', () => {
  // ADTS: sync 0xFFF, MPEG-4 (0xF1) or MPEG-2 (0xF9), layer 00; byte 2 = profile LC (01) << 6 | sf_index << 2.
  // Read as MP3 these gave rates from the wrong bits (44.1 kHz and 16 kHz AAC both as 22050), so the browser
  // decoded the file at a rate it does not have, one resampling step more than pcm.js's.
  for (const sync of [0xf1, 0xf9]) {
    for (let sfIndex = 0; sfIndex < 12; sfIndex++) {
      const adts = header([0xff, sync, (1 << 6) | (sfIndex << 2), 0x80]);
      assert.equal(declaredRate(adts), null, `sync ${sync.toString(16)} sf_index ${sfIndex}`);
    }
  }
});

// ---- declaredRate: WAV (RIFF and RF64), FLAC, and what may stand in front of them ----

/** Bytes of an ASCII string. @param {string} s */
const bytesOf = (s) => [...s].map((c) => c.charCodeAt(0));
/** @param {number} n little-endian, 4 bytes */
const u32 = (n) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
/** A PCM fmt chunk: mono 16-bit at `rate`. @param {number} rate */
const fmtChunk = (rate) => [...bytesOf('fmt '), ...u32(16), 1, 0, 1, 0, ...u32(rate), ...u32(rate * 2), 2, 0, 16, 0];
/** An ID3v2 tag with `size` bytes of body (a synchsafe size), flags as given. */
const id3 = (size, flags = 0) => [...bytesOf('ID3'), 4, 0, flags, (size >> 21) & 0x7f, (size >> 14) & 0x7f,
  (size >> 7) & 0x7f, size & 0x7f, ...new Array(size).fill(0)];
/** fLaC and a STREAMINFO block of a stereo 16-bit stream at `rate`: 20 bits from byte 18. @param {number} rate */
const flac = (rate) => [...bytesOf('fLaC'), 0x80, 0, 0, 34, 0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0,
  (rate >> 12) & 0xff, (rate >> 4) & 0xff, ((rate & 0xf) << 4) | 0x02, 0xf0, ...new Array(28).fill(0)];

test('declaredRate: a RIFF WAV, its fmt chunk after others', () => {
  const list = [...bytesOf('LIST'), ...u32(5), 1, 2, 3, 4, 5, 0]; // an odd size is padded to even
  const wav = [...bytesOf('RIFF'), ...u32(1000), ...bytesOf('WAVE'), ...list, ...fmtChunk(22050),
    ...bytesOf('data'), ...u32(0)];
  assert.equal(declaredRate(header(wav)), 22050);
});

test('declaredRate: an RF64 (and BW64) WAV, 64-bit sizes in its ds64 chunk', () => {
  // RF64 (EBU Tech 3306) is what recorders write past 4 GiB: RIFF and data sizes 0xFFFFFFFF, the real ones in ds64.
  const ds64 = [...bytesOf('ds64'), ...u32(28), ...new Array(28).fill(0xff)];
  for (const magic of ['RF64', 'BW64']) {
    const wav = [...bytesOf(magic), ...u32(0xffffffff), ...bytesOf('WAVE'), ...ds64, ...fmtChunk(96000),
      ...bytesOf('data'), ...u32(0xffffffff)];
    assert.equal(declaredRate(header(wav)), 96000, magic);
  }
});

test('declaredRate: FLAC, with or without an ID3v2 tag in front', () => {
  assert.equal(declaredRate(header(flac(44100))), 44100);
  assert.equal(declaredRate(header(flac(96000))), 96000);
  // Taggers that write ID3v2 to FLAC files put it first: the FLAC header follows the tag.
  assert.equal(declaredRate(header([...id3(300), ...flac(48000)])), 48000);
});

test('declaredRate: every ID3v2 tag is skipped, a v2.4 footer with it', () => {
  const mp3 = [0xff, 0xfb, 0x94, 0x44]; // MPEG-1 layer III, 48 kHz
  assert.equal(declaredRate(header([...id3(20), ...id3(7), ...mp3])), 48000, 'two tags');
  // Flag 0x10: a 10-byte footer ("3DI" ...) follows the tag's body, outside its size.
  const footer = [...bytesOf('3DI'), 4, 0, 0x10, 0, 0, 0, 20];
  assert.equal(declaredRate(header([...id3(20, 0x10), ...footer, ...mp3])), 48000, 'footer');
  assert.equal(declaredRate(header(id3(2000))), null, 'a tag longer than the file');
});

// ---- downmix: the Web Audio spec's down-mix to mono ('speakers'), as the microphone path gets ----

/** @param {number} n @param {number} seed */
function noise(n, seed) {
  let x = seed;
  return Float32Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648 - 0.5;
  });
}

/** @param {Float32Array} got @param {(i: number) => number} want */
function assertSamples(got, want) {
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - want(i)) <= 1e-6, `sample ${i}: ${got[i]} vs ${want(i)}`);
  }
}

test('downmix: mono as is, stereo 0.5(L+R), quad 0.25(L+R+SL+SR)', () => {
  const n = 256;
  const [a, b, c, d] = [1, 2, 3, 4].map((seed) => noise(n, seed));
  assertSamples(downmix([a]), (i) => a[i]);
  assertSamples(downmix([a, b]), (i) => 0.5 * (a[i] + b[i]));
  assertSamples(downmix([a, b, c, d]), (i) => 0.25 * (a[i] + b[i] + c[i] + d[i]));
  assert.equal(downmix([a, b]).length, n);
});

test('downmix: 5.1 is 0.7071(L+R) + C + 0.5(SL+SR), the LFE dropped', () => {
  const n = 256;
  const [L, R, C, LFE, SL, SR] = [1, 2, 3, 4, 5, 6].map((seed) => noise(n, seed));
  assertSamples(downmix([L, R, C, LFE, SL, SR]), (i) => Math.SQRT1_2 * (L[i] + R[i]) + C[i] + 0.5 * (SL[i] + SR[i]));
});

test('downmix: other channel counts (3, 5, 8) are averaged', () => {
  const n = 64;
  for (const count of [3, 5, 8]) {
    const chs = Array.from({ length: count }, (_, k) => noise(n, k + 1));
    assertSamples(downmix(chs), (i) => chs.reduce((sum, ch) => sum + ch[i], 0) / count);
  }
});

test("decodeToMono: a 5.1 file's centre channel (the dialogue) keeps its level, as through the microphone path", async () => {
  // Averaging the six channels put the centre at 1/6, -15.6 dB.
  const n = 4800;
  const chs = Array.from({ length: 6 }, () => new Float32Array(n));
  for (let i = 0; i < n; i++) chs[2][i] = 0.6 * Math.sin(i / 5); // L R C LFE SL SR: C is index 2
  const had = globalThis.OfflineAudioContext;
  globalThis.OfflineAudioContext = class {
    async decodeAudioData() {
      return { length: n, numberOfChannels: 6, sampleRate: 48000, getChannelData: (c) => chs[c] };
    }
  };
  try {
    const { samples, channels } = await decodeToMono(new ArrayBuffer(16));
    assert.equal(channels, 6);
    assertSamples(samples, (i) => chs[2][i]);
  } finally {
    globalThis.OfflineAudioContext = had;
  }
});

// ---- FileSource's levels: pcm.js's meter(), so a bad sample cannot make them NaN ----

test("a FileSource's levels are meter()'s: a NaN and an Infinity sample give finite levels", async () => {
  const x = new Float32Array(4800).fill(0.1);
  x[10] = NaN;
  x[3000] = Infinity;
  const src = new FileSource({}, { samples: x, sampleRate: 48000, channels: 1, durationMs: 100 }, { outRate: 16000, frameSamples: 1600 });
  const levels = [];
  src.run({ onFrame() {}, canSend: () => true, onLevel: (l) => levels.push(l), pacing: 'fast' });
  await src.done;
  // Two 50 ms levels at 48 kHz, each what the worklet's meter says for the same samples.
  const want = [x.subarray(0, 2400), x.subarray(2400)].map((part) => meter(EMPTY_LEVEL_SPAN, part, part.length).level);
  assert.deepEqual(levels, want);
  assert.ok(levels.every((l) => Number.isFinite(l.rms) && Number.isFinite(l.peak)), JSON.stringify(levels));
  assert.equal(levels[1].peak, 1, 'Infinity counts as full scale');
});
