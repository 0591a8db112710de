// static/audio-path.js on its own: the source's frames through the replay accounting to the current client (only
// to the buffer during an outage), the backpressure a file waits on, and the audio effects (terminal loss, outage,
// replay, reconnected), with a fake source, a fake client and a settable state: no session, no audio, no sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { AudioPath, MAX_SEND_AHEAD_MS } from '../../static/audio-path.js';

const GRANT = { provider: 'local', protocol: 'truebar', ws_url: 'ws://x.test/1', token: 'T', sample_rate: 16000, frame_samples: 1600 };
const frame = (n = 1600) => new Int16Array(n).fill(1);

function world(options = {}) {
  const events = [];
  const levels = [];
  const losses = [];
  const sent = [];
  const opened = [];
  const w = {
    state: 'starting', lost: false, clock: 0, events, levels, losses, sent, opened,
    link: { client: { sendAudio: (pcm) => sent.push(pcm.length), bufferedMs: () => 0 }, grant: GRANT, capabilities: { pacing: 'realtime' } },
  };
  w.audio = new AudioPath({
    source: async (o) => {
      const src = { o, context: { currentTime: 5 }, async stop() { return { frames: 0, inSamples: 0 }; }, async release() { src.released = true; } };
      opened.push(src);
      return src;
    },
    maxReplayMs: 1000, backpressureStallMs: 500, ...options,
  }, {
    state: () => w.state, lost: () => w.lost, link: w.link, emit: (e) => events.push(e), level: (l) => levels.push(l),
    sourceLost: (message, err) => losses.push([message, err]), now: () => w.clock,
  });
  return w;
}

async function streaming(w) {
  w.audio.prepare(GRANT);
  const capture = await w.audio.open(GRANT);
  w.audio.use(capture, 1000);
  w.state = 'streaming';
  return capture;
}

test("open(): the source gets the grant's rate and frame size and the provider's pacing; use() makes it live", async () => {
  const w = world();
  w.audio.prepare(GRANT);
  const capture = await w.audio.open(GRANT);
  assert.equal(w.audio.capture, null, 'not live until used');
  assert.deepEqual([capture.o.outRate, capture.o.frameSamples, capture.o.pacing], [16000, 1600, 'realtime']);
  w.audio.use(capture, 1000);
  assert.equal(w.audio.capture, capture);
  assert.deepEqual(w.audio.facts(4000).clockStart, { capture, time: 5 });
  assert.equal(w.audio.facts(4000).startedAt, 1000);
});

test('frames go to the replay buffer and the current client; during an outage to the buffer only', async () => {
  const w = world();
  const capture = await streaming(w);
  capture.o.onFrame(frame());
  assert.deepEqual(w.sent, [1600]);
  assert.equal(w.audio.audioMs, 100);
  w.lost = true;
  w.audio.beginOutage();
  capture.o.onFrame(frame());
  assert.deepEqual(w.sent, [1600], 'held, not sent');
  assert.equal(w.audio.replay.bufferedMs, 200);
  w.state = 'stopped';
  capture.o.onFrame(frame());
  assert.equal(w.audio.audioMs, 200, 'nothing after the end');
});

test('canSend(): always while stopping; never before streaming or during an outage; else while the buffer has room', async () => {
  const w = world();
  const capture = await streaming(w);
  w.state = 'connecting';
  assert.equal(w.audio.canSend(), false);
  w.state = 'streaming';
  assert.equal(w.audio.canSend(), true);
  w.lost = true;
  assert.equal(w.audio.canSend(), false);
  w.state = 'stopping';
  assert.equal(w.audio.canSend(), true);
  w.state = 'streaming';
  w.lost = false;
  for (let i = 0; i < 10; i++) capture.o.onFrame(frame()); // 1 s: the replay bound, no final yet
  assert.equal(w.audio.canSend(), false, 'one more frame would push unreplayable audio out');
  w.clock = 10_000;
  assert.equal(capture.o.canSend(), true, 'held past the stall time: one frame goes on (the source asks the same question)');
  assert.equal(w.audio.canSend(), false, 'then the wait starts again');
});

test("canSend(): a file waits while the socket's send buffer holds more than MAX_SEND_AHEAD_MS of audio", async () => {
  const w = world();
  await streaming(w);
  w.link.client.bufferedMs = () => MAX_SEND_AHEAD_MS + 1;
  assert.equal(w.audio.canSend(), false, 'the uplink has not taken what it has');
  w.link.client.bufferedMs = () => MAX_SEND_AHEAD_MS;
  assert.equal(w.audio.canSend(), true);
  w.state = 'stopping';
  w.link.client.bufferedMs = () => 60_000;
  assert.equal(w.audio.canSend(), true, 'the tail goes out whatever the buffer');
});

test('replayInto(): the held audio to the new client, in order; reconnected() says what was replayed', async () => {
  const w = world();
  const capture = await streaming(w);
  capture.o.onFrame(frame());
  w.lost = true;
  w.audio.beginOutage();
  capture.o.onFrame(frame(800));
  const fresh = [];
  w.audio.replayInto({ sendAudio: (pcm) => fresh.push(pcm.length) }, false);
  assert.deepEqual(fresh, [1600, 800]);
  w.audio.reconnected(2);
  assert.deepEqual(w.events.at(-1), { type: 'reconnected', replayedMs: 150, droppedMs: 0, attempt: 2 });
  assert.equal(w.audio.facts(0).reconnects, 1);
});

test('terminalLoss(): the audio no final covered is said to be lost', async () => {
  const w = world();
  const capture = await streaming(w);
  capture.o.onFrame(frame());
  w.audio.terminalLoss();
  assert.deepEqual(w.events, [{ type: 'dropped', droppedMs: 100 }]);
});

test('before the first grant: no clock, no source; interruptions and the tail are no-ops', async () => {
  const w = world();
  assert.equal(w.audio.audioMs, 0);
  assert.equal(w.audio.replay, null);
  assert.equal(w.audio.tail, null);
  w.audio.terminalLoss();
  w.audio.beginOutage();
  w.audio.release();
  await w.audio.interrupted('gone', 'ended');
  assert.deepEqual(w.events, []);
});

test('a caller source (a file) is not reopened: its interruption is said; release() lets it go', async () => {
  const w = world();
  await streaming(w);
  await w.audio.interrupted('The file ended.', 'ended');
  assert.deepEqual(w.events, [{ type: 'source', message: 'The file ended.', recovered: false, code: 'source_interrupted' }]);
  w.audio.release();
  assert.equal(w.opened[0].released, true);
});

test('a microphone that cannot be reopened is a loss for the reducer; no recovery once the session is stopping', async () => {
  let opens = 0;
  const w = world({
    source: undefined,
    microphone: async (o) => {
      if (++opens > 1) throw Object.assign(new Error('No microphone.'), { code: 'no_device' });
      return { o, async stop() { return { frames: 0, inSamples: 0 }; }, async release() {} };
    },
  });
  await streaming(w);
  await w.audio.interrupted('The microphone was unplugged.', 'ended');
  assert.equal(w.losses.length, 1);
  assert.match(w.losses[0][0], /unplugged\. No microphone\./);
  w.state = 'stopping';
  await w.audio.interrupted('Again.', 'ended');
  assert.equal(w.losses.length, 1);
});
