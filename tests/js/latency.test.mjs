// Latency metrics on the audio clock: percentiles on known inputs and scripted sessions with known answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LatencyTracker, percentile } from '../../static/latency.js';

const BLOCK_MS = 20;
const LOUD = 0.2;
const QUIET = 0.001;

/**
 * Feed levels block by block from `fromMs` to `toMs` (exclusive), loud inside any of `speech` ([start, end] in
 * ms, inclusive), and let `events` (sorted by time) arrive at their audio time.
 * @param {LatencyTracker} tracker
 * @param {{fromMs?: number, toMs: number, speech: [number, number][],
 *          events?: {atMs: number, type: 'partial'|'final',
 *                    startMs?: number|null, endMs?: number|null}[]}} script
 */
function run(tracker, { fromMs = 0, toMs, speech, events = [] }) {
  const queue = [...events];
  for (let t = fromMs; t < toMs; t += BLOCK_MS) {
    tracker.onAudio(t);
    while (queue.length && queue[0].atMs <= t) {
      const { atMs, type, ...event } = /** @type {typeof events[number]} */ (queue.shift());
      if (type === 'partial') tracker.onPartial(event, atMs);
      else tracker.onFinal(event, atMs);
    }
    const loud = speech.some(([a, b]) => t >= a && t <= b);
    tracker.onLevel(loud ? LOUD : QUIET, t);
  }
  assert.equal(queue.length, 0, 'script ran past its events');
}

test('percentile is nearest-rank: always one of the values', () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  const copy = [...values];
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 95), 95);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 50.5), 51);
  assert.deepEqual(values, copy, 'input not reordered');
  assert.equal(percentile([7], 95), 7);
  assert.equal(percentile([3, 1, 2], 50), 2);
  assert.equal(percentile([10, 20], 50), 10);
  assert.equal(percentile([10, 20], 51), 20);
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([NaN, Infinity, 4], 95), 4);
  assert.throws(() => percentile([1], 101), RangeError);
  assert.throws(() => percentile([1], NaN), RangeError);
});

test('percentile agrees with the definition on random data', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 50; trial++) {
    const values = Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.round(rand() * 1000));
    for (const p of [1, 25, 50, 90, 95, 99]) {
      const v = /** @type {number} */ (percentile(values, p));
      const atOrBelow = values.filter((x) => x <= v).length;
      const below = values.filter((x) => x < v).length;
      // Smallest value with at least p % of the data at or below it.
      assert.ok(atOrBelow / values.length >= p / 100, `p${p} of ${values}`);
      assert.ok(below / values.length < p / 100, `p${p} of ${values}`);
    }
  }
});

test('first interim from the detected onset, final lag from the detected end (no provider times)', () => {
  const tracker = new LatencyTracker({ threshold: 0.05, hangoverMs: 300 });
  run(tracker, {
    toMs: 4000,
    speech: [[1000, 2500]],
    events: [
      { atMs: 1400, type: 'partial', startMs: null, endMs: null },
      { atMs: 1600, type: 'partial', startMs: null, endMs: null },
      { atMs: 3200, type: 'final', startMs: null, endMs: null },
    ],
  });
  const { firstInterim, finalLag } = tracker.stats();
  assert.deepEqual(firstInterim, { count: 1, p50: 400, p95: 400, last: 400, rejected: 0 });
  // The last loud block is at 2500; the hangover only confirms the end later, the latency counts from 2500.
  assert.deepEqual(finalLag, { count: 1, p50: 700, p95: 700, last: 700, rejected: 0 });
});

test('provider times win over the detector', () => {
  const tracker = new LatencyTracker();
  run(tracker, {
    toMs: 3000,
    speech: [[1000, 2000]],
    events: [
      { atMs: 1300, type: 'partial', startMs: 960, endMs: 1200 },
      { atMs: 2500, type: 'final', startMs: 960, endMs: 2100 },
    ],
  });
  const { firstInterim, finalLag } = tracker.stats();
  assert.equal(firstInterim.last, 1300 - 960);
  assert.equal(finalLag.last, 2500 - 2100);
});

test('a dip shorter than the hangover does not start a new utterance', () => {
  const tracker = new LatencyTracker({ hangoverMs: 400 });
  run(tracker, {
    toMs: 2500,
    speech: [[1000, 1400], [1700, 2000]],
    events: [{ atMs: 1800, type: 'partial' }],
  });
  assert.equal(tracker.stats().firstInterim.last, 800);
});

test('each utterance is measured once, from its own onset', () => {
  const tracker = new LatencyTracker({ hangoverMs: 300 });
  run(tracker, {
    toMs: 9000,
    // The second utterance starts before the first one's final arrives (Wiro waits for a pause).
    speech: [[1000, 2000], [2600, 4000], [7000, 8000]],
    events: [
      { atMs: 1500, type: 'partial' },
      { atMs: 2800, type: 'final' },
      { atMs: 2900, type: 'partial' },
      { atMs: 3300, type: 'partial' },
      { atMs: 5000, type: 'final' },
      // A partial with no speech detected since the last final: no onset to measure from.
      { atMs: 6000, type: 'partial' },
      { atMs: 6500, type: 'final', endMs: null },
      { atMs: 7250, type: 'partial' },
      { atMs: 8800, type: 'final' },
    ],
  });
  const { firstInterim, finalLag } = tracker.stats();
  assert.deepEqual(firstInterim, { count: 3, p50: 300, p95: 500, last: 250, rejected: 0 });
  // Lags: 2800-2000, 5000-4000, 8800-8000; the final at 6500 had no end to measure from.
  assert.deepEqual(finalLag, { count: 3, p50: 800, p95: 1000, last: 800, rejected: 0 });
});

test('negative and absurd samples are rejected and counted, not averaged in', () => {
  const tracker = new LatencyTracker({ maxLatencyMs: 10_000 });
  tracker.onAudio(5000);
  tracker.onPartial({ startMs: 6000, endMs: null }); // arrives "before" its speech: clocks disagree
  tracker.onFinal({ startMs: 0, endMs: 5200 });
  tracker.onAudio(60_000);
  tracker.onPartial({ startMs: 100, endMs: null }); // 59.9 s: a missed boundary, not a latency
  tracker.onFinal({ startMs: 100, endMs: 58_000 });
  tracker.onPartial({ startMs: Number.NaN, endMs: null }); // no usable time and no onset: no sample at all
  const { firstInterim, finalLag } = tracker.stats();
  assert.deepEqual(firstInterim, { count: 0, p50: null, p95: null, last: null, rejected: 2 });
  assert.deepEqual(finalLag, { count: 1, p50: 2000, p95: 2000, last: 2000, rejected: 1 });
});

test('the audio clock only moves forward and defaults the event times', () => {
  const tracker = new LatencyTracker();
  tracker.onAudio(3000);
  tracker.onAudio(2000);
  tracker.onAudio(Number.NaN);
  assert.equal(tracker.audioMs, 3000);
  tracker.onPartial({ startMs: 2200, endMs: null });
  assert.equal(tracker.stats().firstInterim.last, 800);
  tracker.reset();
  assert.equal(tracker.audioMs, 0);
  assert.equal(tracker.stats().firstInterim.count, 0);
});
