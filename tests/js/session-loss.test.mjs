// static/session.js must never lose audio silently. Each test here reproduces one way it did (issue 12, bugs 1-4):
// the provider sockets, /api/sessions and the audio source are doubles; the Session, the provider clients, the
// replay buffer and the file source are the real ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Session } from '../../static/session.js';
import { internals } from '../../static/session-internals.js';
import { FileSource } from '../../static/audio/file-source.js';
import { TruebarClient } from '../../static/providers/truebar.js';
import { fakeSocketClass } from './support/fakes.mjs';
import { deferred, frame, ready, sleep, source, tick, world } from './support/session-fakes.mjs';

Math.random = () => 0; // backoff jitter: no wait

const FRAME_MS = 100; // frame() is 1600 samples at 16 kHz

async function streaming(w, { events = [], src = source(), ...options } = {}) {
  const s = new Session({
    provider: 'truebar',
    clientOptions: { WebSocketImpl: w.Sock },
    createSource: async (o) => { src.onFrame = o.onFrame; src.options = o; return src; },
    onEvent: (e) => events.push(e),
    ...options,
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  return { s, src, events };
}

/** A Truebar final covering [startMs, endMs] of the session's audio. */
const finalSegment = (text, startMs, endMs) => ({
  type: 'TEXT_SEGMENT',
  textSegment: {
    isFinal: true, startTimeMs: startMs, endTimeMs: endMs,
    tokens: [{ text, startOffsetMs: 0, endOffsetMs: endMs - startMs }],
  },
});

// ---- bug 1: loss is counted from the last final, and always reported ----

test('bug 1: audio beyond the replay bound that no final covered is reported lost when the socket drops', async () => {
  const w = world();
  const { s, src, events } = await streaming(w);
  for (let i = 0; i < 400; i++) src.onFrame(frame()); // 40 s, no final: the buffer keeps the last 30 s
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[1]);
  await sleep(20);
  const dropped = events.filter((e) => e.type === 'dropped');
  assert.ok(dropped.length >= 1, 'a dropped event is emitted');
  assert.equal(dropped.at(-1).droppedMs, 10_000, 'the first 10 s were sent but never covered by a final');
  const reconnected = events.find((e) => e.type === 'reconnected');
  assert.equal(reconnected.replayedMs, 30_000);
  assert.equal(reconnected.droppedMs, 10_000, 'the reconnect itself says what was lost');
  assert.equal(s.diagnostics().droppedMs, 10_000);
});

test('bug 1: audio a final already covered is not counted as lost', async () => {
  const w = world();
  const { s, src, events } = await streaming(w);
  for (let i = 0; i < 400; i++) src.onFrame(frame());
  w.Sock.instances[0].push(finalSegment('covered', 0, 15_000)); // covers the 10 s that fell off the buffer
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[1]);
  await sleep(20);
  assert.deepEqual(events.filter((e) => e.type === 'dropped'), []);
  assert.equal(events.find((e) => e.type === 'reconnected').droppedMs, 0);
  assert.equal(s.diagnostics().droppedMs, 0);
  assert.equal(w.Sock.instances[1].binaries.length, 250, 'the 25 s after the final are replayed');
});

test('bug 1: a second drop does not count the first gap again', async () => {
  const w = world();
  const { s, src, events } = await streaming(w, { maxReplayMs: 1000 });
  for (let i = 0; i < 30; i++) src.onFrame(frame()); // 3 s, no final, 1 s kept
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[1]);
  await sleep(20);
  assert.equal(s.diagnostics().droppedMs, 2000);
  for (let i = 0; i < 5; i++) src.onFrame(frame()); // 0.5 s more, still within the bound
  w.Sock.instances[1].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[2]);
  await sleep(20);
  // The replayed second went to a session that died before any final: its first half fell off the 1 s buffer
  // and is lost too. The first 2 s are not counted twice.
  assert.equal(s.diagnostics().droppedMs, 2500);
  assert.deepEqual(events.filter((e) => e.type === 'dropped').map((e) => e.droppedMs), [2000, 2500]);
});

