// What Safari needs from the capture path, checked under Node with stand-ins for the browser's audio objects:
// a caller's AudioContext and MediaStream are used (and left to the caller), a resume() that never settles fails
// Start with a clear message instead of hanging it, and iOS's 'interrupted' is recovered like 'suspended'.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CaptureError, openAudioContext, startCapture } from '../../static/audio/capture.js';
import { Session } from '../../static/session.js';
import { internals } from '../../static/session-internals.js';
import { ready, sleep, source, tick, world } from './support/session-fakes.mjs';

class FakeTrack {
  readyState = 'live';
  label = 'Fake mic';
  stopped = false;
  addEventListener() {}
  removeEventListener() {}
  getSettings() { return { sampleRate: 48000 }; }
  stop() { this.stopped = true; this.readyState = 'ended'; }
}

class FakeStream {
  constructor() { this.tracks = [new FakeTrack()]; }
  getAudioTracks() { return this.tracks; }
  getTracks() { return this.tracks; }
}

/** An AudioContext whose resume() does what the test says. */
function fakeContextClass({ resumes = true } = {}) {
  return class FakeAudioContext {
    static made = [];
    sampleRate = 48000;
    state = 'suspended';
    closed = false;
    resumeCalls = 0;
    audioWorklet = { addModule: async () => {} };
    constructor() { FakeAudioContext.made.push(this); }
    addEventListener() {}
    removeEventListener() {}
    createMediaStreamSource() { return { connect() {}, disconnect() {} }; }
    resume() {
      this.resumeCalls += 1;
      if (!resumes) return new Promise(() => {}); // Safari outside a gesture: never settles
      this.state = 'running';
      return Promise.resolve();
    }
    close() { this.closed = true; this.state = 'closed'; return Promise.resolve(); }
  };
}

class FakeWorkletNode {
  port = { start() {}, postMessage() {}, addEventListener() {}, onmessage: null };
  addEventListener() {}
  removeEventListener() {}
  disconnect() {}
}

function browser({ resumes = true } = {}) {
  const AC = fakeContextClass({ resumes });
  Object.defineProperty(AC.prototype, 'audioWorklet', { value: null, writable: true, configurable: true });
  const streams = [];
  globalThis.AudioContext = AC;
  globalThis.AudioWorkletNode = FakeWorkletNode;
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { mediaDevices: { getUserMedia: async () => { const s = new FakeStream(); streams.push(s); return s; } } },
  });
  return { AC, streams };
}

const options = { outRate: 16000, frameSamples: 1600, onFrame: () => {}, workletUrl: 'pcm-processor.js' };

test('openAudioContext makes the context and asks it to start in the same call', () => {
  const { AC } = browser();
  const context = openAudioContext(AC);
  assert.equal(AC.made.length, 1);
  assert.equal(context.resumeCalls, 1, 'resume() is called before returning: still inside the gesture');
  delete globalThis.AudioContext;
  assert.equal(openAudioContext(), undefined, 'no Web Audio: capture says so later');
});

test("a caller's AudioContext and MediaStream are used, and left open for the caller", async () => {
  const { AC, streams } = browser();
  const context = new AC();
  const stream = new FakeStream();
  const capture = await startCapture({ ...options, context, stream });
  assert.equal(capture.context, context);
  assert.equal(capture.stream, stream);
  assert.equal(streams.length, 0, 'no microphone prompt when the caller brought a stream');
  assert.equal(AC.made.length, 1, 'no second context');
  await capture.release();
  assert.equal(context.closed, false);
  assert.equal(stream.tracks[0].stopped, false);
  // Without them the capture owns (and closes) what it opened.
  const own = await startCapture(options);
  await own.release();
  assert.equal(own.context.closed, true);
  assert.equal(streams[0].tracks[0].stopped, true);
});

test('a resume() that never settles fails Start with a clear error instead of hanging', async () => {
  const { AC, streams } = browser({ resumes: false });
  const context = new AC();
  await assert.rejects(startCapture({ ...options, context, resumeTimeoutMs: 30 }), (err) => {
    assert.ok(err instanceof CaptureError);
    assert.equal(err.code, 'suspended');
    assert.match(err.message, /did not let audio processing start .*Press Start again/);
    return true;
  });
  assert.equal(streams[0].tracks[0].stopped, true, 'the microphone it opened is released');
  assert.equal(context.closed, false, "the caller's context is the caller's to close");
});

