// static/page/controller.js under Node: the page's logic with the real Session, provider clients and replay
// buffer, the provider sockets and /api/sessions as doubles, and a view that records what it is told to show.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RunController, pageStatus, startFromGesture } from '../../static/page/controller.js';
import { Session } from '../../static/session.js';
import { toJson } from '../../static/export.js';
import { frame, ready, sleep, source, tick, world } from './support/session-fakes.mjs';

Math.random = () => 0; // backoff jitter: no wait

/** A PageView that records every call. */
function recordingView() {
  const calls = [];
  const view = new Proxy({}, {
    get: (_, name) => (...args) => { calls.push([name, ...args]); },
  });
  return {
    view,
    calls,
    of: (name) => calls.filter((c) => c[0] === name).map((c) => c.slice(1)),
    states: () => calls.filter((c) => c[0] === 'showState').map((c) => (c[2] ? `${c[1]}: ${c[2]}` : c[1])),
  };
}

function setup(w, { src = source(), ...extra } = {}) {
  const rec = recordingView();
  const sessions = [];
  const controller = new RunController({
    view: rec.view,
    createSession: (options) => {
      const s = new Session({
        ...options,
        clientOptions: { WebSocketImpl: w.Sock },
        createSource: options.createSource ?? (async (o) => { src.onFrame = o.onFrame; return src; }),
      });
      sessions.push({ s, options });
      return s;
    },
    startFileSource: async () => { throw new Error('no files here'); },
    now: () => 0,
    date: () => new Date('2026-01-02T03:04:05Z'),
    ...extra,
  });
  return { controller, rec, sessions, src };
}

const request = { provider: 'truebar', providerLabel: 'Truebar' };

async function started(w, controller, req = request) {
  const running = controller.start(req);
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances.at(-1), req.provider === 'wiro' ? 'wiro' : 'truebar');
  await running;
}

test('the state line follows the session alone: a reconnect is not overwritten by the new socket connecting', async () => {
  const w = world();
  const { controller, rec, src } = setup(w);
  await started(w, controller);
  src.onFrame(frame());
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  ready(w.Sock.instances[1]);
  await sleep(20);
  const stopping = controller.stop();
  await tick();
  w.Sock.instances[1].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.deepEqual(rec.states(), [
    'starting', 'connecting', 'streaming: Truebar',
    'reconnecting: attempt 1; 0.1 s of audio held',
    'streaming: Truebar', 'finishing: waiting for the last words from Truebar (0 s, at most 30 s)', 'idle',
  ]);
  assert.deepEqual(rec.of('setRunning'), [[true], [false]]);
  assert.equal(controller.running, false);
});

test('a reconnect that lost audio says so; one that lost nothing says that', async () => {
  for (const [frames, expected] of [[1, /nothing was lost/], [400, /10\.0 s could not be kept/]]) {
    const w = world();
    const { controller, rec, src } = setup(w);
    await started(w, controller);
    for (let i = 0; i < frames; i++) src.onFrame(frame());
    w.Sock.instances[0].serverClose(1006);
    await sleep(20);
    ready(w.Sock.instances[1]);
    await sleep(20);
    const warnings = rec.of('addWarning').map((a) => a[0]);
    assert.ok(warnings.some((m) => /^Reconnected/.test(m) && expected.test(m)), warnings.join(' | '));
    controller.cancel();
  }
});

test('the onPartial hook sees each interim as the page shows it (shared captions publish them)', async () => {
  const w = world();
  const { controller, src } = setup(w);
  const partials = [];
  controller.listen({ onPartial: (text, run) => partials.push([text, run.mode]) });
  await started(w, controller);
  for (let i = 0; i < 10; i++) src.onFrame(frame());
  w.Sock.instances[0].push({
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: false, startTimeMs: 0, endTimeMs: 300, tokens: [{ text: 'hel', startOffsetMs: 0, endOffsetMs: 300 }] },
  });
  await tick();
  assert.deepEqual(partials, [['hel', 'mic']]);
  controller.cancel();
});

