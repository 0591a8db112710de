// Truebar browser client: pure message handling, then whole sessions over a fake WebSocket and fake timers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createClient } from '../../static/providers/client.js';
import { FakeTimers, fakeSocketClass, tick } from './support/fakes.mjs';
import {
  CANCEL,
  EOS,
  TruebarClient,
  configMessage,
  errorMessage,
  parseMessage,
  segmentWords,
  tokensToText,
} from '../../static/providers/truebar.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.secret-access-token';


function grant(overrides = {}) {
  return {
    provider: 'truebar',
    protocol: 'truebar',
    ws_url: 'wss://api.example.test/api/pipelines/stream?lang=en',
    token: TOKEN,
    sample_rate: 16000,
    frame_samples: 1600,
    tag: 'KALDI:en-US:*:*',
    expires_at: '2030-01-01T00:00:00Z',
    ...overrides,
  };
}

function session(opts = {}, grantOverrides = {}) {
  const FakeSocket = fakeSocketClass();
  const timers = new FakeTimers();
  const events = [];
  const client = createClient(grant(grantOverrides), {
    onEvent: (e) => events.push(e),
    WebSocketImpl: FakeSocket,
    timers,
    ...opts,
  });
  const started = client.start();
  const ws = FakeSocket.instances[0];
  return { client, started, ws, timers, events, FakeSocket };
}

function frame(first, length = 1600) {
  return Int16Array.from({ length }, (_, i) => first + i);
}

function segment(isFinal, words, startTimeMs = 1000) {
  return {
    type: 'TEXT_SEGMENT',
    textSegment: {
      isFinal,
      startTimeMs,
      endTimeMs: startTimeMs + 100 * words.length,
      tokens: words.map((text, i) => ({
        text,
        isLeftHanded: /^[,.!?]$/.test(text),
        isRightHanded: false,
        startOffsetMs: 100 * i,
        endOffsetMs: 100 * i + 90,
        confidence: 0.9,
      })),
    },
  };
}

const ofType = (events, type) => events.filter((e) => e.type === type);
const closes = (events) => ofType(events, 'closed').map((e) => [e.code, e.reason, e.clean]);

function assertNoSecret(events) {
  assert.ok(!JSON.stringify(events).includes(TOKEN), 'an event carries the access token');
}

// ---- pure parsing and building ----

describe('parseMessage', () => {
  test('reads the envelope from type or messageType', () => {
    const configured = { kind: 'status', status: 'CONFIGURED' };
    assert.deepEqual(parseMessage('{"type":"STATUS","status":"CONFIGURED"}'), configured);
    assert.deepEqual(parseMessage('{"messageType":"STATUS","status":"FINISHED","lengthMs":5}'), {
      kind: 'status',
      status: 'FINISHED',
    });
    assert.equal(parseMessage(JSON.stringify({ messageType: 'WARNING', message: 'slow' })).kind, 'warning');
  });

  test('passes unknown statuses, types and fields through without failing', () => {
    assert.deepEqual(parseMessage('{"type":"STATUS","status":"PAUSED","sessionId":7}'), {
      kind: 'status',
      status: 'PAUSED',
    });
    const speaker = parseMessage('{"type":"SPEAKER_CHANGE","speaker":2}');
    assert.deepEqual(speaker, { kind: 'unknown', type: 'SPEAKER_CHANGE' });
    assert.deepEqual(parseMessage('{"status":"CONFIGURED"}'), { kind: 'unknown', type: null });
    assert.deepEqual(parseMessage('not json'), { kind: 'invalid' });
    assert.deepEqual(parseMessage('[1,2]'), { kind: 'invalid' });
  });

  test('turns a TEXT_SEGMENT into text, times and absolute word times', () => {
    const msg = parseMessage(JSON.stringify(segment(true, ['Hello', ',', 'world'], 1200)));
    assert.deepEqual(msg, {
      kind: 'segment',
      isFinal: true,
      text: 'Hello, world',
      startMs: 1200,
      endMs: 1500,
      words: [
        { text: 'Hello', startMs: 1200, endMs: 1290 },
        { text: ',', startMs: 1300, endMs: 1390 },
        { text: 'world', startMs: 1400, endMs: 1490 },
      ],
    });
    const interim = parseMessage(JSON.stringify(segment(false, ['Hel'])));
    assert.equal(interim.kind === 'segment' && interim.isFinal, false);
  });

  test('a segment without times has null times and no timed words', () => {
    const textSegment = { isFinal: true, tokens: [{ text: 'hi' }] };
    const msg = parseMessage(JSON.stringify({ type: 'TEXT_SEGMENT', textSegment }));
    const expected = { kind: 'segment', isFinal: true, text: 'hi', startMs: null, endMs: null, words: [] };
    assert.deepEqual(msg, expected);
  });
});

