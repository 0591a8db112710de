// static/session-state.js's reducer: every decision the session makes, as (core, input) → (core, effects), under
// Node with no session, no timers and no sockets. The session tests check that session.js executes the effects.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { StateMachine, initialCore, isFinal, reconnectDelay, reduce } from '../../static/session-state.js';

const FACTS = { jitter: 0.5, bufferedMs: 1200 };
const transport = { type: 'client-failed', fatal: true, cause: 'transport', message: 'The connection was lost.', ...FACTS };

/** Feed `inputs` from `core`; every `to` effect is checked against the transition table by a real StateMachine. */
function run(inputs, core = initialCore(3)) {
  const machine = new StateMachine();
  machine.state = core.state;
  const log = [];
  for (const input of inputs) {
    const out = reduce(core, input);
    for (const effect of out.effects) if (effect.type === 'to') machine.to(effect.state, effect.detail);
    assert.equal(out.core.state, machine.state, `the core says where the effects lead (${input.type})`);
    core = out.core;
    log.push(out.effects);
  }
  return { core, log, last: log.at(-1) };
}

const types = (effects) => effects.map((e) => (e.type === 'to' ? `to:${e.state}` : e.type === 'emit' ? `emit:${e.event.type}` : e.type));
const streaming = [{ type: 'start' }, { type: 'source-opened' }, { type: 'connected' }];

test('start, source opened, connected: idle → starting → connecting → streaming, the link up', () => {
  const { core, log } = run(streaming);
  assert.deepEqual(log.map(types), [['to:starting'], ['to:connecting'], ['to:streaming']]);
  assert.equal(core.link, 'up');
});

test('a working connection lost while streaming: outage, then attempt 1 after a jittered backoff', () => {
  const { core, last } = run([...streaming, transport]);
  assert.deepEqual(types(last), ['outage', 'to:reconnecting', 'emit:reconnecting', 'wait']);
  assert.deepEqual(last[1].detail, { attempt: 1, delayMs: reconnectDelay(1, 0.5), bufferedMs: 1200, reason: 'The connection was lost.' });
  assert.deepEqual(last.at(-1), { type: 'wait', attempt: 1, delayMs: 250 });
  assert.deepEqual([core.link, core.attempt], ['lost', 1]);
});

test('an expired token is replaced like a lost connection, with its own reason', () => {
  const { last } = run([...streaming, { ...transport, cause: 'expired' }]);
  assert.equal(last[1].detail.reason, 'the access token expired');
});

test('Stop while connecting, then the socket fails: one decision, the start failed (no reconnect), said once', () => {
  const { core, log } = run([
    { type: 'start' }, { type: 'source-opened' }, { type: 'stop' }, transport,
    { type: 'fail', message: 'start() rejected', code: 'transport' }, // start()'s own rejection, after the event
  ]);
  assert.deepEqual(types(log[3]), ['terminal-loss', 'emit:error', 'to:error', 'release']);
  assert.equal(log[3][2].detail.code, 'transport');
  assert.deepEqual(log[4], [], 'the second report of the same failure changes nothing');
  assert.ok(!log.flat().some((e) => e.type === 'outage' || e.type === 'wait'), 'no reconnect was begun');
  assert.equal(core.state, 'error');
});

test('a provider error ends the session with its cause as the code; a warning-level error is only said', () => {
  const { last } = run([...streaming, { ...transport, cause: 'protocol', message: 'bad config' }]);
  assert.deepEqual(types(last), ['terminal-loss', 'emit:error', 'to:error', 'release']);
  assert.equal(last[1].event.code, 'protocol');
  const soft = run([...streaming, { ...transport, fatal: false }]);
  assert.deepEqual(types(soft.last), ['emit:error']);
  assert.equal(soft.core.state, 'streaming');
});