test('finals land on the transcript clock, recordings run on, and the hooks see runs start, finals and ends', async () => {
  const w = world();
  const { controller, src } = setup(w);
  const seen = [];
  controller.listen({
    onRunStart: (run) => seen.push(['start', run.mode]),
    onFinal: (segment) => seen.push(['final', segment.text, segment.startMs]),
    onRunEnd: (_run, outcome) => seen.push(['end', outcome]),
  });
  await started(w, controller);
  for (let i = 0; i < 20; i++) src.onFrame(frame()); // 2 s
  const finalSegment = {
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: true, startTimeMs: 500, endTimeMs: 900, tokens: [{ text: 'hello', startOffsetMs: 0, endOffsetMs: 400 }] },
  };
  w.Sock.instances[0].push(finalSegment);
  let stopping = controller.stop();
  await tick();
  w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  await started(w, controller);
  w.Sock.instances[1].push(finalSegment);
  stopping = controller.stop();
  await tick();
  w.Sock.instances[1].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.deepEqual(seen, [
    ['start', 'mic'], ['final', 'hello', 500], ['end', 'stopped'],
    ['start', 'mic'], ['final', 'hello', 2500], ['end', 'stopped'],
  ]);
  assert.deepEqual(controller.segments.map((s) => [s.startMs, s.words[0].startMs, s.estimated]), [[500, 500, false], [2500, 2500, false]]);
  assert.equal(controller.exportMeta().durationMs, 2900);
});

test('Wiro finals are marked estimated: the capability, not the provider name, decides', async () => {
  const w = world('wiro');
  const { controller, src } = setup(w);
  await started(w, controller, { provider: 'wiro', providerLabel: 'Wiro' });
  src.onFrame(frame());
  w.Sock.instances[0].push({ type: 'task_output', message: 'TRANSCRIPT_USER:hello there' });
  w.Sock.instances[0].push({ type: 'task_stream_end' });
  assert.equal(controller.segments.length, 1);
  assert.equal(controller.segments[0].estimated, true);
  controller.cancel();
});

test('a failed start shows why and ends the run in the error state', async () => {
  const w = world();
  const { controller, rec } = setup(w, {});
  const running = controller.start(request);
  for (let i = 0; i < 5; i++) await tick();
  w.Sock.instances[0].open();
  w.Sock.instances[0].push({ type: 'ERROR', message: 'Unknown tag' });
  await running;
  assert.equal(rec.states().at(-1), 'error');
  assert.match(rec.of('showError').at(-1)[0], /Unknown tag/);
  assert.equal(controller.running, false);
});

test('Safari-safe start: the AudioContext is made and resumed inside the gesture, before any await, and closed at the end', async () => {
  const w = world();
  const order = [];
  const { controller, sessions } = setup(w);
  const context = {
    state: 'suspended',
    resume: () => { order.push('resume'); return Promise.resolve(); },
    close: () => { order.push('close'); context.state = 'closed'; return Promise.resolve(); },
  };
  const realFetch = globalThis.fetch;
  globalThis.fetch = (...args) => { order.push('fetch'); return realFetch(...args); };
  try {
    const running = startFromGesture(controller, request, () => {
      order.push('create');
      context.resume();
      return context;
    });
    // Synchronously, before the returned promise could have awaited anything:
    assert.deepEqual(order, ['create', 'resume', 'fetch']);
    assert.ok(!order.includes('close'));
    assert.equal(sessions[0].options.audioContext, context, 'the session is handed the context');
    for (let i = 0; i < 5; i++) await tick();
    ready(w.Sock.instances[0]);
    await running;
    controller.cancel();
    assert.ok(order.includes('close'), 'the page closes the context it made when the run ends');
  } finally {
    globalThis.fetch = realFetch;
  }
  // A file needs no audio context.
  let made = 0;
  const fileRun = startFromGesture(controller, { ...request, file: { name: 'a.wav' } }, () => { made += 1; return context; });
  await fileRun;
  assert.equal(made, 0);
});

