// A microphone that goes away mid-stream, end to end through the real worklet (static/audio/pcm-processor.js), the
// real Capture and the real SourceSupervisor: only the browser's objects are stand-ins (a port that delivers
// messages a task later, as a MessagePort does). No sample the old worklet had taken in may be lost at the switch.
import { test } from 'node:test';
import assert from 'node:assert/strict';

let Processor = null;
globalThis.sampleRate = 48000;
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = { onmessage: null, postMessage: (message) => this.toNode(message) };
  }
};
globalThis.registerProcessor = (_name, cls) => { Processor = cls; };
await import('../../static/audio/pcm-processor.js');
const { Capture } = await import('../../static/audio/capture.js');
const { SourceSupervisor } = await import('../../static/source-supervisor.js');

const later = () => new Promise((resolve) => setTimeout(resolve, 5));

/** A Capture over a real processor, its two ports joined by tasks; the context keeps running after the track ends. */
function capture(options, processors) {
  const processor = new Processor({ processorOptions: { outRate: options.outRate, frameSamples: options.frameSamples } });
  const listeners = [];
  const port = {
    onmessage: null,
    start() {},
    addEventListener: (_type, listener) => listeners.push(listener),
    postMessage: (message) => setTimeout(() => processor.port.onmessage({ data: message }), 0),
  };
  processor.toNode = (message) => setTimeout(() => {
    port.onmessage?.({ data: message });
    for (const listener of listeners) listener({ data: message });
  }, 0);
  const stream = { getAudioTracks: () => [], getTracks: () => [] };
  const context = { state: 'running', sampleRate: 48000, currentTime: 0 };
  const made = new Capture(stream, context, { port, disconnect() {} }, { disconnect() {} }, { ownsStream: false, ownsContext: false });
  port.onmessage = (event) => {
    if (event.data.type !== 'frame') return;
    made.framesPosted++;
    options.onFrame(new Int16Array(event.data.pcm));
  };
  processors.push(processor);
  return made;
}

/** `quanta` render quanta of a tone into `processor`, then a task for its frames to reach the page. */
async function speak(processor, quanta) {
  const block = new Float32Array(128);
  for (let q = 0; q < quanta; q++) {
    for (let i = 0; i < 128; i++) block[i] = 0.3 * Math.sin((q * 128 + i) / 7);
    processor.process([[block]]);
  }
  await later();
}

test('an unplugged microphone loses no sample: the old worklet\'s part-filled frame and tail go out first', async () => {
  const processors = [];
  const sizes = [];
  const reports = [];
  const supervisor = new SourceSupervisor({ microphone: async (o) => capture(o, processors) }, {
    outRate: 16000, frameSamples: 1600, pacing: 'fast', onFrame: (pcm) => sizes.push(pcm.length), onLevel() {},
    canSend: () => true, over: () => false, report: (e) => reports.push(e.code), lost: (message) => reports.push(message),
  });
  supervisor.use(await supervisor.open());
  await speak(processors[0], 500); // 64000 samples at 48 kHz: 1.333 s, not a whole number of 100 ms frames
  await supervisor.interrupted('The microphone was disconnected.', 'ended');
  await speak(processors[1], 500);
  await supervisor.stop();
  await later();
  assert.deepEqual(reports, ['device_switched']);
  // Each capture's 64000 samples at 48 kHz are ceil(64000 / 3) at 16 kHz, all of them sent.
  assert.equal(sizes.reduce((a, b) => a + b, 0), 2 * Math.ceil(64000 / 3));
  // Fixed frames but for the last of each capture: the old one's tail is a short frame at the switch.
  assert.deepEqual(sizes.filter((n) => n !== 1600), [21334 % 1600, 21334 % 1600]);
});
