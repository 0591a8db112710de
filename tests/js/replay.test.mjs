// Loss-free reconnect support: what is held, committed, dropped and replayed, and how times are stitched.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { OffsetClock, ReplayBuffer, backoffDelay } from '../../static/replay.js';

const RATE = 16000;
const FRAME = 1600; // 100 ms at 16 kHz

/** A frame whose every sample is its index in the stream, so order and gaps are visible in the data. */
function frame(index, length = FRAME) {
  return Int16Array.from({ length }, (_, k) => (index * 7 + k) % 32768);
}

/** @param {import('../../static/replay.js').HeldFrame[]} frames */
function assertContiguous(frames) {
  for (let i = 1; i < frames.length; i++) {
    assert.equal(frames[i].startSample, frames[i - 1].startSample + frames[i - 1].samples.length);
  }
}

test('push numbers frames by their absolute start sample and holds copies', () => {
  const buf = new ReplayBuffer({ sampleRate: RATE });
  const first = frame(0);
  assert.equal(buf.push(first), 0);
  assert.equal(buf.push(frame(1, 800)), FRAME);
  assert.equal(buf.push(new Int16Array(0)), FRAME + 800, 'empty frames are ignored');
  assert.equal(buf.push(frame(2)), FRAME + 800);
  first.fill(-1); // the caller reuses its buffer
  const held = buf.replay();
  assert.deepEqual(held.map((f) => f.startSample), [0, FRAME, FRAME + 800]);
  assert.deepEqual(held.map((f) => f.startMs), [0, 100, 150]);
  assert.deepEqual(held[0].samples, frame(0));
  assert.equal(buf.pendingMs, 250);
  assert.equal(buf.totalMs, 250);
  assert.equal(buf.droppedMs, 0);
});

test('commit forgets only frames that end at or before the committed time', () => {
  const buf = new ReplayBuffer({ sampleRate: RATE });
  for (let i = 0; i < 10; i++) buf.push(frame(i));
  assert.equal(buf.commit(250), 2, 'frames 0-100 and 100-200 ms; 200-300 straddles 250 and stays');
  assert.equal(buf.heldFromMs, 200);
  assert.equal(buf.pendingMs, 800);
  assert.equal(buf.commit(300), 1, 'a frame ending exactly at the committed time is covered');
  assert.equal(buf.commit(150), 0, 'an older commit changes nothing');
  assert.equal(buf.commit(Number.NaN), 0);
  assert.equal(buf.heldFromMs, 300);
  assert.equal(buf.commit(5000), 7);
  assert.equal(buf.pendingMs, 0);
  assert.equal(buf.heldFromMs, null);
  assert.deepEqual(buf.replay(), []);
  assert.equal(buf.push(frame(10)), 10 * FRAME, 'numbering goes on after everything was committed');
});

test('replay returns the held frames in order and keeps them until committed', () => {
  const buf = new ReplayBuffer({ sampleRate: 24000 });
  for (let i = 0; i < 6; i++) buf.push(frame(i, 4800));
  buf.commit(400); // two 200 ms frames covered by a final
  const once = buf.replay();
  const twice = buf.replay();
  assert.deepEqual(once.map((f) => f.startMs), [400, 600, 800, 1000]);
  assert.deepEqual(twice.map((f) => f.startSample), once.map((f) => f.startSample));
  assertContiguous(once);
  once.forEach((f, i) => assert.deepEqual(f.samples, frame(i + 2, 4800)));
  // Frames pushed after a replay (the new session is live) are held behind the replayed ones.
  buf.push(frame(6, 4800));
  assert.deepEqual(buf.replay().map((f) => f.startMs), [400, 600, 800, 1000, 1200]);
});

test('beyond maxMs the oldest frames are dropped and counted', () => {
  const buf = new ReplayBuffer({ sampleRate: RATE, maxMs: 1000 });
  for (let i = 0; i < 25; i++) {
    buf.push(frame(i));
    assert.ok(buf.pendingMs <= 1000, `${buf.pendingMs} ms held`);
    assert.equal(buf.pendingMs + buf.droppedMs, (i + 1) * 100, 'every pushed ms is held or counted as dropped');
  }
  assert.equal(buf.pendingMs, 1000);
  assert.equal(buf.droppedMs, 1500);
  const held = buf.replay();
  assert.deepEqual(held.map((f) => f.startMs), Array.from({ length: 10 }, (_, i) => 1500 + i * 100));
  assertContiguous(held);
  // Committing does not count as dropping.
  buf.commit(2000);
  assert.equal(buf.droppedMs, 1500);
  assert.equal(buf.pendingMs, 500);
});