test('bug 1: Wiro, a final soon after a replay burst does not forget the replayed audio it has not heard, so a second drop replays it', async () => {
  const w = world('wiro'); // 1600-sample (100 ms) frames
  let now = 1_000_000;
  const events = [];
  const src = source();
  const s = new Session({
    provider: 'wiro', clientOptions: { WebSocketImpl: w.Sock, utteranceGapMs: 5 }, now: () => now,
    createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    onEvent: (e) => events.push(e),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0], 'wiro');
  await started;
  const say = (ws, text) => ws.push({ type: 'task_output', message: `TRANSCRIPT_USER:${text}` });
  for (let i = 0; i < 50; i++) { src.onFrame(frame()); now += FRAME_MS; } // 5 s, live: one frame per 100 ms
  say(w.Sock.instances[0], 'first words');
  await sleep(20); // a final dated at 5 s: the audio up to 3 s is let go of
  for (let i = 0; i < 200; i++) { src.onFrame(frame()); now += FRAME_MS; } // 20 s more, no final yet
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[1], 'wiro');
  await sleep(5);
  assert.equal(w.Sock.instances[1].binaries.length, 220, 'the 22 s held are replayed at once');
  now += 1000; // Wiro has heard a second of them when its first utterance ends
  say(w.Sock.instances[1], 'a few words');
  await sleep(20);
  assert.equal(internals.get(s).buffer().pendingMs, 22_000, 'the replayed audio Wiro has not heard is still held');
  w.Sock.instances[1].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[2], 'wiro');
  await sleep(5);
  assert.equal(w.Sock.instances[2].binaries.length, 220, 'the second drop replays it again');
  assert.deepEqual(events.filter((e) => e.type === 'dropped'), []);
  s.cancel();
});

/**
 * A Wiro session whose microphone is live before the task is ready, as the start does it (the source opens, then
 * the client waits for task_stream_ready): `queuedMs` of audio captured meanwhile, one 100 ms frame per 100 ms of
 * the session's clock, go out in one burst when the stream is ready.
 */
