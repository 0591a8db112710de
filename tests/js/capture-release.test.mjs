// static/audio/capture.js letting go of the audio graph: a released capture (or one whose start failed) must stop
// its worklet and leave nothing connected that could feed onFrame later; and what it reads from the worklet's port
// (parseProcessorMessage: a malformed message is passed over). Browser audio objects are stand-ins that record what
// is done to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CaptureError, parseProcessorMessage, startCapture } from '../../static/audio/capture.js';

class FakeTrack {
  readyState = 'live';
  label = 'Fake mic';
  addEventListener() {}
  removeEventListener() {}
  getSettings() { return { sampleRate: 48000 }; }
  stop() { this.readyState = 'ended'; }
}

class FakeStream {
  tracks = [new FakeTrack()];
  getAudioTracks() { return this.tracks; }
  getTracks() { return this.tracks; }
}

/** A node that records its connections and port traffic. */
class FakeNode {
  connected = new Set();
  connect(target) { this.connected.add(target); }
  disconnect() { this.connected.clear(); }
}

class FakeWorkletNode extends FakeNode {
  static made = [];
  /** @type {Map<string, Set<Function>>} */
  listeners = new Map();
  addEventListener(type, fn) { this.listeners.set(type, (this.listeners.get(type) ?? new Set()).add(fn)); }
  removeEventListener(type, fn) { this.listeners.get(type)?.delete(fn); }
  /** The browser dispatching `type` on the node (e.g. 'processorerror': the processor threw). */
  fire(type) { for (const fn of this.listeners.get(type) ?? []) fn({ type }); }
  constructor(context, name, options) {
    super();
    this.context = context;
    this.options = options;
    this.port = {
      sent: [],
      onmessage: null,
      listeners: [],
      start() {},
      addEventListener(type, fn) { if (type === 'message') this.listeners.push(fn); },
      postMessage(message) { this.sent.push(message); },
      /** The worklet posting `data`: to onmessage and every 'message' listener, as a MessagePort does. */
      receive(data) {
        this.onmessage?.({ data });
        for (const fn of this.listeners) fn({ data });
      },
    };
    FakeWorkletNode.made.push(this);
  }
}

function fakeContextClass({ resumes }) {
  return class FakeAudioContext {
    sampleRate = 48000;
    state = 'suspended';
    currentTime = 0;
    audioWorklet = { addModule: async () => {} };
    sources = [];
    addEventListener() {}
    removeEventListener() {}
    createMediaStreamSource() {
      const source = new FakeNode();
      this.sources.push(source);
      return source;
    }
    resume() {
      if (!resumes) return new Promise(() => {});
      this.state = 'running';
      return Promise.resolve();
    }
    close() { this.state = 'closed'; return Promise.resolve(); }
  };
}

/** Microphones asked for (getUserMedia calls) since the last browser(). */
let micRequests = 0;

function browser({ resumes = true } = {}) {
  const AC = fakeContextClass({ resumes });
  Object.defineProperty(AC.prototype, 'audioWorklet', { value: null, writable: true, configurable: true });
  globalThis.AudioContext = AC;
  globalThis.AudioWorkletNode = FakeWorkletNode;
  FakeWorkletNode.made.length = 0;
  micRequests = 0;
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { mediaDevices: { getUserMedia: async () => { micRequests += 1; return new FakeStream(); } } },
  });
  return AC;
}

const options = (frames = []) => ({
  outRate: 16000, frameSamples: 1600, workletUrl: 'pcm-processor.js', onFrame: (pcm) => frames.push(pcm),
});

test("release() tells the worklet to stop, so a caller's long-lived context does not keep one running per session", async () => {
  const AC = browser();
  const context = new AC();
  for (let run = 0; run < 3; run++) {
    const capture = await startCapture({ ...options(), context, stream: new FakeStream() });
    await capture.release();
  }
  assert.equal(FakeWorkletNode.made.length, 3);
  for (const node of FakeWorkletNode.made) {
    assert.deepEqual(node.port.sent.filter((m) => m.type === 'stop'), [{ type: 'stop' }]);
  }
});

