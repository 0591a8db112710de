// Rough finals (static/page/rough.js and the controller's use of it): the engine's fallback warning becomes a mark
// on the final it concerns, never a banner, and the final gets the casing and full stop that are safe to add.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RunController } from '../../static/page/controller.js';
import { isFallbackWarning, tidyRough } from '../../static/page/rough.js';
import { toJson } from '../../static/export.js';
import { Session } from '../../static/session.js';
import { frame, ready, sleep, source, tick, world } from './support/session-fakes.mjs';

Math.random = () => 0;

test('the engine\'s fallback warnings are recognised by their text; other warnings are not', () => {
  for (const reason of ['was too slow', 'was too busy', 'failed', 'repeated itself', 'heard no words where the fast pass did']) {
    assert.ok(isFallbackWarning(`local: The accurate pass ${reason}; this final is the fast pass's text.`), reason);
  }
  // A final Whisper wrote in part (server/engine/twopass.py SKIPPED_WARNING) is marked rough too.
  assert.ok(isFallbackWarning(
    "local: The accurate pass skipped part of this utterance; where it did, this final is the fast pass's text."));
  assert.equal(isFallbackWarning('local: Unknown ASR parameter ignored: foo.'), false);
  assert.equal(isFallbackWarning('Truebar ended the session on its own.'), false);
});

test('a rough final gets a capital, "I" and a full stop, and nothing guessed', () => {
  assert.equal(tidyRough('the mr john dashwood ahead then and leisure'), 'The mr john dashwood ahead then and leisure.');
  assert.equal(tidyRough('  i think i\'m   here and i\'ll go '), 'I think I\'m here and I\'ll go.');
  assert.equal(tidyRough('is it raining?'), 'Is it raining?');
  assert.equal(tidyRough('Already Fine.'), 'Already Fine.');
  assert.equal(tidyRough('"quoted" words'), '"Quoted" words.');
  assert.equal(tidyRough('pi is in it'), 'Pi is in it.');  // "i" inside a word is left alone
  assert.equal(tidyRough(''), '');
});

function recordingView() {
  const calls = [];
  const view = new Proxy({}, { get: (_, name) => (...args) => { calls.push([name, ...args]); } });
  return { view, of: (name) => calls.filter((c) => c[0] === name).map((c) => c.slice(1)) };
}

const final = (text, start) => ({
  type: 'TEXT_SEGMENT',
  textSegment: { isFinal: true, startTimeMs: start, endTimeMs: start + 400, tokens: text.split(' ').map((t) => ({ text: t })) },
});

test('the fallback warning marks the next final rough (tidied, in the JSON export) and shows no banner', async () => {
  const w = world();
  const src = source();
  const rec = recordingView();
  const segments = [];
  const controller = new RunController({
    view: rec.view,
    createSession: (options) => new Session({
      ...options,
      clientOptions: { WebSocketImpl: w.Sock },
      createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    }),
    startFileSource: async () => { throw new Error('no files'); },
    now: () => 0,
  });
  controller.listen({ onFinal: (s) => segments.push(s) });
  const running = controller.start({ provider: 'truebar', providerLabel: 'Offline engine' });
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0], 'truebar');
  await running;
  for (let i = 0; i < 30; i++) src.onFrame(frame());
  const sock = w.Sock.instances[0];
  sock.push({ type: 'WARNING', message: "The accurate pass was too slow; this final is the fast pass's text." });
  sock.push(final('the weather is nice', 100));
  sock.push(final('Then it rained.', 900));
  sock.push({ type: 'WARNING', message: 'Unknown ASR parameter ignored: foo.' });
  await sleep(10);
  assert.deepEqual(segments.map((s) => [s.text, s.rough === true]), [
    ['The weather is nice.', true],
    ['Then it rained.', false],
  ]);
  assert.deepEqual(rec.of('addFinal').map((a) => a[0].rough === true), [true, false]);
  // Only the unrelated warning is a banner.
  const warnings = rec.of('addWarning').map((a) => a[0]);
  assert.equal(warnings.length, 1, warnings.join(' | '));
  assert.match(warnings[0], /Unknown ASR parameter ignored/);
  const json = JSON.parse(toJson(controller.segments));
  assert.deepEqual(json.segments.map((s) => s.rough), [true, undefined]);
  controller.cancel();
});

test('a saved rough final keeps its mark in the saved transcript\'s JSON export', async () => {
  const { exportSaved } = await import('../../static/transcripts/history.js');
  const session = { title: 't', durationMs: 1000, engines: ['local'] };
  const finals = [
    { text: 'Rough words.', startMs: 0, endMs: 500, words: [], estimated: false, rough: true },
    { text: 'Fine words.', startMs: 500, endMs: 900, words: [], estimated: false },
  ];
  const json = JSON.parse(exportSaved('json', /** @type {any} */ (session), /** @type {any} */ (finals)).text);
  assert.deepEqual(json.segments.map((s) => s.rough), [true, undefined]);
});