test('the provider closing while streaming is said, then replaced; while stopping it is only said', () => {
  const closed = { type: 'client-closed', code: 1000, reason: '', clean: true, ...FACTS };
  assert.deepEqual(types(run([...streaming, closed]).last), ['emit:closed', 'outage', 'to:reconnecting', 'emit:reconnecting', 'wait']);
  assert.deepEqual(types(run([...streaming, { type: 'stop' }, closed]).last), ['emit:closed']);
});

test('the reconnect policy: retry with a growing cap, give up after maxReconnects with the last refusal code', () => {
  const failed = (code) => ({ type: 'attempt-failed', message: `no (${code})`, code, retryable: true, jitter: 1, bufferedMs: 0 });
  const { log, core } = run([...streaming, transport, failed('timeout'), failed('timeout'), failed('rate_limited')]);
  assert.deepEqual(log.slice(4, 6).map((e) => e.find((x) => x.type === 'wait').delayMs), [1000, 2000]);
  assert.deepEqual(types(log.at(-1)), ['terminal-loss', 'emit:error', 'to:error', 'release']);
  assert.equal(log.at(-1)[1].event.code, 'reconnect_failed');
  assert.deepEqual(log.at(-1)[2].detail, { message: 'Could not reconnect: no (rate_limited)', code: 'rate_limited' });
  assert.equal(core.state, 'error');
});

test('a refusal that another attempt would meet again ends the reconnects at once', () => {
  const { last } = run([...streaming, transport, { type: 'attempt-failed', message: 'forbidden', retryable: false, ...FACTS }]);
  assert.deepEqual(types(last), ['terminal-loss', 'emit:error', 'to:error', 'release']);
  assert.equal(last[2].detail.code, 'reconnect_failed', 'no code given: the session says why');
});

test('a replacement ready: held audio first, then streaming, then `reconnected`; while stopping, no state change', () => {
  const { core, last } = run([...streaming, transport, { type: 'attempt-ready' }]);
  assert.deepEqual(types(last), ['replay', 'to:streaming', 'reconnected']);
  assert.deepEqual([core.link, core.attempt], ['up', 0]);
  const finishing = run([...streaming, { type: 'stop' }, transport, { type: 'attempt-ready' }]);
  assert.deepEqual(types(finishing.log[4]), ['outage', 'emit:reconnecting', 'wait'], 'no backoff state while stopping');
  assert.equal(finishing.log[4][2].delayMs, 0, 'the user is waiting: no backoff');
  assert.deepEqual(types(finishing.last), ['replay', 'reconnected']);
  assert.equal(finishing.core.state, 'stopping');
});

test('an attempt outcome with no outage under way (a late one) changes nothing', () => {
  assert.deepEqual(run([...streaming, { type: 'attempt-ready' }]).last, []);
  assert.deepEqual(run([...streaming, { type: 'attempt-failed', message: 'x', retryable: true, ...FACTS }]).last, []);
});

test('stop: from idle at once; while starting, what start() got is released; else the graceful finish', () => {
  assert.deepEqual(types(run([{ type: 'stop' }]).last), ['to:stopped']);
  assert.deepEqual(types(run([{ type: 'start' }, { type: 'stop' }]).last), ['to:stopping', 'cancel-client', 'to:stopped', 'end-grant']);
  assert.deepEqual(types(run([...streaming, { type: 'stop' }]).last), ['to:stopping', 'finish']);
  assert.deepEqual(types(run([...streaming, transport, { type: 'stop' }]).last), ['to:stopping', 'wake', 'finish'], 'the backoff is cut short');
  assert.deepEqual(run([...streaming, { type: 'stop' }, { type: 'stop' }]).last, [], 'once');
});

