// static/session-state.js: the one state union, its transitions in one table, and onStateChange(from, to, detail)
// as a real Session walks through them.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FINAL_STATES, StateMachine, TRANSITIONS } from '../../static/session-state.js';
import { Session } from '../../static/session.js';
import { frame, ready, sleep, source, tick, world } from './support/session-fakes.mjs';

Math.random = () => 0; // backoff jitter: no wait

const STATES = Object.keys(TRANSITIONS);

test('every state is in the table, and only the final ones lead nowhere', () => {
  assert.deepEqual(STATES.sort(), [
    'cancelled', 'connecting', 'error', 'idle', 'reconnecting', 'starting', 'stopped', 'stopping', 'streaming',
  ]);
  for (const [from, targets] of Object.entries(TRANSITIONS)) {
    for (const to of targets) assert.ok(STATES.includes(to), `${from} -> ${to}`);
    assert.equal(targets.length === 0, FINAL_STATES.includes(from), from);
  }
  // Stop, Cancel and failure are possible from every state that is still going.
  for (const from of STATES.filter((s) => !FINAL_STATES.includes(s))) {
    assert.ok(TRANSITIONS[from].includes('cancelled'), from);
  }
});

test('a move the table does not allow throws and leaves the state as it was', () => {
  const seen = [];
  const m = new StateMachine((from, to, detail) => seen.push([from, to, detail]));
  assert.throws(() => m.to('streaming'), /cannot go from idle to streaming/);
  assert.equal(m.state, 'idle');
  m.to('starting');
  m.to('connecting');
  m.to('streaming');
  m.to('reconnecting', { attempt: 1 });
  m.to('reconnecting', { attempt: 2 });
  m.to('streaming');
  m.to('stopping');
  m.to('stopped');
  assert.equal(m.final, true);
  assert.throws(() => m.to('starting'));
  assert.deepEqual(seen.map(([f, t]) => `${f}>${t}`), [
    'idle>starting', 'starting>connecting', 'connecting>streaming', 'streaming>reconnecting',
    'reconnecting>reconnecting', 'reconnecting>streaming', 'streaming>stopping', 'stopping>stopped',
  ]);
  assert.deepEqual(seen[4][2], { attempt: 2 });
});

function observed(w, provider = 'truebar') {
  const changes = [];
  const src = source();
  const s = new Session({
    provider,
    clientOptions: { WebSocketImpl: w.Sock },
    createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    onEvent: () => {},
    onStateChange: (from, to, detail) => changes.push({ from, to, detail }),
  });
  return { s, src, changes };
}

test('a session reports starting, connecting, streaming, reconnecting with its attempt, and stopped', async () => {
  const w = world();
  const { s, src, changes } = observed(w);
  const started = s.start();
  assert.equal(s.state, 'starting', 'the grant and the source are being set up: not idle');
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(s.state, 'connecting');
  ready(w.Sock.instances[0]);
  await started;
  src.onFrame(frame());
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  assert.equal(s.state, 'reconnecting');
  ready(w.Sock.instances[1]);
  await sleep(20);
  const stopping = s.stop();
  await tick();
  w.Sock.instances[1].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.deepEqual(changes.map((c) => c.to), [
    'starting', 'connecting', 'streaming', 'reconnecting', 'streaming', 'stopping', 'stopped',
  ]);
  const reconnecting = changes.find((c) => c.to === 'reconnecting');
  assert.equal(reconnecting.detail.attempt, 1);
  assert.equal(reconnecting.detail.bufferedMs, 100);
  assert.match(reconnecting.detail.reason, /lost/);
});

test('a provider error ends in the error state with its message; Cancel ends in cancelled', async () => {
  const w = world();
  const { s, changes } = observed(w);
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  w.Sock.instances[0].push({ type: 'ERROR', message: 'No such model.' });
  assert.equal(s.state, 'error');
  assert.match(changes.at(-1).detail.message, /No such model/);
  s.cancel();
  assert.equal(s.state, 'error', 'a final state stays');

  const w2 = world();
  const second = observed(w2);
  const started2 = second.s.start();
  for (let i = 0; i < 5; i++) await tick();
  second.s.cancel();
  await assert.rejects(started2);
  assert.deepEqual(second.changes.map((c) => c.to), ['starting', 'connecting', 'cancelled']);
});

test('a refused grant ends in the error state with the server\'s message, not stuck in starting', async () => {
  const w = world();
  globalThis.fetch = async () => ({
    ok: false, status: 409, json: async () => ({ error: { code: 'not_configured', message: 'Truebar is not configured.' } }),
  });
  const { s, changes } = observed(w);
  await assert.rejects(s.start(), /Truebar is not configured/);
  assert.equal(s.state, 'error');
  assert.deepEqual(changes.map((c) => [c.to, c.detail.message]), [
    ['starting', undefined], ['error', 'Truebar is not configured.'],
  ]);
});