test('pageStatus covers every session state', () => {
  const run = { mode: 'file', label: 'transcribing a.wav', fileName: 'a.wav' };
  assert.deepEqual(pageStatus('starting', {}, run), { state: 'starting', detail: 'decoding a.wav' });
  assert.deepEqual(pageStatus('reconnecting', { attempt: 3, delayMs: 4000, bufferedMs: 2500 }, run),
    { state: 'reconnecting', detail: 'attempt 3 in 4 s; 2.5 s of audio held' });
  const mic = { mode: 'mic', label: 'Offline engine', engineLabel: 'Offline engine' };
  // A quick start says nothing more; a slow one says what it waits for and for how long.
  assert.deepEqual(pageStatus('starting', {}, mic, { elapsedMs: 400 }), { state: 'starting', detail: undefined });
  assert.deepEqual(pageStatus('starting', {}, mic, { elapsedMs: 2400 }),
    { state: 'starting', detail: 'opening the microphone, 2 s' });
  // Long enough that the browser's prompt is most likely unanswered (Firefox's may stay pending for good): how to go on.
  assert.deepEqual(pageStatus('starting', {}, mic, { elapsedMs: 60_000 }), {
    state: 'starting',
    detail: "opening the microphone, 60 s: answer the browser's prompt (or its microphone icon in the address bar), or Cancel",
  });
  assert.deepEqual(pageStatus('connecting', {}, mic, { elapsedMs: 3500 }),
    { state: 'connecting', detail: 'waiting for Offline engine to get ready, 3 s' });
  // Stop always says what it waits for and the most it will wait.
  assert.deepEqual(pageStatus('stopping', {}, mic, { elapsedMs: 4200, finishMaxMs: 10000 }),
    { state: 'finishing', detail: 'waiting for the last words from Offline engine (4 s, at most 10 s)' });
  for (const s of ['stopped', 'cancelled', 'idle']) assert.equal(pageStatus(s, {}, run).state, 'idle');
  assert.equal(pageStatus('error', {}, run).state, 'error');
});

test('a file that fails while it is read ends the run in the error state, with its message', async () => {
  const w = world();
  let fileOptions;
  const { controller, rec } = setup(w, {
    startFileSource: async (_file, o) => { fileOptions = o; return source(); },
  });
  const running = controller.start({ ...request, file: { name: 'talk.wav' } });
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await running;
  assert.equal(rec.states()[0], 'starting: decoding talk.wav');
  fileOptions.onError(new Error('The file could not be decoded.'));
  assert.equal(rec.states().at(-1), 'error');
  assert.equal(rec.of('showError').at(-1)[0], 'The file could not be decoded.');
  assert.equal(controller.lastRun.outcome, 'error');
  assert.equal(controller.lastRun.session.state, 'cancelled', 'the session is abandoned');
});