async function wiroAfterQueue(w, queuedMs) {
  const clock = { now: 1_000_000 };
  const events = [];
  const src = source();
  const s = new Session({
    provider: 'wiro', clientOptions: { WebSocketImpl: w.Sock, utteranceGapMs: 5 }, now: () => clock.now,
    createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    onEvent: (e) => events.push(e),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  for (let i = 0; i < queuedMs / FRAME_MS; i++) { src.onFrame(frame()); clock.now += FRAME_MS; }
  assert.equal(w.Sock.instances[0].binaries.length, 0, 'nothing goes out before task_stream_ready');
  ready(w.Sock.instances[0], 'wiro');
  await started;
  /** `ms` more of live audio, one frame per 100 ms */
  const live = (ms) => { for (let i = 0; i < ms / FRAME_MS; i++) { src.onFrame(frame()); clock.now += FRAME_MS; } };
  const say = (ws, text) => ws.push({ type: 'task_output', message: `TRANSCRIPT_USER:${text}` });
  return { s, events, clock, live, say };
}

test("Wiro: a final soon after the first session's queued audio went out keeps the audio not yet heard", async () => {
  const w = world('wiro');
  const { s, events, live, say } = await wiroAfterQueue(w, 6000); // the task took 6 s to get ready
  assert.equal(w.Sock.instances[0].binaries.length, 60, 'the 6 s queued go out at once');
  // Wiro listens in real time: a second after the burst it has heard the first second of the recording.
  live(1000);
  say(w.Sock.instances[0], 'hello there');
  await sleep(20);
  assert.ok(internals.get(s).buffer().pendingMs >= 6000,
    `the 6 s Wiro has not heard yet are still held (${internals.get(s).buffer().pendingMs} ms)`);
  const final = events.find((e) => e.type === 'final');
  assert.equal(final.text, 'hello there');
  assert.ok(final.endMs <= 1000 && final.endMs >= 1000 - FRAME_MS, `dated where Wiro had heard to (~1 s), not ${final.endMs} ms`);
  assert.ok(final.startMs <= final.endMs);
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[1], 'wiro');
  await sleep(5);
  const reconnected = events.find((e) => e.type === 'reconnected');
  assert.ok(reconnected.replayedMs >= 7000 - 1000, `the audio Wiro had not heard is replayed (${reconnected.replayedMs} ms)`);
  assert.equal(w.Sock.instances[1].binaries.length * FRAME_MS, reconnected.replayedMs);
  assert.equal(s.diagnostics().droppedMs, 0);
  s.cancel();
});

test('Wiro: whatever the queue before ready and whenever the socket drops, audio after the last final is replayed or reported lost', async () => {
  for (const queuedMs of [500, 1500, 3000, 6000, 12_000]) {
    for (const dropAfterMs of [1000, 5000, 20_000]) {
      const w = world('wiro');
      const { s, events, clock, live, say } = await wiroAfterQueue(w, queuedMs);
      const readyAt = clock.now;
      const ws = w.Sock.instances[0];
      // Live speech; every 2 s Wiro (1x, no latency) ends an utterance of what it has heard, which is the
      // recording up to the time since the burst: it never catches up while the microphone runs.
      let heardAtFinal = 0;
      /** @type {[number, number][]} each final's end, and where Wiro had heard to when it came */
      const dated = [];
      for (let t = 1000; t <= dropAfterMs; t += 1000) {
        live(1000);
        if (t % 2000 === 0) {
          say(ws, `words${t}`);
          await sleep(10);
          heardAtFinal = clock.now - readyAt;
          dated.push([events.filter((e) => e.type === 'final').at(-1).endMs, heardAtFinal]);
        }
      }
      const sentMs = s.audioMs;
      ws.serverClose(1006);
      await sleep(20);
      ready(w.Sock.instances[1], 'wiro');
      await sleep(5);
      const reconnected = events.find((e) => e.type === 'reconnected');
      const replayFromMs = sentMs - reconnected.replayedMs;
      assert.ok(replayFromMs - s.diagnostics().droppedMs <= heardAtFinal,
        `burst ${queuedMs} ms, drop after ${dropAfterMs} ms: Wiro transcribed up to ${heardAtFinal} ms, the replay `
        + `starts at ${replayFromMs} ms and ${s.diagnostics().droppedMs} ms are reported lost`);
      for (const [endMs, heardMs] of dated) {
        assert.ok(endMs <= heardMs && endMs >= heardMs - FRAME_MS,
          `burst ${queuedMs} ms: a final when Wiro had heard ${heardMs} ms is dated ${endMs} ms`);
      }
      s.cancel();
    }
  }
});

test('Wiro: task_stream_end before Stop replaces the task and replays the audio after the last final', async () => {
  const w = world('wiro');
  const { s, events, live, say } = await wiroAfterQueue(w, 0);
  const first = w.Sock.instances[0];
  live(5000);
  say(first, 'first words');
  await sleep(20); // a final at 5 s: held from 3 s (the untimed margin)
  live(3000);
  first.push({ type: 'task_stream_end' }); // "no more transcripts will arrive", while still streaming
  await sleep(20);
  assert.equal(w.Sock.instances.length, 2, 'a new task is asked for');
  ready(w.Sock.instances[1], 'wiro');
  await sleep(20);
  assert.equal(w.Sock.instances[1].binaries.length, 50, 'the 5 s from 3 s (the last final less the margin) are replayed');
  assert.equal(events.find((e) => e.type === 'reconnected').replayedMs, 5000);
  assert.deepEqual(events.filter((e) => e.type === 'error'), [], 'a reconnect, not an end');
  assert.deepEqual(events.filter((e) => e.type === 'dropped'), []);
  assert.equal(s.state, 'streaming');
  s.cancel();
});

// ---- bug 1, second half: a file waits for the provider instead of overrunning the replay bound ----

test('bug 1: file transcription is held back (backpressure) instead of overrunning the replay bound', async () => {
  const w = world();
  const rate = 16000;
  const samples = new Float32Array(40 * rate).map((_, i) => 0.25 * Math.sin(i / 7));
  const decoded = { samples, sampleRate: rate, channels: 1, durationMs: 40_000 };
  let file;
  let ended = false;
  // Logical, not timed: the test waits for the events themselves (the source first held back, the file ended),
  // so a slow machine only makes it slower.
  const heldBack = deferred();
  const endedOnce = deferred();
  let session = null;
  const { s } = await streaming(w, {
    createSource: async (o) => {
      file = new FileSource({ name: 'speech.wav' }, decoded, o);
      // Held back before the provider was ready too: the hold that counts is the one with audio in the buffer.
      const canSend = () => {
        const ok = o.canSend();
        if (!ok && session && internals.get(session).buffer().pendingMs > 0) heldBack.resolve();
        return ok;
      };
      file.run({ ...o, canSend, pacing: 'fast', onEnded: () => { ended = true; endedOnce.resolve(); } });
      return file;
    },
  });
  session = s;
  await heldBack.promise;
  assert.equal(internals.get(s).buffer().droppedSamples, 0, 'nothing fell off the replay buffer');
  assert.equal(internals.get(s).buffer().pendingMs, 30_000, 'the file ran exactly up to the bound, and stopped there');
  const atHold = internals.get(s).buffer().totalSamples;
  for (let i = 0; i < 20; i++) await tick();
  assert.equal(internals.get(s).buffer().totalSamples, atHold, 'held: not one more frame while no final comes');
  assert.equal(ended, false, 'the file waits for finals');
  // A final covering the first 20 s lets the rest through.
  w.Sock.instances[0].push(finalSegment('twenty seconds', 0, 20_000));
  await endedOnce.promise;
  assert.equal(ended, true, 'the whole file was delivered');
  assert.equal(internals.get(s).buffer().droppedSamples, 0);
  assert.equal(internals.get(s).buffer().totalSamples, 40 * rate);
  await s.stop();
});

// ---- bug 2: one microphone recovery at a time ----

test('bug 2: "ended" during a pending resume() opens one microphone, and the old one is released', async () => {
  const w = world();
  const opened = [];
  const resume = deferred();
  const microphone = async (o) => {
    const capture = {
      ...source(),
      options: o,
      context: { currentTime: 0, state: 'suspended', resume: () => resume.promise },
    };
    opened.push(capture);
    return capture;
  };
  const events = [];
  const s = new Session({
    provider: 'truebar', clientOptions: { WebSocketImpl: w.Sock }, microphone, onEvent: (e) => events.push(e),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  const first = opened[0];
  first.options.onInterrupted('Audio processing is suspended.', 'suspended');
  await tick();
  first.options.onInterrupted('The microphone was disconnected.', 'ended');
  await sleep(10);
  resume.resolve(Promise.reject(new Error('cannot resume')));
  await sleep(20);
  assert.equal(opened.length, 2, 'the initial microphone and exactly one replacement');
  assert.equal(first.released, true, 'the first microphone is released');
  assert.equal(internals.get(s).capture(), opened[1]);
  assert.equal(opened[1].released, false, 'the replacement is the live one');
  assert.equal(events.filter((e) => e.type === 'source').length, 1, 'one recovery, reported once');
  await s.stop();
  assert.equal(opened[1].released, true);
});

// ---- bug 3: drop and expiry causes are typed fields, not inferred from order or text ----

function truebarClient(grantOverrides = {}) {
  const Sock = fakeSocketClass();
  const events = [];
  const client = new TruebarClient({
    provider: 'truebar', protocol: 'truebar', ws_url: 'ws://provider.test/stream', token: 'TOKEN',
    sample_rate: 16000, frame_samples: 1600, expires_at: Date.now() / 1000 + 3600, ...grantOverrides,
  }, { WebSocketImpl: Sock, onEvent: (e) => events.push(e) });
  const started = client.start();
  const ws = Sock.instances[0];
  ready(ws);
  return { client, started, ws, events };
}

test('bug 3: a dropped socket is an error with cause "transport"', async () => {
  const { started, ws, events } = truebarClient();
  await started;
  ws.serverClose(1006);
  const error = events.find((e) => e.type === 'error');
  assert.equal(error.cause, 'transport');
  assert.equal(error.fatal, true);
});

test('bug 3: an error the provider reports is cause "protocol", even when its text says "expired"', async () => {
  const { started, ws, events } = truebarClient();
  await started;
  ws.push({ type: 'ERROR', message: 'The licence for this model has expired.' });
  assert.equal(events.find((e) => e.type === 'error').cause, 'protocol');
});

test('bug 3: an error once the grant has run out is cause "expired", whatever its text', async () => {
  const { started, ws, events } = truebarClient({ expires_at: Date.now() / 1000 - 1 });
  await started;
  ws.push({ type: 'ERROR', message: 'Session terminated.' });
  assert.equal(events.find((e) => e.type === 'error').cause, 'expired');
});

test('bug 3: the session reconnects on "expired", not on a provider error that mentions expiry', async () => {
  const w = world();
  const { s, src, events } = await streaming(w);
  src.onFrame(frame());
  w.Sock.instances[0].push({ type: 'ERROR', message: 'The licence for this model has expired.' });
  await sleep(20);
  assert.equal(w.Sock.instances.length, 1, 'no reconnect for a provider error');
  const error = events.find((e) => e.type === 'error');
  assert.equal(error.cause, 'protocol');
  assert.equal(s.state, 'error');
});

test('bug 3: a transport error reconnects even when no unclean close follows it in the same task', async () => {
  const w = world();
  const { s, src, events } = await streaming(w);
  src.onFrame(frame());
  // The client reports the drop; its close event is never delivered (a browser that lost the network).
  internals.get(s).dropConnection('The connection to Truebar was lost.');
  await sleep(20);
  ready(w.Sock.instances[1]);
  await sleep(20);
  assert.ok(events.some((e) => e.type === 'reconnected'), events.map((e) => e.type).join());
  assert.ok(!events.some((e) => e.type === 'error'));
  assert.equal(w.Sock.instances[1].binaries.length, 1, 'the held frame is replayed');
});

// ---- bug 4: a drop while finishing replays what is held ----

test('bug 4: a socket dropping while Stop waits for the last finals replays the held audio to a new session', async () => {
  const w = world();
  const { s, src, events } = await streaming(w);
  for (let i = 0; i < 20; i++) src.onFrame(frame()); // 2 s, no final yet
  const stopping = s.stop();
  for (let i = 0; i < 5; i++) await tick();
  const first = w.Sock.instances[0];
  assert.ok(first.texts.some((m) => m.type === 'EOS'), 'the first session was asked to finish');
  first.serverClose(1006); // dropped before FINISHED: its last finals never came
  await sleep(20);
  assert.equal(w.Sock.instances.length, 2, 'a new session is opened');
  const second = w.Sock.instances[1];
  ready(second);
  await sleep(20);
  assert.equal(second.binaries.length, 20, 'everything no final covered is sent again');
  assert.ok(second.texts.some((m) => m.type === 'EOS'), 'and the new session is finished in turn');
  second.push(finalSegment('tail', 0, 2000));
  second.push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.ok(events.some((e) => e.type === 'final' && e.text === 'tail'), 'the tail arrives before stop() resolves');
  assert.ok(!events.some((e) => e.type === 'error'));
});

test('bug 1: after a reconnect a held-back file waits for the new session, the stall escape starts afresh', async () => {
  const w = world();
  let now = 0;
  const { s, src } = await streaming(w, { maxReplayMs: 1000, now: () => now });
  for (let i = 0; i < 10; i++) src.onFrame(frame()); // 1 s, no final: the buffer is full
  assert.equal(internals.get(s).canSend(), false, 'held back at the bound');
  now = 5_000;
  assert.equal(internals.get(s).canSend(), false);
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  now = 25_000; // the reconnect took a while
  ready(w.Sock.instances[1]);
  await sleep(20);
  assert.equal(s.state, 'streaming');
  assert.equal(internals.get(s).canSend(), false, 'the replayed audio is not pushed out before the new session had its chance');
  now = 25_000 + 15_000;
  assert.equal(internals.get(s).canSend(), true, 'the new session gets the full stall time, then the file goes on');
  s.cancel();
});