describe('tokensToText', () => {
  test('the vendor example gives "Hello, world!"', () => {
    const tokens = [
      { text: 'Hello', isLeftHanded: false, isRightHanded: false },
      { text: ',', isLeftHanded: true, isRightHanded: false },
      { text: 'world', isLeftHanded: false, isRightHanded: false },
      { text: '!', isLeftHanded: true, isRightHanded: false },
    ];
    assert.equal(tokensToText(tokens), 'Hello, world!');
  });

  test('right-handed tokens take no space after them, left-handed none before', () => {
    const tokens = [
      { text: 'say' },
      { text: '(', isRightHanded: true },
      { text: 'quietly' },
      { text: ')', isLeftHanded: true },
      { text: 'e-', isRightHanded: true },
      { text: 'mail' },
    ];
    assert.equal(tokensToText(tokens), 'say (quietly) e-mail');
  });

  test('empty tokens are skipped and add no space', () => {
    assert.equal(tokensToText([]), '');
    assert.equal(tokensToText(undefined), '');
    assert.equal(tokensToText([{ text: '' }, { text: 'one' }, { text: '' }, { text: 'two' }]), 'one two');
    // A right-handed token that is empty must not glue its neighbours together.
    assert.equal(tokensToText([{ text: 'a' }, { text: '', isRightHanded: true }, { text: 'b' }]), 'a b');
  });
});

describe('messages the client sends', () => {
  test('configMessage builds the one-stage ASR pipeline', () => {
    assert.deepEqual(JSON.parse(configMessage('KALDI:sl-SI:*:*')), {
      type: 'CONFIG',
      pipeline: [
        {
          task: 'ASR',
          exceptionHandlingPolicy: 'THROW',
          config: { tag: 'KALDI:sl-SI:*:*', parameters: { enableInterims: true } },
        },
      ],
    });
    const [stage] = JSON.parse(configMessage('T', { interims: false })).pipeline;
    assert.equal(stage.config.parameters.enableInterims, false);
  });

  test('EOS and CANCEL', () => {
    assert.deepEqual(JSON.parse(EOS), { type: 'EOS', lockSession: false });
    assert.deepEqual(JSON.parse(CANCEL), { type: 'CANCEL' });
  });

  test('errorMessage prefers error.message and falls back to message', () => {
    const both = { type: 'ERROR', error: { id: '1', message: 'Unknown tag' }, message: 'x' };
    assert.equal(errorMessage(both), 'Unknown tag');
    assert.equal(errorMessage({ type: 'ERROR', message: 'Top level' }), 'Top level');
    assert.equal(errorMessage({ type: 'ERROR', error: { message: '' }, message: 'Fallback' }), 'Fallback');
    assert.equal(errorMessage({ type: 'ERROR' }), '');
    assert.equal(errorMessage(null), '');
  });

  test('segmentWords skips tokens without offsets', () => {
    const tokens = [{ text: 'a', startOffsetMs: 0, endOffsetMs: 10 }, { text: 'b' }];
    const words = segmentWords({ startTimeMs: 500, tokens });
    assert.deepEqual(words, [{ text: 'a', startMs: 500, endMs: 510 }]);
  });
});

// ---- whole sessions ----

