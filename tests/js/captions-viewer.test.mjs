// static/captions/viewer.js under Node: what a viewer is told when its caption stream is refused, and what it does
// with a malformed event (nothing). A fake document, EventSource, fetch and timers; the viewer module is the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { mountViewer } from '../../static/captions/viewer.js';
import { MISSED_NOTE, endNotice } from '../../static/captions/overlay.js';
import { fakeDocument } from './support/page-fakes.mjs';
import { FakeTimers, tick } from './support/fakes.mjs';

const SHARE = 'S'.repeat(22);

class FakeEventSource {
  static CLOSED = 2;
  /** @type {FakeEventSource[]} */
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = new Map();
    FakeEventSource.instances.push(this);
  }
  addEventListener(type, fn) { this.listeners.set(type, fn); }
  close() { this.readyState = FakeEventSource.CLOSED; }
  /** An SSE event as the browser hands it to a listener: `data` is the event's text. */
  emit(type, data) {
    this.listeners.get(type)?.({ type, data });
  }
  /** The browser's answer to a refused stream (any status but 200): the error event, the source closed. */
  refuse() {
    this.readyState = FakeEventSource.CLOSED;
    this.listeners.get('error')?.({});
  }
}

/** A viewer on an active share whose status endpoint answers `status` with `body`. */
function viewer(status, body) {
  FakeEventSource.instances = [];
  globalThis.EventSource = FakeEventSource;
  const doc = fakeDocument();
  doc.body = { dataset: { share: SHARE, status: 'active' }, style: { setProperty() {} } };
  const timers = new FakeTimers();
  const win = {
    location: { search: '' },
    EventSource: FakeEventSource,
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    fetch: async () => ({ status, ok: status >= 200 && status < 300, json: async () => body }),
  };
  const mounted = mountViewer(doc, win);
  return {
    doc, timers, mounted,
    notice: () => doc.getElementById('notice').textContent,
    lines: () => doc.getElementById('lines').children.map((p) => p.textContent),
    interim: () => doc.getElementById('interim').textContent,
  };
}

test('a stream refused because the share is full says so, and tries again', async () => {
  const v = viewer(200, { status: 'active', live: true, expires_at: 0, viewers: 3, max_viewers: 3 });
  FakeEventSource.instances[0].refuse();
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(v.notice(), endNotice('full'));
  v.timers.advance(15000);
  assert.equal(FakeEventSource.instances.length, 2, 'a new stream');
});

test('a stream refused for another reason (the server unavailable) is not blamed on too many viewers', async () => {
  for (const [status, body] of [
    [503, { error: { code: 'state_unavailable', message: 'Try again shortly.' } }],
    [502, null],
    [200, { status: 'active', live: true, expires_at: 0, viewers: 1, max_viewers: 3 }],
  ]) {
    const v = viewer(status, body);
    FakeEventSource.instances[0].refuse();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(v.notice(), endNotice('offline'), `status ${status}`);
    v.timers.advance(15000);
    assert.equal(FakeEventSource.instances.length, 2, `status ${status}: tries again`);
  }
});

test('a revoked share or a gone one ends the viewer, with no retry', async () => {
  for (const [status, body, reason] of [[200, { status: 'revoked', live: false, expires_at: 0, viewers: 0, max_viewers: 3 }, 'revoked'], [404, null, 'gone']]) {
    const v = viewer(status, body);
    FakeEventSource.instances[0].refuse();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(v.notice(), endNotice(reason));
    v.timers.advance(60000);
    assert.equal(FakeEventSource.instances.length, 1, `${reason}: no new stream`);
  }
});

test("a status answer that is not a share's status (wrong types, fields missing) is an outage: neither the end nor full", async () => {
  for (const body of [
    { status: 'revoked' },
    { status: 'active', live: true, expires_at: 0, viewers: '3', max_viewers: 3 },
    { status: 'active', live: true, expires_at: 0, viewers: 3 },
    [{ status: 'revoked', live: false, expires_at: 0, viewers: 0, max_viewers: 3 }],
    'revoked',
    null,
  ]) {
    const v = viewer(200, body);
    FakeEventSource.instances[0].refuse();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(v.notice(), endNotice('offline'), JSON.stringify(body));
    v.timers.advance(15000);
    assert.equal(FakeEventSource.instances.length, 2, `${JSON.stringify(body)}: tries again`);
  }
});

/** Runs `fn` with console.warn recorded (and silenced). */
function recordingWarnings(fn) {
  const warned = [];
  const original = console.warn;
  console.warn = (...args) => warned.push(args.join(' '));
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return warned;
}