test('the finish: stopped, or the source failure it was stopping for; a timeout ends in error and says so', () => {
  assert.deepEqual(types(run([...streaming, { type: 'stop' }, { type: 'finished' }]).last), ['end-grant', 'to:stopped', 'release']);
  const lost = run([...streaming, { type: 'source-lost', message: 'No microphone.', code: 'no-device' }]);
  assert.deepEqual(types(lost.last), ['stop']);
  const ended = run([{ type: 'stop' }, { type: 'finished' }], { ...lost.core });
  assert.deepEqual(ended.log[1].at(-2), { type: 'to', state: 'error', detail: { message: 'No microphone.', code: 'no-device' } });
  assert.deepEqual(ended.log[1].at(-1), { type: 'release' });
  const timeout = run([...streaming, { type: 'stop' }, { type: 'stop-timeout', message: 'Stopped after 30 s' }, { type: 'finished' }]);
  assert.deepEqual(types(timeout.log[4]), ['terminal-loss', 'emit:error', 'to:error', 'release']);
  assert.equal(timeout.log[4][1].event.code, 'stop_timeout');
  assert.deepEqual(timeout.last, [], 'the finish after it changes nothing');
});

test('a source lost while starting ends the start in error with its message and code, not in a stop', () => {
  const lost = run([{ type: 'start' }, { type: 'source-lost', message: 'The microphone was disconnected.', code: 'failed' }]);
  assert.deepEqual(types(lost.last), ['terminal-loss', 'to:error', 'release']);
  assert.deepEqual(lost.last[1].detail, { message: 'The microphone was disconnected.', code: 'failed' });
});

test('a finish that ran out of rounds ends in error (reconnect_failed), the held audio said lost; not while not stopping', () => {
  const out = run([...streaming, { type: 'stop' }, transport, { type: 'finish-failed' }]);
  assert.deepEqual(types(out.last), ['terminal-loss', 'emit:error', 'to:error', 'release']);
  assert.equal(out.last[1].event.code, 'reconnect_failed');
  assert.equal(out.last[2].detail.code, 'reconnect_failed');
  assert.match(out.last[2].detail.message, /^Could not finish: the connection was lost after each of 4 ends of the stream/);
  assert.deepEqual(run([...streaming, { type: 'finish-failed' }]).last, [], 'only a finish under way');
});

test('cancel: the audio held in an outage is said lost first; nothing happens after any end', () => {
  assert.deepEqual(types(run([...streaming, { type: 'cancel' }]).last), ['to:cancelled', 'release']);
  assert.deepEqual(types(run([...streaming, transport, { type: 'cancel' }]).last), ['terminal-loss', 'to:cancelled', 'release']);
  const all = [{ type: 'start' }, { type: 'source-opened' }, { type: 'connected' }, transport, { type: 'attempt-ready' },
    { type: 'stop' }, { type: 'finished' }, { type: 'cancel' }, { type: 'fail', message: 'x' }];
  for (const end of ['stopped', 'cancelled', 'error']) {
    for (const input of all) assert.deepEqual(reduce({ ...initialCore(), state: end }, input).effects, [], `${end} ${input.type}`);
  }
});

test('random input sequences only ever make moves the table allows, and the core agrees with them', () => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const inputs = [
    { type: 'start' }, { type: 'source-opened' }, { type: 'connected' }, transport, { ...transport, cause: 'protocol' },
    { type: 'client-closed', code: 1006, reason: '', clean: false, ...FACTS }, { type: 'attempt-ready' },
    { type: 'attempt-failed', message: 'x', retryable: true, ...FACTS }, { type: 'stop' }, { type: 'finished' },
    { type: 'stop-timeout', message: 'late' }, { type: 'cancel' }, { type: 'fail', message: 'f' },
    { type: 'source-lost', message: 'gone' },
  ];
  for (let n = 0; n < 500; n++) {
    const sequence = Array.from({ length: 12 }, () => inputs[Math.floor(random() * inputs.length)]);
    const { core } = run(sequence); // run() throws on a move the table refuses or a core that disagrees
    if (isFinal(core.state)) assert.deepEqual(reduce(core, { type: 'start' }).effects, []);
  }
});