describe('TruebarClient session', () => {
  test('happy path: CONFIG on open, audio held until CONFIGURED, results, stop awaits FINISHED', async () => {
    const { client, started, ws, events } = session();
    assert.ok(client instanceof TruebarClient);
    const url = new URL(ws.url);
    assert.equal(url.searchParams.get('access_token'), TOKEN);
    assert.equal(url.searchParams.get('lang'), 'en', 'existing query parameters are kept');
    assert.equal(url.pathname, '/api/pipelines/stream');
    assert.equal(ws.binaryType, 'arraybuffer');

    assert.equal(client.sendAudio(frame(0)), true);
    ws.open();
    assert.deepEqual(ws.texts, [JSON.parse(configMessage('KALDI:en-US:*:*'))]);
    assert.equal(client.sendAudio(frame(100)), true);
    ws.push({ type: 'STATUS', status: 'INITIALIZED' });
    assert.equal(ws.binaries.length, 0, 'no audio before CONFIGURED');
    assert.equal(client.state, 'configuring');

    ws.push({ type: 'STATUS', status: 'CONFIGURED', sessionId: 1, recordingId: 2 });
    await started;
    client.sendAudio(frame(200));
    const expected = [frame(0), frame(100), frame(200)].map((f) => new Uint8Array(f.buffer));
    assert.deepEqual(ws.binaries, expected, 'queued frames flushed in order, then live ones, PCM16LE');
    assert.equal(client.framesSent, 3);
    assert.equal(client.bytesSent, 3 * 3200);

    ws.push(segment(false, ['Today']));
    ws.push(segment(false, ['Today', 'is']));
    ws.push(segment(true, ['Today', 'is', 'fine', '.']));
    ws.push({ type: 'STATUS', status: 'SOMETHING_NEW' });

    let stopped = false;
    const stopping = client.stop().then(() => {
      stopped = true;
    });
    await tick();
    assert.deepEqual(ws.texts.at(-1), { type: 'EOS', lockSession: false });
    assert.equal(client.state, 'finishing');
    assert.equal(client.sendAudio(frame(300)), false, 'no audio after EOS');
    ws.push(segment(true, ['Tomorrow', 'rain'], 3000));
    await tick();
    assert.equal(stopped, false, 'stop() must wait for FINISHED');
    assert.equal(ws.closeCalls.length, 0, 'the socket stays open until FINISHED');

    ws.push({ type: 'STATUS', status: 'FINISHED', lengthMs: 4000 });
    await stopping;
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'done' }]);
    assert.deepEqual(
      ofType(events, 'partial').map((e) => e.text),
      ['Today', 'Today is'],
    );
    const finals = ofType(events, 'final');
    assert.deepEqual(
      finals.map((e) => e.text),
      ['Today is fine.', 'Tomorrow rain'],
    );
    assert.deepEqual(finals[1].words[1], { text: 'rain', startMs: 3100, endMs: 3190 });
    assert.equal(finals[1].startMs, 3000);
    const closedAt = events.findIndex((e) => e.type === 'closed');
    assert.ok(events.indexOf(finals[1]) < closedAt, 'the trailing final comes before the close');
    assert.deepEqual(ofType(events, 'closed'), [{ type: 'closed', code: 1000, reason: 'done', clean: true }]);
    assert.deepEqual(
      ofType(events, 'state').map((e) => e.state),
      ['connecting', 'configuring', 'streaming', 'finishing', 'closed'],
    );
    assert.equal(ofType(events, 'error').length, 0);
    assert.equal(client.state, 'closed');
    assertNoSecret(events);
  });

  test("timing provenance is set here, once: the provider's own times, or 'estimated' when a segment has none", async () => {
    const { started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.push(segment(false, ['hello']));
    ws.push(segment(true, ['hello', 'there']));
    ws.push({ type: 'TEXT_SEGMENT', textSegment: { isFinal: true, tokens: [{ text: 'untimed' }] } });
    assert.deepEqual(ofType(events, 'partial').map((e) => e.timing), ['provider']);
    assert.deepEqual(ofType(events, 'final').map((e) => [e.text, e.timing]), [['hello there', 'provider'], ['untimed', 'estimated']]);
  });

  test('a server using the messageType envelope is understood', async () => {
    const { client, started, ws, events } = session();
    ws.open();
    ws.push({ messageType: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.push({ messageType: 'TEXT_SEGMENT', textSegment: { isFinal: true, tokens: [{ text: 'ok' }] } });
    assert.equal(ofType(events, 'final')[0].text, 'ok');
    assert.equal(client.state, 'streaming');
  });

  test('an empty final is a final with no text: it closes the interim and still says where the audio is covered', async () => {
    const { started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.push(segment(false, ['uh']));
    ws.push(segment(true, []));
    assert.deepEqual(ofType(events, 'partial').map((e) => e.text), ['uh']);
    assert.deepEqual(ofType(events, 'final').map((e) => [e.text, e.words]), [['', []]]);
  });

  test('WARNING is passed on and the session continues', async () => {
    const { client, started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.push({ type: 'WARNING', message: 'Audio is low' });
    assert.deepEqual(ofType(events, 'warning'), [{ type: 'warning', message: 'Truebar: Audio is low' }]);
    assert.equal(client.state, 'streaming');
  });

  test('STATUS FINISHED not asked for (no EOS sent) is a transport failure: the audio after it could go nowhere', async () => {
    const { client, started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.push({ type: 'STATUS', status: 'FINISHED' });
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /Truebar ended the session on its own/);
    assert.equal(errors[0].fatal, true);
    assert.equal(errors[0].cause, 'transport', 'what a session answers with a new connection and a replay');
    assert.equal(client.state, 'error');
    assert.equal(client.sendAudio(frame(0)), false);
  });

  test('ERROR is fatal: error event with its message, then a clean close', async () => {
    const { client, started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.push({ type: 'ERROR', error: { id: 'x', timestamp: 't', message: `Stage failed for ${TOKEN}` } });
    await tick();
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].fatal, true);
    assert.match(errors[0].message, /Stage failed/);
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'client error' }]);
    assert.deepEqual(closes(events), [[1000, 'client error', true]]);
    assert.equal(client.state, 'error');
    assert.equal(client.sendAudio(frame(0)), false);
    await client.stop();
    assertNoSecret(events);
  });

  test('ERROR before CONFIGURED rejects start() with the server message', async () => {
    const { started, ws } = session({}, { tag: 'NOPE:xx' });
    ws.open();
    assert.equal(ws.texts[0].pipeline[0].config.tag, 'NOPE:xx');
    ws.push({ type: 'ERROR', message: 'Unknown tag NOPE:xx' });
    await assert.rejects(started, /Unknown tag NOPE:xx/);
  });

  test('a 1006 close right after open, before any message, rejects start() clearly', async () => {
    const { client, started, ws, events } = session();
    ws.open();
    ws.serverClose(1006);
    await assert.rejects(started, (err) => {
      assert.match(err.message, /refused the connection \(token expired or invalid\?\)/);
      assert.ok(!err.message.includes(TOKEN));
      return true;
    });
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].fatal, true);
    assert.deepEqual(closes(events), [[1006, '', false]]);
    assert.equal(client.state, 'error');
  });

  test('a refused upgrade (close without open) rejects start() the same way', async () => {
    const { started, ws } = session();
    ws.serverClose(1006);
    await assert.rejects(started, /refused the connection/);
  });

  test('an unexpected close while streaming is a fatal error and an unclean close', async () => {
    const { started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    ws.serverClose(1011, 'internal error');
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /connection to Truebar was lost \(code 1011: internal error\)/);
    assert.equal(errors[0].fatal, true);
    assert.deepEqual(closes(events), [[1011, 'internal error', false]]);
  });

  /** A session streaming with a 4 s finish timeout, then stop(): `stopped()` says whether it has ended. */
  async function stopAfterStreaming() {
    const made = session({ finishTimeoutMs: 4000 });
    made.ws.open();
    made.ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await made.started;
    let stopped = false;
    const stopping = made.client.stop().then(() => {
      stopped = true;
    });
    await tick();
    return { ...made, stopping, stopped: () => stopped };
  }

  test('stop() gives up after finishTimeoutMs without FINISHED: a transport failure (the last finals never came), then it closes', async () => {
    const { client, ws, timers, events, stopping, stopped } = await stopAfterStreaming();
    timers.advance(3999);
    await tick();
    assert.equal(stopped(), false);
    timers.advance(1);
    await stopping;
    const errors = ofType(events, 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /did not confirm the end: nothing came for 4 s/);
    assert.equal(errors[0].fatal, true);
    assert.equal(errors[0].cause, 'transport', 'what a session answers with a new connection and a replay');
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'client error' }]);
    assert.equal(client.state, 'error');
  });

  test('a provider still sending finals after the end of the stream is waited for: finishTimeoutMs counts from its last message', async () => {
    const { client, ws, timers, events, stopping, stopped } = await stopAfterStreaming();
    for (let i = 0; i < 3; i++) {
      // A final every 3 s (an engine working through audio replayed after a drop): 9 s in all, past 4 s.
      timers.advance(3000);
      ws.push(segment(true, [`word${i}`], 1000 * i));
      await tick();
    }
    assert.equal(stopped(), false);
    assert.equal(ofType(events, 'error').length, 0);
    ws.push({ type: 'STATUS', status: 'FINISHED' });
    await stopping;
    assert.equal(ofType(events, 'final').length, 3);
    assert.equal(ofType(events, 'error').length, 0);
    assert.equal(client.state, 'closed'); // ended as asked, not failed
  });

  test('cancel() sends CANCEL, closes, and rejects a pending start()', async () => {
    const { client, started, ws, events } = session();
    ws.open();
    client.cancel();
    await assert.rejects(started, /cancelled/);
    assert.deepEqual(ws.texts.map((m) => m.type), ['CONFIG', 'CANCEL']);
    assert.deepEqual(ws.closeCalls, [{ code: 1000, reason: 'cancelled' }]);
    await tick();
    assert.deepEqual(closes(events), [[1000, 'cancelled', true]]);
    assert.equal(ofType(events, 'error').length, 0, 'a cancel is not an error');
    assert.equal(client.sendAudio(frame(0)), false);
  });

  test('CONFIG_REQUIRED sends no second CONFIG: the one sent on open crossed it, and a second is refused', async () => {
    const { started, ws, events } = session();
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIG_REQUIRED' });
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    assert.deepEqual(ws.texts, [JSON.parse(configMessage('KALDI:en-US:*:*'))]);
    assert.equal(ofType(events, 'error').length, 0);
  });

  test('no CONFIGURED within readyTimeoutMs rejects start()', async () => {
    const { started, ws, timers } = session({ readyTimeoutMs: 5000 });
    ws.open();
    ws.push({ type: 'STATUS', status: 'INITIALIZED' });
    timers.advance(5000);
    await assert.rejects(started, /did not get ready within 5 s \(no STATUS CONFIGURED\)/);
    assert.equal(ws.closeCalls.length, 1);
  });

  test('the pre-ready queue keeps the oldest frames and says when audio was not sent', async () => {
    // 100 ms frames, a 300 ms queue: three frames fit.
    const { client, started, ws, events } = session({ maxQueuedMs: 300 });
    for (let i = 0; i < 5; i++) client.sendAudio(frame(i * 10));
    const warnings = ofType(events, 'warning');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].message, /300 ms of audio/);
    ws.open();
    ws.push({ type: 'STATUS', status: 'CONFIGURED' });
    await started;
    assert.deepEqual(ws.binaries, [frame(0), frame(10), frame(20)].map((f) => new Uint8Array(f.buffer)));
    assert.match(ofType(events, 'warning')[1].message, /2 audio frames \(200 ms\) were not sent/);
  });

  test('a throwing event listener does not break the protocol', async () => {
    const FakeSocket = fakeSocketClass();
    const client = new TruebarClient(grant(), {
      onEvent: () => {
        throw new Error('ui bug');
      },
      WebSocketImpl: FakeSocket,
      timers: new FakeTimers(),
    });
    const original = console.error;
    console.error = () => {};
    try {
      const started = client.start();
      FakeSocket.instances[0].open();
      FakeSocket.instances[0].push({ type: 'STATUS', status: 'CONFIGURED' });
      await started;
    } finally {
      console.error = original;
    }
    assert.equal(client.state, 'streaming');
  });
});
