// Wiro browser client: pure frame/event handling, then whole sessions over a fake WebSocket and fake timers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createClient } from '../../static/providers/client.js';
import { FakeTimers, fakeSocketClass, tick } from './support/fakes.mjs';
import {
  WiroClient,
  encodeFrame,
  joinIncrements,
  parseEvent,
  sessionEnd,
  taskInfo,
  transcriptIncrement,
} from '../../static/providers/wiro.js';

const TOKEN = 'eDcCm5yyUfIvMFspTwww49OUfgXkQt';


function grant(overrides = {}) {
  return {
    provider: 'wiro',
    protocol: 'wiro',
    ws_url: 'wss://socket.example.test/v1',
    token: TOKEN,
    task_id: '2221',
    sample_rate: 24000,
    frame_samples: 4800,
    expires_at: 1893456000,
    ...overrides,
  };
}

function session(opts = {}) {
  const FakeSocket = fakeSocketClass();
  const timers = new FakeTimers();
  const events = [];
  const onEvent = (e) => events.push(e);
  // One clock for the client's timers and its `now`: Wiro's words are dated by the time since audio went out.
  const client = createClient(grant(), { onEvent, WebSocketImpl: FakeSocket, timers, now: () => timers.now, ...opts });
  const started = client.start();
  return { client, started, ws: FakeSocket.instances[0], timers, events };
}

/** A session past task_stream_ready. */
async function streaming(opts = {}) {
  const s = session(opts);
  s.ws.open();
  s.ws.push({ type: 'task_stream_ready' });
  await s.started;
  return s;
}

function frame(first, length = 4800) {
  return Int16Array.from({ length }, (_, i) => first + i);
}

const say = (text) => ({ type: 'task_output', id: '1', message: `TRANSCRIPT_USER:${text}` });
const ofType = (events, type) => events.filter((e) => e.type === type);
const closes = (events) => ofType(events, 'closed').map((e) => [e.code, e.reason, e.clean]);

function assertNoSecret(events) {
  assert.ok(!JSON.stringify(events).includes(TOKEN), 'an event carries the task token');
}

// ---- pure frame and event handling ----

describe('encodeFrame', () => {
  test('is the ASCII token, 0x7C, then PCM16 little-endian', () => {
    const bytes = new Uint8Array(encodeFrame('ab9', Int16Array.from([1, -2, 0x1234, -32768, 32767])));
    assert.deepEqual(
      [...bytes],
      [0x61, 0x62, 0x39, 0x7c, 0x01, 0x00, 0xfe, 0xff, 0x34, 0x12, 0x00, 0x80, 0xff, 0x7f],
    );
  });

  test('PCM bytes equal to 0x7C are carried unchanged after the first separator', () => {
    const bytes = new Uint8Array(encodeFrame('t', Int16Array.from([0x7c7c, 0x007c])));
    assert.deepEqual([...bytes], [0x74, 0x7c, 0x7c, 0x7c, 0x7c, 0x00]);
    assert.equal(bytes.indexOf(0x7c), 1, 'the server splits on the first "|", right after the token');
  });

  test('encodes a view into a larger buffer by its own samples only', () => {
    const whole = Int16Array.from([9, 9, 5, 6, 9]);
    const bytes = new Uint8Array(encodeFrame('k', whole.subarray(2, 4)));
    assert.deepEqual([...bytes], [0x6b, 0x7c, 0x05, 0x00, 0x06, 0x00]);
  });

  test('refuses a token that would corrupt the frame, without echoing it', () => {
    assert.throws(() => encodeFrame('abc|def', new Int16Array(1)), (err) => !err.message.includes('abc|def'));
    assert.throws(() => encodeFrame('tökén', new Int16Array(1)), TypeError);
  });
});

