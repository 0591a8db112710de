// static/audio/capture.js letting go of the audio graph: a released capture (or one whose start failed) must stop
// its worklet and leave nothing connected that could feed onFrame later. Browser audio objects are stand-ins that
// record what is done to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CaptureError, startCapture } from '../../static/audio/capture.js';

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
  constructor(context, name, options) {
    super();
    this.context = context;
    this.options = options;
    this.port = {
      sent: [],
      onmessage: null,
      start() {},
      addEventListener() {},
      postMessage(message) { this.sent.push(message); },
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

function browser({ resumes = true } = {}) {
  const AC = fakeContextClass({ resumes });
  Object.defineProperty(AC.prototype, 'audioWorklet', { value: null, writable: true, configurable: true });
  globalThis.AudioContext = AC;
  globalThis.AudioWorkletNode = FakeWorkletNode;
  FakeWorkletNode.made.length = 0;
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { mediaDevices: { getUserMedia: async () => new FakeStream() } },
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