test('a capture whose start failed leaves nothing connected that could feed onFrame once the context runs', async () => {
  const AC = browser({ resumes: false });
  const context = new AC();
  const frames = [];
  await assert.rejects(
    startCapture({ ...options(frames), context, stream: new FakeStream(), resumeTimeoutMs: 10 }),
    (err) => err instanceof CaptureError && err.code === 'suspended',
  );
  const [node] = FakeWorkletNode.made;
  assert.equal(context.sources[0].connected.size, 0, 'the microphone source is disconnected');
  assert.equal(node.port.onmessage, null, 'the port handler is gone');
  assert.deepEqual(node.port.sent.filter((m) => m.type === 'stop'), [{ type: 'stop' }], 'the worklet is stopped');
  // The caller's context starts later (the user ends the call): a frame the worklet had already posted is dropped.
  node.port.onmessage?.({ data: { type: 'frame', pcm: new ArrayBuffer(3200), seq: 0 } });
  assert.deepEqual(frames, []);
});

test('stop() after release() does not ask the stopped worklet for a flush it would never answer', async () => {
  const AC = browser();
  const context = new AC();
  const capture = await startCapture({ ...options(), context, stream: new FakeStream() });
  const releasing = capture.release(); // a device switch closing the context: Stop comes before it is closed
  const totals = await capture.stop();
  await releasing;
  const [node] = FakeWorkletNode.made;
  assert.equal(node.port.sent.some((m) => m.type === 'flush'), false);
  assert.ok(node.port.sent.some((m) => m.type === 'stop'));
  assert.deepEqual(totals, { frames: 0, inSamples: 0 });
});

test('a rate the resampler does not take fails start before the microphone is asked for or a worklet is made', async () => {
  // In a browser the worklet's constructor threw for these, on the audio thread: start resolved, the session went
  // to streaming and sent nothing.
  for (const [outRate, contextRate] of [[22050.5, 48000], [2_000_000, 48000], [16000, 1_500_000]]) {
    const AC = browser();
    let closed = false;
    globalThis.AudioContext = class extends AC {
      sampleRate = contextRate;
      close() { closed = true; return super.close(); }
    };
    await assert.rejects(
      startCapture({ ...options(), outRate }),
      (err) => err instanceof CaptureError && err.code === 'failed' && /Hz in 1\.\.1000000/.test(err.message),
      `outRate ${outRate} at a ${contextRate} Hz context`,
    );
    assert.equal(micRequests, 0, 'no microphone prompt for a session that cannot run');
    assert.equal(FakeWorkletNode.made.length, 0);
    assert.equal(closed, true, 'the context it made is closed');
  }
});

test('a worklet that fails (processorerror) is reported as a failed capture, and not once released', async () => {
  const AC = browser();
  const interruptions = [];
  const capture = await startCapture({
    ...options(), context: new AC(), stream: new FakeStream(), onInterrupted: (reason, kind) => interruptions.push([reason, kind]),
  });
  const [node] = FakeWorkletNode.made;
  node.fire('processorerror');
  assert.deepEqual(interruptions.map(([, kind]) => kind), ['failed']);
  assert.match(interruptions[0][0], /Audio processing failed/);
  await capture.release();
  node.fire('processorerror');
  assert.equal(interruptions.length, 1, 'a released capture reports nothing more');
  assert.equal(node.listeners.get('processorerror')?.size ?? 0, 0, 'its listener is removed');
});

const MALFORMED = [
  null, undefined, 0, 'frame', [], [{ type: 'frame' }], {}, { type: 'nope' }, { type: 5 },
  { type: 'frame' }, { type: 'frame', pcm: new ArrayBuffer(3200) }, { type: 'frame', pcm: new Int16Array(1600), seq: 0 },
  { type: 'frame', pcm: new ArrayBuffer(3), seq: 0 }, { type: 'frame', pcm: new ArrayBuffer(4), seq: -1 },
  { type: 'frame', pcm: new ArrayBuffer(4), seq: 1.5 }, { type: 'frame', pcm: new ArrayBuffer(4), seq: '0' },
  { type: 'frame', pcm: [0, 0], seq: 0 }, { type: 'frame', pcm: null, seq: 0 },
  { type: 'level' }, { type: 'level', rms: NaN, peak: 0, silent: true }, { type: 'level', rms: 0, peak: Infinity, silent: false },
  { type: 'level', rms: -0.1, peak: 0, silent: false }, { type: 'level', rms: '0', peak: 0, silent: true },
  { type: 'level', rms: 0, peak: 0, silent: 'true' }, { type: 'level', rms: 0, peak: 0 },
  { type: 'flushed' }, { type: 'flushed', frames: 3 }, { type: 'flushed', frames: NaN, inSamples: 0 },
  { type: 'flushed', frames: 3, inSamples: -1 }, { type: 'flushed', frames: '3', inSamples: 4800 },
];