describe('events', () => {
  test('parseEvent keeps the fields the client uses and ignores the rest', () => {
    assert.deepEqual(parseEvent('{"type":"connected","version":"1.0"}'), {
      type: 'connected',
      message: null,
      turnCost: null,
      cumulativeCost: null,
    });
    assert.deepEqual(
      parseEvent('{"type":"task_cost","turnCost":0.002,"cumulativeCost":"0.012","usage":{},"id":"9"}'),
      { type: 'task_cost', message: null, turnCost: 0.002, cumulativeCost: 0.012 },
    );
    assert.equal(parseEvent('nope'), null);
    assert.equal(parseEvent('{"message":"no type"}'), null);
    assert.equal(parseEvent('"task_end"'), null);
  });

  test('transcriptIncrement takes only task_output with the TRANSCRIPT_USER: prefix', () => {
    const ev = (type, message) => ({ type, message, turnCost: null, cumulativeCost: null });
    assert.equal(transcriptIncrement(ev('task_output', 'TRANSCRIPT_USER: hello')), ' hello');
    assert.equal(transcriptIncrement(ev('task_output', 'TRANSCRIPT_USER:')), '');
    assert.equal(transcriptIncrement(ev('task_output', 'Loading model 40%')), null);
    assert.equal(transcriptIncrement(ev('task_output', 'transcript_user:hi')), null);
    assert.equal(transcriptIncrement(ev('task_error', 'TRANSCRIPT_USER:hi')), null);
    assert.equal(transcriptIncrement(ev('task_output', null)), null);
  });

  test('taskInfo and sessionEnd carry the token', () => {
    assert.deepEqual(JSON.parse(taskInfo('T1')), { type: 'task_info', tasktoken: 'T1' });
    assert.deepEqual(JSON.parse(sessionEnd('T1')), { type: 'task_session_end', tasktoken: 'T1' });
  });
});

describe('joinIncrements', () => {
  test('bare words are joined with single spaces', () => {
    assert.equal(joinIncrements(['What', "'s", 'the', 'weather']), "What 's the weather");
    assert.equal(joinIncrements(['Hello', 'world']), 'Hello world');
  });

  test('increments with their own leading space are concatenated', () => {
    assert.equal(joinIncrements([' Hello', ',', ' wor', 'ld', '!']), 'Hello, world!');
    assert.equal(joinIncrements(['Hel', 'lo'], { selfSpaced: true }), 'Hello');
  });

  test('separate punctuation attaches to the word before it', () => {
    assert.equal(joinIncrements(['Hello', ',', 'world', '!']), 'Hello, world!');
  });

  test('whitespace is normalised', () => {
    assert.equal(joinIncrements(['  New  ', '\tYork\n', '']), 'New York');
    assert.equal(joinIncrements([]), '');
    assert.equal(joinIncrements(['   ']), '');
  });
});

// ---- whole sessions ----

