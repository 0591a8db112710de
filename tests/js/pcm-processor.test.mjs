// The worklet shell, run in Node with the three AudioWorkletGlobalScope names it uses stubbed: it must turn every
// render quantum, including Firefox's zero-channel inputs, into exact frames, and transfer their buffers.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const posted = [];
let Processor = null;
globalThis.sampleRate = 48000;
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = {
      onmessage: null,
      postMessage: (message, transfer) => posted.push({ message, transfer }),
    };
  }
};
globalThis.registerProcessor = (name, cls) => {
  assert.equal(name, 'pcm-processor');
  Processor = cls;
};
await import('../../static/audio/pcm-processor.js');

function make(outRate = 16000, frameSamples = 1600) {
  posted.length = 0;
  return new Processor({ processorOptions: { outRate, frameSamples } });
}

const frames = () => posted.filter((p) => p.message.type === 'frame');

/** A quantum of noise from its own seed, so no two quanta (nor a quantum and its reverse) are alike. */
function noiseBlock(n, seed) {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

/** Every posted frame's PCM, in order, as one byte string. */
function postedBytes() {
  return Buffer.concat(frames().map((f) => Buffer.from(f.message.pcm)));
}

test("the frames' audio is pcm.js PcmPipeline's for the same quanta, a channel-less quantum as zeros", async () => {
  // Frame counts alone would pass a worklet that reversed each quantum, or repeated the last one for a quantum with
  // no channels: the bytes must be what the pipeline makes of the audio, with silence where Firefox sent none.
  const { PcmPipeline } = await import('../../static/audio/pcm.js');
  for (const [outRate, frameSamples] of [[16000, 1600], [24000, 4800]]) {
    const p = make(outRate, frameSamples);
    const pipeline = new PcmPipeline({ inRate: 48000, outRate, frameSamples });
    const want = [];
    for (let q = 0; q < 300; q++) {
      // Every third quantum has no channels, one in seven no input at all; the rest are distinct noise.
      const silent = q % 3 === 1 || q % 7 === 3;
      const block = silent ? new Float32Array(128) : noiseBlock(128, q + 1);
      const inputs = !silent ? [[block.slice()]] : q % 7 === 3 ? [] : [[]];
      assert.equal(p.process(inputs), true);
      want.push(...pipeline.push(block));
    }
    p.port.onmessage({ data: { type: 'flush' } });
    want.push(...pipeline.flush());
    const expected = Buffer.concat(want.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
    assert.equal(frames().length, want.length);
    assert.ok(expected.length > 0 && postedBytes().equals(expected), `${outRate}: frames differ from PcmPipeline's`);
  }
});

test('silent quanta with zero channels keep the clock: one second in, ten 100 ms frames out', () => {
  const p = make();
  const tone = new Float32Array(128).map((_, i) => 0.5 * Math.sin(i / 3));
  for (let q = 0; q < 375; q++) {
    // 375 quanta of 128 samples = 1 s at 48 kHz; every other one is Firefox's silent input with no channels.
    const inputs = q % 2 ? [[]] : [[tone]];
    assert.equal(p.process(inputs), true);
  }
  p.port.onmessage({ data: { type: 'flush' } });
  const out = frames();
  const total = out.reduce((n, f) => n + f.message.pcm.byteLength / 2, 0);
  assert.equal(total, 16000);
  assert.ok(out.slice(0, -1).every((f) => f.message.pcm.byteLength === 3200));
  assert.deepEqual(out.map((f) => f.message.seq), out.map((_, i) => i));
  // Buffers are transferred, not copied.
  assert.ok(out.every((f) => f.transfer.length === 1 && f.transfer[0] === f.message.pcm));
  const done = posted.at(-1).message;
  assert.deepEqual(done, { type: 'flushed', frames: out.length, inSamples: 48000 });
  assert.equal(p.process([[tone]]), false, 'a flushed processor stops');
});

test('silent quanta are as long as the quanta with sound: a context rendering 256 samples at a time', () => {
  const p = make();
  const tone = new Float32Array(256).map((_, i) => 0.5 * Math.sin(i / 3));
  for (let q = 0; q < 375; q++) p.process(q % 2 ? [[]] : [[tone]]); // 2 s at 48 kHz, every other quantum silent
  p.port.onmessage({ data: { type: 'flush' } });
  assert.equal(frames().reduce((n, f) => n + f.message.pcm.byteLength / 2, 0), 32000);
  assert.deepEqual(posted.at(-1).message, { type: 'flushed', frames: frames().length, inSamples: 96000 });
});

test('levels are reported about every 50 ms, silence flagged', () => {
  const p = make();
  for (let q = 0; q < 38; q++) p.process([[]]);
  const levels = posted.filter((m) => m.message.type === 'level').map((m) => m.message);
  assert.equal(levels.length, 2);
  assert.ok(levels.every((l) => l.silent && l.rms === 0 && l.peak === 0));
});

test("'stop' ends the processor: process() returns false at once and nothing more is posted", () => {
  const p = make();
  const tone = new Float32Array(128).fill(0.25);
  assert.equal(p.process([[tone]]), true);
  p.port.onmessage({ data: { type: 'stop' } });
  const before = posted.length;
  // A released capture's node is disconnected, so its input is silence: it must not go on resampling that.
  for (let q = 0; q < 400; q++) assert.equal(p.process([[]]), false);
  assert.equal(posted.length, before, 'no frames or levels after stop');
});

test("the worklet's levels are pcm.js meter()'s, over 50 ms at the context's rate", async () => {
  const { EMPTY_LEVEL_SPAN, meter } = await import('../../static/audio/pcm.js');
  const p = make();
  const tone = new Float32Array(128).map((_, i) => 0.3 * Math.sin(i / 7));
  let span = EMPTY_LEVEL_SPAN;
  const expected = [];
  for (let q = 0; q < 60; q++) {
    p.process([[tone]]);
    const out = meter(span, tone, 2400);
    span = out.span;
    if (out.level) expected.push({ type: 'level', ...out.level });
  }
  assert.equal(expected.length, 3);
  assert.deepEqual(posted.filter((m) => m.message.type === 'level').map((m) => m.message), expected);
});

test('a message to the worklet that is not flush or stop is passed over', () => {
  const p = make();
  const tone = new Float32Array(128).fill(0.25);
  for (const data of [null, undefined, 'flush', ['flush'], {}, { type: 'FLUSH' }, { type: 5 }]) {
    assert.doesNotThrow(() => p.port.onmessage({ data }), String(data && JSON.stringify(data)));
  }
  assert.equal(p.process([[tone]]), true, 'still running');
  assert.equal(posted.some((m) => m.message.type === 'flushed'), false);
});