test('constructor rejects a rate or bound that would break the arithmetic', () => {
  assert.throws(() => new ReplayBuffer({ sampleRate: 0 }), RangeError);
  assert.throws(() => new ReplayBuffer({ sampleRate: 16000.5 }), RangeError);
  assert.throws(() => new ReplayBuffer({ sampleRate: RATE, maxMs: -1 }), RangeError);
});

test('reconnect: replayed audio plus offset stitching puts the new session on the recording clock', () => {
  const buf = new ReplayBuffer({ sampleRate: RATE });
  const clock = new OffsetClock();
  for (let i = 0; i < 30; i++) buf.push(frame(i)); // 3 s sent to the first session
  const final1 = clock.shiftEvent({ type: 'final', text: 'one', startMs: 200, endMs: 1450, words: [] });
  assert.equal(final1.endMs, 1450, 'no offset before a reconnect');
  buf.commit(final1.endMs);
  // The socket drops; audio keeps coming while disconnected.
  for (let i = 30; i < 40; i++) buf.push(frame(i));
  const replayed = buf.replay();
  clock.startSession(replayed[0].startMs);
  assert.equal(clock.offsetMs, 1400);
  // The new session hears the replayed audio from its own time 0 and reports a word 2.1 s into it.
  const event = {
    type: 'final', text: 'two words', startMs: 50, endMs: 2300,
    words: [{ text: 'two', startMs: 50, endMs: 400 }, { text: 'words', startMs: 2100, endMs: 2300 }],
  };
  const shifted = clock.shiftEvent(event);
  assert.deepEqual(shifted, {
    type: 'final', text: 'two words', startMs: 1450, endMs: 3700,
    words: [{ text: 'two', startMs: 1450, endMs: 1800 }, { text: 'words', startMs: 3500, endMs: 3700 }],
  });
  assert.equal(event.startMs, 50, 'the original event is not modified');
  assert.equal(event.words[0].startMs, 50);
  // The sample the new session calls 2100 ms is the one the recording has at 3500 ms.
  const sessionSample = (2100 * RATE) / 1000;
  const flat = Int16Array.from(replayed.flatMap((f) => Array.from(f.samples)));
  const recordingSample = (3500 * RATE) / 1000;
  const frameIndex = Math.floor(recordingSample / FRAME);
  assert.equal(flat[sessionSample], frame(frameIndex)[recordingSample % FRAME]);
  assert.equal(clock.toRecording(null), null);
  assert.equal(clock.toRecording(undefined), undefined);
  assert.equal(clock.toRecording(0), 1400);
  assert.deepEqual(clock.shiftEvent({ type: 'partial', text: 'x', startMs: null, endMs: null }),
    { type: 'partial', text: 'x', startMs: null, endMs: null });
  assert.throws(() => clock.startSession(-5), RangeError);
});

test('backoff: full jitter under an exponential cap', () => {
  const top = () => 0.999999;
  const caps = [0, 1, 2, 3, 4, 5, 6, 10, 100, 5000].map((a) => backoffDelay(a, { random: top }) + 1);
  assert.deepEqual(caps, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000, 15000]);
  assert.equal(backoffDelay(3, { random: () => 0 }), 0);
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 2000);
  assert.equal(backoffDelay(2, { baseMs: 100, maxMs: 300, random: () => 0.5 }), 150);
  assert.equal(backoffDelay(-1, { random: () => 0.5 }), 250, 'a negative attempt counts as the first');
  assert.equal(backoffDelay(Number.NaN, { random: () => 0.5 }), 250);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(i % 8);
    assert.ok(Number.isInteger(d) && d >= 0 && d < Math.min(15000, 500 * 2 ** (i % 8)), `${d}`);
  }
});