describe('WiroClient session', () => {
  test('happy path: task_info, gating on task_stream_ready, frames, utterances, cost, stop', async () => {
    const { client, started, ws, timers, events } = session();
    assert.ok(client instanceof WiroClient);
    assert.equal(ws.url, 'wss://socket.example.test/v1');

    client.sendAudio(frame(0));
    ws.open();
    assert.deepEqual(ws.texts, [{ type: 'task_info', tasktoken: TOKEN }]);
    ws.push({ type: 'connected', version: '1.0' });
    for (const type of ['task_queue', 'task_accept', 'task_preprocess_start', 'task_start']) {
      ws.push({ type });
    }
    client.sendAudio(frame(10));
    assert.equal(ws.binaries.length, 0, 'no audio before task_stream_ready');
    assert.equal(client.state, 'configuring');

    ws.push({ type: 'task_stream_ready', tasktoken: TOKEN });
    await started;
    assert.equal(client.state, 'streaming');
    client.sendAudio(frame(20));
    const expected = [frame(0), frame(10), frame(20)].map((f) => new Uint8Array(encodeFrame(TOKEN, f)));
    assert.deepEqual(ws.binaries, expected);
    assert.equal(client.framesSent, 3);
    assert.equal(client.bytesSent, 3 * (TOKEN.length + 1 + 9600));

    // 600 ms of audio went out at task_stream_ready; Wiro listens in real time, so 600 ms later it has heard it
    // all when the first words arrive.
    timers.advance(600);
    ws.push(say('What'));
    ws.push(say('time'));
    client.sendAudio(frame(30));
    timers.advance(200);
    ws.push(say('is it?'));
    ws.push({ type: 'task_output', message: 'Model warm-up done' });
    assert.deepEqual(
      ofType(events, 'partial').map((e) => [e.text, e.startMs, e.endMs]),
      [
        ['What', 600, 600],
        ['What time', 600, 600],
        ['What time is it?', 600, 800],
      ],
    );
    assert.equal(ofType(events, 'final').length, 0);
    timers.advance(1499);
    assert.equal(ofType(events, 'final').length, 0, 'the utterance stays open until the gap has passed');
    timers.advance(1);
    assert.deepEqual(ofType(events, 'final'), [
      { type: 'final', text: 'What time is it?', startMs: 600, endMs: 800, words: [], timing: 'estimated' },
    ]);
    assert.ok(ofType(events, 'partial').every((e) => e.timing === 'estimated'), 'arrival times, said at the adapter');

    ws.push({ type: 'task_cost', turnCost: 0.002, cumulativeCost: 0.012, usage: { audio_seconds: 1 } });
    assert.deepEqual(ofType(events, 'cost'), [{ type: 'cost', turnCost: 0.002, cumulativeCost: 0.012 }]);
    ws.push({ type: 'task_error', message: 'slow path' });
    assert.deepEqual(ofType(events, 'warning'), [{ type: 'warning', message: 'Wiro task log: slow path' }]);
    assert.equal(ofType(events, 'error').length, 0, 'task_error is not fatal');
    assert.equal(client.state, 'streaming');

    ws.push(say('Thanks'));
    let stopped = false;
    const stopping = client.stop().then(() => {
      stopped = true;
    });
    await tick();
    assert.deepEqual(ws.texts.at(-1), { type: 'task_session_end', tasktoken: TOKEN });
    assert.equal(client.sendAudio(frame(40)), false);
    ws.push(say('a lot.'));
    ws.push({ type: 'task_cost', turnCost: 0.001, cumulativeCost: 0.013 });
    ws.push({ type: 'task_stream_end' });
    assert.equal(ofType(events, 'final').at(-1).text, 'Thanks a lot.', 'task_stream_end commits');
    ws.push({ type: 'task_end' });
    await tick();
    assert.equal(stopped, false, 'stop() waits for task_postprocess_end');
    assert.equal(ws.closeCalls.length, 0);
    ws.push({ type: 'task_postprocess_end' });
    await stopping;
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'done' }]);
    assert.deepEqual(ofType(events, 'closed'), [{ type: 'closed', code: 1000, reason: 'done', clean: true }]);
    assert.equal(ofType(events, 'final').length, 2);
    assert.deepEqual(
      ofType(events, 'state').map((e) => e.state),
      ['connecting', 'configuring', 'streaming', 'finishing', 'closed'],
    );
    assertNoSecret(events);
  });

  test('words are dated by the audio Wiro can have heard: a burst is heard at 1x from when it went out', async () => {
    const { client, started, ws, timers, events } = session({ utteranceGapMs: 3000 });
    ws.open();
    // 6 s captured while the task got ready (200 ms frames, one per 200 ms), sent at once at task_stream_ready.
    for (let i = 0; i < 30; i++) { client.sendAudio(frame(i)); timers.advance(200); }
    ws.push({ type: 'task_stream_ready' });
    await started;
    assert.equal(client.audioMs(), 6000);
    timers.advance(1000);
    ws.push(say('one'));
    // The microphone goes on, one frame per 200 ms: Wiro stays 6 s behind the audio sent.
    for (let i = 0; i < 10; i++) { client.sendAudio(frame(i)); timers.advance(200); }
    ws.push(say('two'));
    timers.advance(3000);
    // A pause in the audio (a microphone that stalled): Wiro catches up with what was sent, no further.
    timers.advance(20_000);
    ws.push(say('three'));
    client.sendAudio(frame(0));
    timers.advance(100);
    ws.push(say('four'));
    assert.deepEqual(ofType(events, 'partial').map((e) => [e.text, e.startMs, e.endMs]), [
      ['one', 1000, 1000],
      ['one two', 1000, 3000],
      ['three', 8000, 8000],
      ['three four', 8000, 8100],
    ]);
    assert.deepEqual(ofType(events, 'final').map((e) => [e.text, e.startMs, e.endMs]), [['one two', 1000, 3000]]);
  });

  test('stop() delivers an open utterance as final before it resolves', async () => {
    const { client, ws, events } = await streaming();
    ws.push(say('half'));
    const stopping = client.stop();
    await tick();
    ws.push({ type: 'task_postprocess_end' });
    await stopping;
    assert.deepEqual(
      ofType(events, 'final').map((e) => e.text),
      ['half'],
    );
  });

  test('balance used up during stop: only task_cost and task_end arrive', async () => {
    const { client, ws, timers, events } = await streaming({ endGraceMs: 2000 });
    let stopped = false;
    const stopping = client.stop().then(() => {
      stopped = true;
    });
    await tick();
    ws.push({ type: 'task_cost', turnCost: 0.5, cumulativeCost: 1.0 });
    ws.push({ type: 'task_end' });
    timers.advance(1999);
    await tick();
    assert.equal(stopped, false);
    timers.advance(1);
    await stopping;
    assert.deepEqual(ofType(events, 'cost'), [{ type: 'cost', turnCost: 0.5, cumulativeCost: 1.0 }]);
    assert.equal(ofType(events, 'warning').length, 0, 'this is an orderly end');
    assert.equal(ofType(events, 'error').length, 0);
    assert.equal(client.state, 'closed');
  });

  test('the server ending the task while streaming is a fatal error', async () => {
    const { client, ws, events } = await streaming();
    ws.push(say('cut'));
    ws.push({ type: 'task_cost', turnCost: 0.5, cumulativeCost: 1.0 });
    ws.push({ type: 'task_end' });
    await tick();
    assert.deepEqual(
      ofType(events, 'final').map((e) => e.text),
      ['cut'],
    );
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].fatal, true);
    assert.match(errors[0].message, /ended the task/);
    assert.equal(client.state, 'error');
    assert.deepEqual(closes(events), [[1000, 'client error', true]]);
  });

  test('stop() gives up after finishTimeoutMs when nothing confirms the end: a transport failure', async () => {
    const { client, timers, events } = await streaming({ finishTimeoutMs: 3000 });
    const stopping = client.stop();
    await tick();
    timers.advance(3000);
    await stopping;
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /did not confirm the end: nothing came for 3 s/);
    assert.equal(errors[0].cause, 'transport');
    assert.equal(client.state, 'error');
  });

  test('a close during stop is accepted as the end', async () => {
    const { client, ws, events } = await streaming();
    const stopping = client.stop();
    await tick();
    ws.serverClose(1000);
    await stopping;
    assert.deepEqual(closes(events), [[1000, '', true]]);
    assert.equal(ofType(events, 'error').length, 0);
  });

  test('task_stream_end while streaming (not asked to finish) is a lost connection: words kept, transport error', async () => {
    const { client, ws, events } = await streaming();
    client.sendAudio(frame(0));
    ws.push(say('hello'));
    ws.push({ type: 'task_stream_end' });
    await tick();
    assert.deepEqual(ofType(events, 'final').map((e) => e.text), ['hello'], 'the open utterance is kept');
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].fatal, true);
    assert.equal(errors[0].cause, 'transport', 'the session reconnects and replays what no final covered');
    assert.match(errors[0].message, /Wiro ended its transcript stream before it was asked to/);
    assert.equal(client.state, 'error', 'not left streaming into a stream that transcribes nothing');
    assert.equal(client.sendAudio(frame(10)), false);
    assert.deepEqual(ws.texts.map((m) => m.type), ['task_info'], 'no task_session_end: closing ends the task');
    assert.deepEqual(closes(events), [[1000, 'client error', true]]);
  });

  test('task_cancel while streaming is fatal', async () => {
    const { ws, events } = await streaming();
    ws.push({ type: 'task_cancel' });
    assert.match(ofType(events, 'error')[0].message, /cancelled the task/);
  });

  test('no task_stream_ready within readyTimeoutMs rejects start() clearly', async () => {
    const { started, ws, timers, events } = session({ readyTimeoutMs: 15000 });
    ws.open();
    ws.push({ type: 'task_queue' });
    timers.advance(15000);
    await assert.rejects(started, /Wiro did not get ready within 15 s \(no task_stream_ready\)/);
    assert.equal(ofType(events, 'error')[0].fatal, true);
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'client error' }]);
    assertNoSecret(events);
  });

  // How Wiro answers a task_info it cannot register is unknown (the emulator offers both): a task_error alone, the
  // socket left open, or a task_error and a close. Either way start() fails clearly, and never hangs.
  test('a refused task_info answered by task_error alone fails start() at the ready timeout', async () => {
    const { started, ws, timers, events } = session({ readyTimeoutMs: 15000 });
    ws.open();
    ws.push({ type: 'connected', version: '1.0' });
    ws.push({ type: 'task_error', message: 'unknown tasktoken' });
    await tick();
    assert.equal(ofType(events, 'error').length, 0, 'a task_error alone is a log line');
    timers.advance(15000);
    await assert.rejects(started, /Wiro did not get ready within 15 s \(no task_stream_ready\)/);
    assert.match(ofType(events, 'warning')[0].message, /unknown tasktoken/);
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'client error' }]);
  });

  test('a refused task_info answered by task_error and a close (1008) fails start() at once', async () => {
    const { started, ws, events } = session({ readyTimeoutMs: 15000 });
    ws.open();
    ws.push({ type: 'connected', version: '1.0' });
    ws.push({ type: 'task_error', message: 'tasktoken is not available' });
    ws.serverClose(1008, '');
    await assert.rejects(started, /Wiro closed the connection before the session was ready/);
    assert.equal(ofType(events, 'error')[0].fatal, true);
    assert.deepEqual(closes(events), [[1008, '', false]]);
  });

  test('cancel() closes without task_session_end and leaves no timer behind', async () => {
    const { client, ws, timers, events } = await streaming();
    ws.push(say('never mind'));
    client.cancel();
    await tick();
    assert.deepEqual(ws.texts.map((m) => m.type), ['task_info']);
    assert.equal(timers.pending.size, 0);
    assert.deepEqual(
      ofType(events, 'final').map((e) => e.text),
      ['never mind'],
      'words already shown are committed, not lost',
    );
    assert.deepEqual(closes(events), [[1000, 'cancelled', true]]);
  });

  // The variants the spec allows (and the emulator's leading_space and chatty options send): increments with or
  // without their own leading space; log output, task_error lines, unknown events and optional fields between them.
  // The same words must give the same finals under each: single-spaced, no prefix, no log text.
  const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog'];

  /** Push WORDS as one utterance per three words, then stop; the finals and warnings that came. */
  async function variantSession({ selfSpaced = false, chatty = false } = {}) {
    const { client, ws, timers, events } = await streaming();
    const extra = (type) => {
      if (!chatty) return {};
      const terminal = type === 'task_end' || type === 'task_postprocess_end';
      return { id: '2221', tasktoken: TOKEN, result: true, success: type !== 'task_error', terminal, exitCode: terminal ? 0 : null };
    };
    const push = (type, fields = {}) => ws.push({ type, ...extra(type), ...fields });
    if (chatty) push('task_model_warmup');
    WORDS.forEach((word, i) => {
      if (chatty) {
        push('task_output', { message: `[model] chunk ${i} decoded; next TRANSCRIPT_USER:logleak${i}` });
        push('task_error', { message: `TRANSCRIPT_USER:errleak${i} stderr: decoder queue at ${i}` });
        if (i % 3 === 2) push('task_progress', { progress: i });
      }
      push('task_output', { message: `TRANSCRIPT_USER:${selfSpaced ? ' ' : ''}${word}` });
      if (i % 3 === 2) timers.advance(1500);
    });
    const stopping = client.stop();
    await tick();
    for (const type of ['task_cost', 'task_stream_end', 'task_end', 'task_postprocess_end']) push(type);
    await stopping;
    assert.equal(ofType(events, 'error').length, 0);
    assert.equal(client.state, 'closed');
    return { finals: ofType(events, 'final').map((e) => e.text), warnings: ofType(events, 'warning') };
  }

  for (const variant of [{ selfSpaced: true }, { chatty: true }, { chatty: true, selfSpaced: true }]) {
    test(`the ${JSON.stringify(variant)} stream gives the bare stream's finals`, async () => {
      const bare = await variantSession();
      assert.deepEqual(bare.finals, ['the quick brown', 'fox jumps over', 'the lazy dog']);
      const { finals, warnings } = await variantSession(variant);
      assert.deepEqual(finals, bare.finals);
      assert.equal(warnings.length, variant.chatty ? WORDS.length : 0, 'each task_error is a log line');
    });
  }

  test('server text echoing the token is redacted', async () => {
    const { ws, events } = await streaming();
    ws.push({ type: 'task_error', message: `unknown token ${TOKEN}` });
    ws.serverClose(4001, `bad token ${TOKEN}`);
    assertNoSecret(events);
    assert.match(ofType(events, 'warning')[0].message, /unknown token \[token\]/);
  });
});