test('a malformed stream event is ignored: nothing thrown, no line added, nothing ended; counted, logged once', () => {
  const v = viewer(200, null);
  const es = FakeEventSource.instances[0];
  es.emit('state', '{"live": true}');
  es.emit('final', '{"text": "One.", "seq": 1}');
  es.emit('partial', '{"text": "two so"}');
  assert.deepEqual(v.lines(), ['One.']);
  assert.equal(v.interim(), 'two so');
  const malformed = [
    ['final', 'not json'], ['final', '{"text": "x", "seq": 1'], ['final', 'null'], ['final', '[1, 2]'], ['final', '7'],
    ['final', '{"text": "Seq missing."}'], ['final', '{"text": "Seq a word.", "seq": "two"}'],
    ['final', '{"text": "Seq null.", "seq": null}'], ['final', '{"text": "Seq fractional.", "seq": 2.5}'],
    ['final', '{"seq": 2}'], ['final', '{"text": null, "seq": 2}'], ['final', '{"text": {"a": 1}, "seq": 2}'],
    ['final', undefined], ['partial', '{}'], ['partial', '{"text": 5}'], ['partial', 'null'], ['partial', '[]'],
    ['state', '{}'], ['state', '{"live": "false"}'], ['state', 'nope'],
    ['end', '{}'], ['end', '{"reason": 1}'], ['end', '"revoked"'], ['end', '{'],
    ['gap', '{}'], ['gap', '{"from": 0, "to": 3}'], ['gap', '{"from": 5, "to": 2}'], ['gap', '{"from": "2", "to": 3}'],
  ];
  const warned = recordingWarnings(() => {
    for (const [type, data] of malformed) assert.doesNotThrow(() => es.emit(type, data), `${type} ${data}`);
  });
  assert.deepEqual(v.lines(), ['One.'], 'no line added');
  assert.equal(v.interim(), 'two so', 'the line being recognised is left as it was');
  assert.equal(v.doc.body.dataset.live, 'true', 'still live');
  assert.equal(v.notice(), '', 'no notice: nothing ended or paused');
  assert.equal(es.readyState, 0, 'the stream is not closed');
  assert.equal(v.mounted.malformed, malformed.length, 'each one counted');
  assert.equal(warned.length, 1, 'logged once');
  assert.match(warned[0], /malformed 'final' event/);
  // The numbering is not disturbed: the next final is shown, and one already seen is still dropped.
  es.emit('final', '{"text": "Two.", "seq": 2}');
  es.emit('final', '{"text": "One again.", "seq": 1}');
  assert.deepEqual(v.lines(), ['One.', 'Two.']);
  assert.equal(v.mounted.state.lastSeq, 2);
  // Well-formed control events still act.
  es.emit('state', '{"live": false}');
  assert.equal(v.notice(), endNotice('paused'));
  es.emit('end', '{"reason": "revoked"}');
  assert.equal(v.notice(), endNotice('revoked'));
  assert.equal(es.readyState, FakeEventSource.CLOSED);
});

test('while the speaker is paused an interim is not shown and the Paused notice stays', () => {
  const v = viewer(200, null);
  const es = FakeEventSource.instances[0];
  es.emit('open', '');
  // What an older server sends a viewer joining after a Cancel: the state, the log, the cancelled words.
  es.emit('state', '{"live": false}');
  es.emit('final', '{"text": "Hello.", "seq": 1}');
  es.emit('partial', '{"text": "my password is hunter2"}');
  assert.equal(v.interim(), '');
  assert.equal(v.notice(), endNotice('paused'));
  es.emit('state', '{"live": true}');
  es.emit('partial', '{"text": "and now"}');
  assert.equal(v.interim(), 'and now', 'a new recording\'s words are shown');
  assert.equal(v.notice(), '');
});

test('finals missed for good are said: the server\'s gap, or a number skipped; a new stream says where the viewer was', async () => {
  const v = viewer(503, null);
  let es = FakeEventSource.instances[0];
  assert.equal(es.url, `/api/captions/${SHARE}/stream`, 'a first stream: from the start of what is kept');
  es.emit('state', '{"live": true}');
  es.emit('final', '{"text": "Ten.", "seq": 10}');
  es.emit('gap', '{"from": 11, "to": 100}');
  es.emit('final', '{"text": "Hundred and one.", "seq": 101}');
  es.emit('final', '{"text": "Hundred and four.", "seq": 104}');
  assert.deepEqual(v.lines(), ['Ten.', MISSED_NOTE, 'Hundred and one.', MISSED_NOTE, 'Hundred and four.']);
  assert.deepEqual(v.doc.getElementById('lines').children.map((p) => p.className),
    ['line', 'line gap', 'line', 'line gap', 'line']);
  // Refused (a 503 from a proxy): EventSource gives up, and the viewer's new stream says where it was.
  es.refuse();
  for (let i = 0; i < 5; i++) await tick();
  v.timers.advance(15000);
  es = FakeEventSource.instances.at(-1);
  assert.equal(es.url, `/api/captions/${SHARE}/stream?after=104`);
});

test('a viewer that came before the first final and is refused says so in its new stream (after=0), not as new', async () => {
  const v = viewer(503, null);
  let es = FakeEventSource.instances[0];
  assert.equal(es.url, `/api/captions/${SHARE}/stream`);
  es.emit('open', '');
  es.emit('state', '{"live": true}');
  es.refuse();
  for (let i = 0; i < 5; i++) await tick();
  v.timers.advance(15000);
  es = FakeEventSource.instances.at(-1);
  // Told it was here from the start, the server names the finals the log no longer has as a gap.
  assert.equal(es.url, `/api/captions/${SHARE}/stream?after=0`);
});

test('each line and the line being recognised take their direction from their own words (dir=auto)', () => {
  const v = viewer(200, null);
  const es = FakeEventSource.instances[0];
  es.emit('state', '{"live": true}');
  es.emit('final', '{"text": "Hello.", "seq": 1}');
  es.emit('final', '{"text": "\u0645\u0631\u062d\u0628\u0627.", "seq": 3}');
  es.emit('partial', '{"text": "\u05e9\u05dc\u05d5\u05dd"}');
  const lines = v.doc.getElementById('lines').children;
  assert.equal(lines.length, 3, 'two finals and the note for the one missed');
  assert.ok(lines.every((p) => p.attributes.dir === 'auto'), JSON.stringify(lines.map((p) => p.attributes)));
  assert.equal(v.doc.getElementById('interim').attributes.dir, 'auto');
});
