// static/replay-accounting.js on its own: what is held, what is lost and when that is said, the new session's clock
// and the repeat cut after a replay. No session, no sockets, no timers: the methods return the events to emit.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DROP_REPORT_STEP_MS, ReplayAccounting, UNTIMED_COMMIT_MARGIN_MS } from '../../static/replay-accounting.js';

const RATE = 16000;
const frame = () => new Int16Array(1600).fill(3); // 100 ms
const accounting = (o = {}) => new ReplayAccounting({ sampleRate: RATE, maxMs: 1000, ...o });
const final = (text, startMs, endMs) => ({ type: 'final', text, startMs, endMs, words: [] });

test('while connected, pushed-out audio is not announced; the outage announces it at once', () => {
  const a = accounting();
  for (let i = 0; i < 15; i++) assert.deepEqual(a.push(frame(), false), []);
  assert.equal(a.audioMs, 1500);
  assert.equal(a.bufferedMs, 1000);
  assert.deepEqual(a.beginOutage(), [{ type: 'dropped', droppedMs: 500 }], 'sent but never covered by a final');
  assert.deepEqual(a.beginOutage(), [], 'said once');
});

test('during an outage, loss is announced when it starts, then only in steps of DROP_REPORT_STEP_MS', () => {
  const a = accounting();
  for (let i = 0; i < 10; i++) a.push(frame(), false);
  assert.deepEqual(a.beginOutage(), []);
  const events = [];
  for (let i = 0; i < 100; i++) events.push(...a.push(frame(), true)); // 10 s more, 1 s held
  assert.deepEqual(events.map((e) => e.droppedMs), [100, 100 + DROP_REPORT_STEP_MS]);
  assert.equal(a.droppedMs, 10_000, 'the exact figure is known, announced with the reconnect or the end');
});

test('replay(): the held frames in order, the clock shifted to the first, the loss said, the gap not counted twice', () => {
  const a = accounting();
  for (let i = 0; i < 15; i++) a.push(frame(), false);
  a.beginOutage();
  const { frames, offsetMs, events } = a.replay(false);
  assert.equal(frames.length, 10);
  assert.equal(offsetMs, 500);
  assert.deepEqual(frames.map((f) => f.startMs), [500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400]);
  assert.deepEqual(events, [], 'already said when the outage began');
  const shifted = a.final(final('hello', 0, 300), true);
  assert.deepEqual([shifted.startMs, shifted.endMs], [500, 800], "the new session's times on the recording's clock");
  assert.deepEqual(a.terminalLoss(), [{ type: 'dropped', droppedMs: 500 + 700 }], 'the lost 500 ms and the 700 ms still held');
});

test('a final commits the audio it covers; an untimed one keeps a margin before its estimated end', () => {
  const timed = accounting({ maxMs: 10_000 });
  const untimed = accounting({ maxMs: 10_000 });
  for (let i = 0; i < 50; i++) { timed.push(frame(), false); untimed.push(frame(), false); }
  timed.final(final('a b', 0, 5000), true);
  untimed.final(final('a b', 0, 5000), false);
  assert.equal(timed.bufferedMs, 0);
  assert.equal(untimed.bufferedMs, UNTIMED_COMMIT_MARGIN_MS);
});

test("after a replay that may repeat, the first final's repeat of the last final words is cut, once", () => {
  const a = accounting({ maxMs: 10_000 });
  for (let i = 0; i < 30; i++) a.push(frame(), false);
  a.final(final('the weather is nice', 0, 1000), false);
  a.beginOutage();
  a.replay(true);
  assert.equal(a.partial({ type: 'partial', text: 'weather is nice to', startMs: null, endMs: null }).text, 'to');
  assert.equal(a.final(final('weather is nice today', 0, 500), false).text, 'today');
  assert.equal(a.final(final('weather is nice again', 500, 900), false).text, 'weather is nice again', 'only the first');
});

test('roomFor(): held back at the bound, let go after stallMs with no final, and a final resets the wait', () => {
  const a = accounting({ stallMs: 15_000 });
  for (let i = 0; i < 10; i++) a.push(frame(), false);
  assert.equal(a.roomFor(100, 0), false);
  assert.equal(a.roomFor(100, 14_999), false);
  assert.equal(a.roomFor(100, 15_000), true);
  a.final(final('x', 0, 100), true);
  assert.equal(a.roomFor(100, 15_001), true, 'room again');
  a.push(frame(), false);
  assert.equal(a.roomFor(100, 16_000), false, 'the wait starts afresh');
});

test('roomFor(): the stall escape lets one frame through, then the wait starts again (a fast file does not go out whole)', () => {
  const a = accounting({ stallMs: 15_000 });
  for (let i = 0; i < 10; i++) a.push(frame(), false); // the bound, no final
  let now = 0;
  while (!a.roomFor(100, now)) now += 20; // held 15 s, then the escape
  assert.equal(now, 15_000);
  a.push(frame(), false);
  let sent = 1;
  // A file at full speed polls every ms for 6 s of wall time.
  for (let t = 1; t <= 6000; t++) if (a.roomFor(100, now + t)) { a.push(frame(), false); sent += 1; }
  assert.equal(sent, 1, 'one frame per stall, not every frame until a final');
  assert.equal(a.buffer.droppedMs, 100, 'one frame pushed out of the replay buffer, not minutes');
  assert.equal(a.roomFor(100, now + 1 + 15_000), true, 'the next after another stall from the first frame held');
});