test('a restored transcript can be exported and cleared; the next Start begins a fresh one', async () => {
  const w = world();
  const { controller, rec, src } = setup(w);
  const cleared = [];
  controller.listen({ onClear: () => cleared.push('clear') });
  const saved = [
    { text: 'first words', startMs: 0, endMs: 900, words: [], estimated: false },
    { text: '  ', startMs: 900, endMs: 950, words: [], estimated: false },
    { text: 'more words', startMs: 1000, endMs: 2000, words: [], estimated: false },
  ];
  assert.equal(controller.restore({ segments: saved, endMs: 2500, title: 'interrupted talk' }), true);
  assert.deepEqual(rec.of('addFinal').map(([s, approx]) => [s.text, approx]), [['first words', null], ['more words', null]]);
  assert.deepEqual(controller.segments.map((s) => s.text), ['first words', 'more words']);
  assert.deepEqual(controller.exportMeta().title, 'interrupted talk');
  assert.equal(controller.exportMeta().durationMs, 2500);
  assert.deepEqual(rec.of('updateToolbar').at(-1), [true, false]);
  // Not over a transcript already on the page.
  assert.equal(controller.restore({ segments: saved, endMs: 1, title: 'x' }), false);
  assert.equal(controller.title, 'interrupted talk');

  // Start: the restored transcript is set aside without a Clear (its saved copy stays), the new one starts at 0.
  await started(w, controller);
  assert.deepEqual(cleared, []);
  assert.deepEqual(controller.segments, []);
  assert.equal(controller.title, 'transcript-2026-01-02-03-04');
  assert.deepEqual(rec.of('addBreak'), [], 'no "new recording" divider: this is a new transcript');
  assert.equal(controller.run?.offsetMs, 0);
  assert.equal(controller.restore({ segments: saved, endMs: 1, title: 'x' }), false, 'not while recording');
  src.onFrame(frame());
  controller.cancel();

  // A second Start adds to the transcript as usual (only a restored one is set aside).
  controller.restored = false;
  controller.segments.push(saved[0]);
  await started(w, controller);
  assert.equal(controller.segments.length, 1);
  controller.cancel();
  assert.equal(controller.clear(), true);
  assert.deepEqual(cleared, ['clear']);
  assert.deepEqual(controller.segments, []);
});

test('the export names the engine that made the transcript, not the one chosen since', async () => {
  const w = world();
  const { controller } = setup(w);
  await started(w, controller);
  controller.onEvent(controller.run, { type: 'final', text: 'heard by truebar', startMs: 0, endMs: 900, words: [], timing: 'provider', atMs: 900 });
  controller.cancel();
  assert.equal(controller.exportMeta().provider, 'truebar');
  // A recording with another engine that brings back no words adds nothing of its own.
  await started(w, controller, { provider: 'wiro', providerLabel: 'Wiro' });
  controller.cancel();
  assert.equal(controller.exportMeta().provider, 'truebar');
  assert.deepEqual(controller.engines, ['truebar']);
  assert.equal(controller.clear(), true);
  assert.equal(controller.exportMeta().provider, '', 'an empty transcript was made by no engine');
  const saved = [{ text: 'saved words', startMs: 0, endMs: 900, words: [], estimated: false }];
  assert.equal(controller.restore({ segments: saved, endMs: 900, title: 'saved', engines: ['local', 'truebar'] }), true);
  assert.equal(controller.exportMeta().provider, 'truebar', 'as the history exports the saved session');
});

test('Stop pressed while a finished file is already being stopped waits for the last finals, no error', async () => {
  const w = world();
  let fileOptions;
  const { controller, rec } = setup(w, {
    startFileSource: async (_file, o) => { fileOptions = o; return source(); },
  });
  const running = controller.start({ ...request, file: { name: 'talk.wav' } });
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await running;
  fileOptions.onFrame(frame());
  // The file ran out: the controller stops the run itself, and the Stop button is still enabled meanwhile.
  fileOptions.onEnded();
  for (let i = 0; i < 5; i++) await tick();
  const pressed = controller.stop();
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(rec.of('showError').filter(([m]) => m), [], 'a second Stop is not an error');
  const ws = w.Sock.instances[0];
  ws.push({
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: true, startTimeMs: 0, endTimeMs: 100, tokens: [{ text: 'last', startOffsetMs: 0, endOffsetMs: 100 }] },
  });
  ws.push({ type: 'STATUS', status: 'FINISHED' });
  await pressed;
  assert.deepEqual(controller.segments.map((s) => s.text), ['last'], 'the last final reaches the transcript');
  assert.equal(controller.lastRun.outcome, 'stopped');
});