test("iOS's 'interrupted' is resumed like 'suspended', without reopening the microphone", async () => {
  const w = world();
  const opened = [];
  const events = [];
  const s = new Session({
    provider: 'truebar',
    clientOptions: { WebSocketImpl: w.Sock },
    microphone: async (o) => {
      const capture = { ...source(), options: o, context: { currentTime: 0, state: 'interrupted', resume() { this.state = 'running'; return Promise.resolve(); } } };
      opened.push(capture);
      return capture;
    },
    onEvent: (e) => events.push(e),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  opened[0].options.onInterrupted('Audio processing is interrupted.', 'interrupted');
  await sleep(10);
  assert.equal(opened.length, 1);
  assert.deepEqual(events.filter((e) => e.type === 'source').map((e) => [e.message, e.recovered]),
    [['Audio processing is interrupted. Resumed.', true]]);
  s.cancel();
});

test("a resume that hangs during recovery is bounded, then the microphone is reopened", async () => {
  const w = world();
  const opened = [];
  const events = [];
  const s = new Session({
    provider: 'truebar',
    clientOptions: { WebSocketImpl: w.Sock },
    resumeTimeoutMs: 20,
    microphone: async (o) => {
      const capture = { ...source(), options: o, context: { currentTime: 0, state: 'suspended', resume: () => new Promise(() => {}) } };
      opened.push(capture);
      return capture;
    },
    onEvent: (e) => events.push(e),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  opened[0].options.onInterrupted('Audio processing is suspended.', 'suspended');
  await sleep(60);
  assert.equal(opened.length, 2);
  assert.equal(opened[0].released, true);
  assert.match(events.find((e) => e.type === 'source').message, /Switched to the default microphone/);
  s.cancel();
});

test("the session as a library: a caller's AudioContext and MediaStream are used and left to the caller", async () => {
  const { AC, streams } = browser();
  const w = world();
  const audioContext = new AC();
  const mediaStream = new FakeStream();
  const s = new Session({
    provider: 'truebar', clientOptions: { WebSocketImpl: w.Sock }, onEvent: () => {}, audioContext, mediaStream,
  });
  // The worklet URL resolves against the module; the fake context loads anything.
  const started = s.start();
  for (let i = 0; i < 10; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  assert.equal(internals.get(s).capture().context, audioContext);
  assert.equal(internals.get(s).capture().stream, mediaStream);
  assert.equal(streams.length, 0, 'no microphone prompt');
  const stopping = s.stop();
  await sleep(10);
  w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.equal(audioContext.closed, false);
  assert.equal(mediaStream.tracks[0].stopped, false);
});

test("a caller's AudioContext and MediaStream used for run after run keep no listener of a released capture", async () => {
  const { AC } = browser();
  /** Counts the listeners an object holds, as an EventTarget would. */
  const listening = (target) => {
    target.listeners = new Set();
    target.addEventListener = (_type, fn) => { target.listeners.add(fn); };
    target.removeEventListener = (_type, fn) => { target.listeners.delete(fn); };
    return target;
  };
  const context = listening(new AC());
  const stream = new FakeStream();
  listening(stream.tracks[0]);
  for (let run = 0; run < 3; run++) {
    const capture = await startCapture({ ...options, context, stream, onInterrupted: () => {} });
    assert.ok(context.listeners.size > 0, 'the capture watches the context while it runs');
    assert.ok(stream.tracks[0].listeners.size > 0, 'and the track');
    await (run === 1 ? capture.stop() : capture.release());
    assert.equal(context.listeners.size, 0, `run ${run}: the released capture's statechange listener is removed`);
    assert.equal(stream.tracks[0].listeners.size, 0, `run ${run}: and its ended listener`);
  }
});

test("the session's resumeTimeoutMs bounds the start's resume too, not capture.js's own default", async () => {
  const { AC } = browser({ resumes: false });
  const w = world();
  const audioContext = new AC();
  const s = new Session({
    provider: 'truebar', clientOptions: { WebSocketImpl: w.Sock }, onEvent: () => {}, audioContext, resumeTimeoutMs: 30,
  });
  const started = s.start();
  // A real wait: capture.js times the resume with the global setTimeout. 500 ms is far below its 3 s default.
  const outcome = await Promise.race([started.then(() => 'resolved', (err) => err), sleep(500).then(() => 'pending')]);
  assert.ok(outcome instanceof CaptureError, `start() ${outcome} after 500 ms with resumeTimeoutMs: 30`);
  assert.equal(outcome.code, 'suspended');
  assert.equal(s.state, 'error');
});
