// static/source-supervisor.js on its own: which source it opens, and how it recovers from an interruption (resume,
// reopen the default microphone, or report), with fake sources: no session, no audio, no sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SourceSupervisor } from '../../static/source-supervisor.js';

/** Let queued recoveries run (they chain on promises only). */
async function settle() {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

function fakeSource(extra = {}) {
  return { released: false, stopped: false, async stop() { this.stopped = true; await this.release(); return { frames: 0, inSamples: 0 }; }, async release() { this.released = true; }, ...extra };
}

function supervisor(config = {}, hooks = {}) {
  const reports = [];
  const losses = [];
  const opened = [];
  let over = false;
  const sup = new SourceSupervisor({
    microphone: async (o) => { const s = fakeSource({ o }); opened.push(s); return s; },
    ...config,
  }, {
    outRate: 16000, frameSamples: 1600, pacing: 'fast', onFrame: () => {}, onLevel: () => {}, canSend: () => true,
    over: () => over, report: (e) => reports.push(e), lost: (message, err) => losses.push([message, err]), ...hooks,
  });
  return { sup, reports, losses, opened, end: () => { over = true; } };
}

test('open(): a caller source (a file) gets the grant\'s rate, frame size, pacing and the backpressure hook', async () => {
  const seen = [];
  const { sup } = supervisor({ create: async (o) => { seen.push(o); return fakeSource(); } });
  const capture = await sup.open();
  assert.equal(sup.capture, null, 'not live until used');
  sup.use(capture);
  assert.equal(sup.capture, capture);
  assert.deepEqual([seen[0].outRate, seen[0].frameSamples, seen[0].pacing, seen[0].canSend()], [16000, 1600, 'fast', true]);
});

test('an unplugged microphone is released and the default one opened in its place', async () => {
  const { sup, reports, opened } = supervisor({ deviceId: 'usb-mic' });
  sup.use(await sup.open());
  assert.equal(opened[0].o.deviceId, 'usb-mic');
  opened[0].o.onInterrupted('The microphone was disconnected.', 'ended'); // as capture.js reports it
  await settle();
  // Flushed, not only released: the audio the worklet held when the device went goes out first (a review found a
  // switch lost up to a frame of the speech just before it).
  assert.equal(opened[0].stopped, true);
  assert.equal(opened[0].released, true);
  assert.equal(opened[1].o.deviceId, undefined, 'the system default');
  assert.equal(sup.capture, opened[1]);
  assert.deepEqual(reports.map((r) => [r.code, r.recovered]), [['device_switched', true]]);
});

test('a suspended context is resumed, not reopened', async () => {
  const context = { currentTime: 0, state: 'suspended', async resume() { this.state = 'running'; } };
  const { sup, reports, opened } = supervisor({ microphone: async (o) => { const s = fakeSource({ o, context }); opened.push(s); return s; } });
  sup.use(await sup.open());
  await sup.interrupted('Audio processing is suspended.', 'suspended');
  assert.equal(opened.length, 1);
  assert.deepEqual(reports.map((r) => r.code), ['resumed']);
});

test('a suspended context that will not resume is flushed before the default microphone takes its place', async () => {
  // Its worklet still answers a flush (playwright/test_capture_suspended.py): the audio it held goes out first.
  const context = { currentTime: 0, state: 'suspended', async resume() { throw new Error('not allowed'); } };
  const { sup, reports, opened } = supervisor({ microphone: async (o) => { const s = fakeSource({ o, context }); opened.push(s); return s; } });
  sup.use(await sup.open());
  await sup.interrupted('Audio processing is suspended.', 'suspended');
  assert.equal(opened[0].stopped, true, 'flushed');
  assert.equal(opened.length, 2);
  assert.deepEqual(reports.map((r) => [r.code, r.recovered]), [['device_switched', true]]);
});

test('an interrupted (iOS) context that will not resume is released, not flushed', async () => {
  const context = { currentTime: 0, state: 'interrupted', async resume() { throw new Error('not allowed'); } };
  const { sup, opened } = supervisor({ microphone: async (o) => { const s = fakeSource({ o, context }); opened.push(s); return s; } });
  sup.use(await sup.open());
  await sup.interrupted('Audio processing was interrupted.', 'interrupted');
  assert.deepEqual([opened[0].stopped, opened[0].released, opened.length], [false, true, 2]);
});

test('a file is never reopened: its interruption is reported', async () => {
  const { sup, reports } = supervisor({ create: async () => fakeSource() });
  sup.use(await sup.open());
  await sup.interrupted('The file could not be read.', 'ended');
  assert.deepEqual(reports.map((r) => [r.code, r.recovered]), [['source_interrupted', false]]);
});

test('no microphone left: reported lost, and the session is told with the cause', async () => {
  let n = 0;
  const denied = Object.assign(new Error('Permission denied.'), { code: 'denied' });
  const { sup, reports, losses } = supervisor({ microphone: async () => { if (n++) throw denied; return fakeSource(); } });
  sup.use(await sup.open());
  await sup.interrupted('The microphone was disconnected.', 'ended');
  assert.deepEqual(reports.map((r) => r.code), ['source_lost']);
  assert.deepEqual(losses, [['The microphone was disconnected. Permission denied.', denied]]);
});

test('a Stop or Cancel while the unplugged microphone flushes opens no new one', async () => {
  // The flush may take up to 2 s; a microphone opened after the session ended lit the indicator (and might prompt).
  let finishFlush;
  const { sup, reports, opened, end } = supervisor();
  sup.use(await sup.open());
  opened[0].stop = () => new Promise((resolve) => { finishFlush = resolve; });
  const recovering = sup.interrupted('The microphone was disconnected.', 'ended');
  await settle();
  assert.ok(finishFlush, 'the old capture is flushing');
  end(); // the user cancels meanwhile
  sup.release();
  finishFlush({ frames: 0, inSamples: 0 });
  await recovering;
  assert.equal(opened.length, 1, 'no microphone opened after the session was over');
  assert.deepEqual(reports, []);
});

test('a worklet that failed is released, not reopened: the source is lost and the session told', async () => {
  // Reopening would build the same worklet with the same options, to fail again (and again: each new one reports).
  const { sup, reports, losses, opened } = supervisor();
  sup.use(await sup.open());
  opened[0].o.onInterrupted('Audio processing failed.', 'failed'); // as capture.js reports a processorerror
  await settle();
  assert.equal(opened.length, 1, 'no microphone opened again');
  assert.equal(opened[0].released, true);
  assert.equal(opened[0].stopped, false, 'not flushed: a failed worklet would never answer');
  assert.equal(sup.capture, null);
  assert.deepEqual(reports.map((r) => [r.code, r.recovered, r.message]), [['source_lost', false, 'Audio processing failed.']]);
  assert.equal(losses.length, 1);
  assert.equal(losses[0][0], 'Audio processing failed.');
});

test('a failed worklet whose release() rejects is still reported lost: the session is not left streaming with no source', async () => {
  const { sup, reports, losses } = supervisor({
    microphone: async (o) => fakeSource({ o, async release() { throw new Error('the context would not close'); } }),
  });
  const capture = await sup.open();
  sup.use(capture);
  capture.o.onInterrupted('Audio processing failed.', 'failed');
  await settle();
  assert.equal(sup.capture, null, 'the failed source is let go of all the same');
  assert.deepEqual(reports.map((r) => [r.code, r.recovered]), [['source_lost', false]]);
  assert.equal(losses.length, 1, 'the session is told');
  assert.equal(losses[0][0], 'Audio processing failed.');
});

test('a notice from a replaced source, or while the session ends, changes nothing', async () => {
  const { sup, reports, opened, end } = supervisor();
  sup.use(await sup.open());
  const stale = opened[0].o.onInterrupted;
  await sup.interrupted('gone', 'ended'); // replaced by opened[1]
  stale('gone again', 'ended');
  await settle();
  assert.equal(opened.length, 2, 'the old source\'s second notice is stale');
  end();
  await sup.interrupted('gone', 'ended');
  assert.equal(opened.length, 2);
  assert.equal(reports.length, 1);
});