test('loss during one outage is one warning that grows, not a new live-region line per report', async () => {
  const w = world();
  const { controller, rec } = setup(w);
  await started(w, controller);
  const run = controller.run;
  for (const droppedMs of [100, 5100, 9000]) controller.onEvent(run, { type: 'dropped', droppedMs });
  controller.onEvent(run, { type: 'reconnected', replayedMs: 1000, droppedMs: 9000, attempt: 1 });
  const warnings = rec.of('addWarning');
  assert.equal(warnings.length, 4);
  assert.ok(warnings.every(([, , key]) => key === 'loss'), JSON.stringify(warnings));
  assert.match(warnings.at(-1)[0], /9\.0 s could not be kept/);
  controller.cancel();
});

test('an empty final (silence) closes the interim but adds no line and no latency sample', async () => {
  const w = world();
  const { controller, rec } = setup(w);
  await started(w, controller);
  const run = controller.run;
  controller.onEvent(run, { type: 'final', text: '', startMs: 0, endMs: 5000, words: [], atMs: 5000 });
  assert.deepEqual(controller.segments, []);
  assert.equal(run.latency.stats().finalLag.count, 0);
  controller.cancel();
});

test('an interim ended by an empty final: the hooks are told the line is gone (saved words, shared captions)', async () => {
  const w = world();
  const { controller } = setup(w);
  const partials = [];
  controller.listen({ onPartial: (text) => partials.push(text) });
  await started(w, controller);
  const run = controller.run;
  controller.onEvent(run, { type: 'final', text: '', startMs: null, endMs: null, words: [], atMs: 500 });
  assert.deepEqual(partials, [], 'no line was shown: nothing to take back');
  controller.onEvent(run, { type: 'partial', text: 'uh the', startMs: null, endMs: null, words: [], atMs: 1000 });
  controller.onEvent(run, { type: 'final', text: '', startMs: null, endMs: null, words: [], atMs: 1500 });
  assert.deepEqual(partials, ['uh the', '']);
  controller.onEvent(run, { type: 'partial', text: 'hello', startMs: null, endMs: null, words: [], atMs: 2000 });
  controller.onEvent(run, { type: 'final', text: 'Hello.', startMs: null, endMs: null, words: [], atMs: 2500 });
  assert.deepEqual(partials, ['uh the', '', 'hello'], 'a final with words replaces the line itself');
  controller.cancel();
});

test('a slow start and a long Stop count their seconds; audio with no words back says they are on their way', async () => {
  const w = world();
  let clock = 0;
  const { controller, rec, src } = setup(w, { now: () => clock });
  const running = controller.start(request);
  for (let i = 0; i < 5; i++) await tick();
  clock = 2500;
  controller.renderState();
  assert.match(rec.states().at(-1), /^connecting: waiting for Truebar to get ready, 2 s$/);
  ready(w.Sock.instances[0]);
  await running;
  // Sound, and nothing back for NOTHING_BACK_MS: said once words are late, cleared when they come.
  const loud = { rms: 0.1, peak: 0.3, silent: false };
  controller.onLevel(controller.run, loud);
  clock += 1000;
  controller.onLevel(controller.run, loud);
  assert.deepEqual(rec.of('showWaiting').filter((a) => a[0]), []);
  clock += 600;
  controller.onLevel(controller.run, loud);
  assert.match(rec.of('showWaiting').at(-1)[0], /Hearing you: audio is reaching Truebar; the first words are on their way/);
  src.onFrame(frame());
  w.Sock.instances[0].push({ type: 'TEXT_SEGMENT', textSegment: { isFinal: false, tokens: [{ text: 'hello' }] } });
  await tick();
  assert.equal(rec.of('showWaiting').at(-1)[0], '');
  const stopping = controller.stop();
  await tick();
  clock += 3000;
  controller.renderState();
  assert.equal(rec.states().at(-1), 'finishing: waiting for the last words from Truebar (3 s, at most 30 s)');
  w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.equal(controller.waitTimer, null, 'the timer stops with the run');
});