test("parseProcessorMessage: the worklet's messages pass, typed; anything else is refused", () => {
  const pcm = new ArrayBuffer(3200);
  assert.deepEqual(parseProcessorMessage({ type: 'frame', pcm, seq: 0 }), { type: 'frame', pcm, seq: 0 });
  assert.equal(parseProcessorMessage({ type: 'frame', pcm, seq: 7 })?.pcm, pcm, 'the buffer itself, not a copy');
  assert.deepEqual(parseProcessorMessage({ type: 'level', rms: 0.25, peak: 0.5, silent: false, extra: 1 }),
    { type: 'level', rms: 0.25, peak: 0.5, silent: false });
  assert.deepEqual(parseProcessorMessage({ type: 'level', rms: 0, peak: 0, silent: true }), { type: 'level', rms: 0, peak: 0, silent: true });
  assert.deepEqual(parseProcessorMessage({ type: 'flushed', frames: 10, inSamples: 48000 }), { type: 'flushed', frames: 10, inSamples: 48000 });
  for (const bad of MALFORMED) assert.equal(parseProcessorMessage(bad), null, String(bad && JSON.stringify(bad)));
});

test('a malformed port message reaches neither onFrame nor onLevel, and throws nothing', async () => {
  const AC = browser();
  const frames = [];
  const levels = [];
  const capture = await startCapture({ ...options(frames), onLevel: (l) => levels.push(l), context: new AC(), stream: new FakeStream() });
  const { port } = FakeWorkletNode.made[0];
  for (const bad of MALFORMED) assert.doesNotThrow(() => port.receive(bad), String(bad && JSON.stringify(bad)));
  assert.deepEqual(frames, []);
  assert.deepEqual(levels, []);
  assert.equal(capture.framesPosted, 0);
  port.receive({ type: 'frame', pcm: new Int16Array([1, -2]).buffer, seq: 0 });
  port.receive({ type: 'level', rms: 0.1, peak: 0.2, silent: false });
  assert.deepEqual(frames, [new Int16Array([1, -2])]);
  assert.deepEqual(levels, [{ rms: 0.1, peak: 0.2, silent: false }]);
  assert.equal(capture.framesPosted, 1);
  await capture.release();
});

test("stop() passes over a malformed 'flushed' and takes the totals of the worklet's real one", async () => {
  const AC = browser();
  const capture = await startCapture({ ...options(), context: new AC(), stream: new FakeStream() });
  const { port } = FakeWorkletNode.made[0];
  const stopping = capture.stop();
  assert.ok(port.sent.some((m) => m.type === 'flush'));
  port.receive({ type: 'flushed', frames: NaN, inSamples: 48000 });
  port.receive({ type: 'flushed', frames: 3 });
  port.receive({ type: 'flushed', frames: 3, inSamples: 48000 });
  assert.deepEqual(await stopping, { frames: 3, inSamples: 48000 });
});

test('stop() on a suspended context still asks for the flush and takes its tail: a suspended worklet answers', async () => {
  // Measured in Chromium, Firefox and WebKitGTK (playwright/test_capture_suspended.py): the worklet's port is served
  // while the context does not render, so skipping the flush (or releasing) there would only throw the tail away.
  const AC = browser();
  const frames = [];
  const context = new AC();
  const capture = await startCapture({ ...options(frames), context, stream: new FakeStream() });
  const { port } = FakeWorkletNode.made[0];
  context.state = 'suspended';
  const stopping = capture.stop();
  assert.deepEqual(port.sent.filter((m) => m.type === 'flush'), [{ type: 'flush' }]);
  port.receive({ type: 'frame', pcm: new Int16Array(130).buffer, seq: 0 });
  port.receive({ type: 'flushed', frames: 1, inSamples: 4800 });
  assert.deepEqual(await stopping, { frames: 1, inSamples: 4800 });
  assert.deepEqual(frames.map((f) => f.length), [130], 'the tail reached onFrame before stop() resolved');
});