test("the page keeps the adapter's timing provenance: an estimated final is marked, and its export says so", async () => {
  const w = world();
  const { controller } = setup(w);
  await started(w, controller);
  const run = controller.run;
  controller.onEvent(run, { type: 'final', text: 'exact', startMs: 0, endMs: 900, words: [], timing: 'provider', atMs: 900 });
  controller.onEvent(run, { type: 'final', text: 'guessed', startMs: 1000, endMs: 2000, words: [], timing: 'estimated', atMs: 2000 });
  assert.deepEqual(controller.segments.map((s) => [s.text, s.estimated]), [['exact', false], ['guessed', true]]);
  assert.equal(run.latency.stats().finalLag.count, 1, "latency is measured against the provider's times only");
  const json = JSON.parse(toJson(controller.segments));
  assert.deepEqual(json.segments.map((s) => s.estimated), [false, true]);
  controller.cancel();
});

test('words on screen that no final replaced stay as a rough line when the run fails; Cancel lets them go', async () => {
  const partial = (text) => ({
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: false, startTimeMs: 0, endTimeMs: 300, tokens: [{ text, startOffsetMs: 0, endOffsetMs: 300 }] },
  });
  for (const ending of ['error', 'cancelled']) {
    const w = world();
    const { controller, src, rec } = setup(w);
    const kept = [];
    controller.listen({ onFinal: (segment) => kept.push(segment) });
    await started(w, controller);
    for (let i = 0; i < 10; i++) src.onFrame(frame());
    w.Sock.instances[0].push(partial('go forward ten meters'));
    await tick();
    if (ending === 'error') controller.fail(controller.run, 'The file could not be read.');
    else controller.cancel();
    await tick();
    if (ending === 'error') {
      assert.deepEqual(kept.map((s) => [s.text, s.rough, s.estimated]), [['Go forward ten meters.', true, true]]);
      assert.deepEqual(controller.segments, kept);
      assert.equal(rec.of('addFinal').at(-1)[0].rough, true, 'shown with its rough mark');
    } else {
      assert.deepEqual(kept, [], 'Cancel: the user let them go');
    }
    assert.deepEqual(rec.of('setInterim').at(-1), ['']);
  }
});

test('Cancel with words on screen: the hooks are told the line is gone before the run ends (shared captions)', async () => {
  const w = world();
  const { controller, src } = setup(w);
  const heard = [];
  controller.listen({ onPartial: (text) => heard.push(['partial', text]), onRunEnd: (_run, outcome) => heard.push(['end', outcome]) });
  await started(w, controller);
  for (let i = 0; i < 10; i++) src.onFrame(frame());
  w.Sock.instances[0].push({
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: false, startTimeMs: 0, endTimeMs: 300, tokens: [{ text: 'my password is', startOffsetMs: 0, endOffsetMs: 300 }] },
  });
  await tick();
  controller.cancel();
  await tick();
  assert.deepEqual(heard, [['partial', 'my password is'], ['partial', ''], ['end', 'cancelled']]);
  // With nothing on screen there is no line to take back.
  heard.length = 0;
  await started(w, controller);
  controller.cancel();
  await tick();
  assert.deepEqual(heard, [['end', 'cancelled']]);
});

test('an interim replaced by its final leaves nothing behind at the end of the run', async () => {
  const w = world();
  const { controller, src } = setup(w);
  await started(w, controller);
  for (let i = 0; i < 10; i++) src.onFrame(frame());
  w.Sock.instances[0].push({
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: false, startTimeMs: 0, endTimeMs: 300, tokens: [{ text: 'hel', startOffsetMs: 0, endOffsetMs: 300 }] },
  });
  w.Sock.instances[0].push({
    type: 'TEXT_SEGMENT',
    textSegment: { isFinal: true, startTimeMs: 0, endTimeMs: 400, tokens: [{ text: 'hello', startOffsetMs: 0, endOffsetMs: 400 }] },
  });
  const stopping = controller.stop();
  await tick();
  w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.deepEqual(controller.segments.map((s) => [s.text, s.rough]), [['hello', undefined]]);
});
