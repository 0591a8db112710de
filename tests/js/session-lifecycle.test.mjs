// static/session.js around the edges of a session's life: Stop/Cancel while starting or reconnecting, a failed
// reconnect attempt, a provider ending on its own, and events after Cancel. Provider sockets and /api/sessions
// are doubles; the Session, the provider clients and the replay buffer are the real ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Session } from '../../static/session.js';
import { deferred, frame, ready, sleep, source, tick, world } from './support/session-fakes.mjs';

Math.random = () => 0; // backoff jitter: no wait

function session(w, provider, src, events = []) {
  return new Session({
    provider,
    clientOptions: { WebSocketImpl: w.Sock },
    createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    onEvent: (e) => events.push(e),
  });
}

async function streaming(w, provider, src, events) {
  const s = session(w, provider, src, events);
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0], provider);
  await started;
  return s;
}

test('Stop while the grant is still coming: nothing is opened, the grant is handed back', async () => {
  const w = world();
  const held = deferred();
  w.hold = held.promise;
  const src = source();
  const s = session(w, 'truebar', src);
  const started = s.start();
  await tick();
  await s.stop();
  held.resolve();
  await assert.rejects(started, /ended before it started/);
  assert.equal(w.Sock.instances.length, 0, 'no provider socket after Stop');
  assert.equal(src.onFrame, null, 'the microphone was never opened');
  assert.deepEqual(w.ends, ['/api/sessions/truebar/s1/end']);
});

test('Cancel while the microphone is opening: start() rejects and the microphone is released', async () => {
  for (const action of ['stop', 'cancel']) {
    const w = world();
    const opening = deferred();
    const src = source();
    const s = new Session({
      provider: 'truebar', clientOptions: { WebSocketImpl: w.Sock }, onEvent: () => {},
      createSource: async () => { await opening.promise; return src; },
    });
    const started = s.start();
    for (let i = 0; i < 5; i++) await tick();
    await s[action]();
    opening.resolve();
    await assert.rejects(started, /ended before it started/, action);
    assert.equal(src.released, true, action);
  }
});

test('Stop or Cancel while the microphone prompt is open: start() rejects at once, the microphone is released when it comes', async () => {
  for (const action of ['stop', 'cancel']) {
    const w = world();
    const prompt = deferred();
    const mic = source();
    const s = new Session({
      provider: 'truebar', clientOptions: { WebSocketImpl: w.Sock }, onEvent: () => {},
      microphone: () => prompt.promise, // the user has not answered the permission prompt
    });
    const started = s.start();
    started.catch(() => {});
    for (let i = 0; i < 5; i++) await tick();
    await s[action]();
    const outcome = await Promise.race([started.then(() => 'resolved', (err) => err.message), sleep(50).then(() => 'pending')]);
    assert.match(outcome, /ended before it started/, `${action}: start() does not wait for the prompt`);
    assert.deepEqual(w.ends, ['/api/sessions/truebar/s1/end'], action);
    prompt.resolve(mic);
    await sleep(5);
    assert.equal(mic.released, true, `${action}: the microphone granted after the end is let go of`);
    assert.equal(s.state, action === 'stop' ? 'stopped' : 'cancelled');
  }
});

test('a reconnect attempt whose socket fails is retried, not reported as the end', async () => {
  const w = world('wiro');
  const src = source();
  const events = [];
  const s = await streaming(w, 'wiro', src, events);
  src.onFrame(frame());
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  w.Sock.instances[1].serverClose(1006); // the second try is refused too
  await sleep(20);
  ready(w.Sock.instances[2], 'wiro');
  await sleep(20);
  const kinds = events.map((e) => e.type).filter((t) => t !== 'state');
  assert.deepEqual(kinds.filter((t) => t === 'reconnecting').length, 2);
  assert.ok(kinds.includes('reconnected') && !kinds.includes('error'), kinds.join());
  assert.equal(w.Sock.instances[2].binaries.length, 1, 'the held frame is replayed');
  // Every grant that did not become the live one is handed back (for Wiro: a billed task).
  assert.deepEqual(w.ends, ['/api/sessions/wiro/s1/end', '/api/sessions/wiro/s2/end']);
  assert.equal(s.state, 'streaming');
});

test('Cancel during a reconnect leaves no socket open and hands the new grant back', async () => {
  const w = world('wiro');
  const src = source();
  const events = [];
  const s = await streaming(w, 'wiro', src, events);
  const held = deferred();
  w.hold = held.promise;
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  s.cancel();
  const seen = events.length;
  held.resolve();
  await sleep(20);
  assert.equal(w.Sock.instances.length, 1, 'no new socket after Cancel');
  assert.ok(w.ends.includes('/api/sessions/wiro/s2/end'));
  assert.deepEqual(events.slice(seen), []);
});

test('a provider that ends the session on its own is reconnected, not left silently dead', async () => {
  const w = world();
  const src = source();
  const events = [];
  const s = await streaming(w, 'truebar', src, events);
  w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
  await sleep(20);
  ready(w.Sock.instances[1]);
  for (let i = 0; i < 3; i++) src.onFrame(frame());
  await sleep(20);
  assert.ok(events.some((e) => e.type === 'reconnecting' && /on its own/.test(e.reason)));
  assert.equal(s.state, 'streaming');
  assert.equal(w.Sock.instances[1].binaries.length, 3, 'audio flows to the new session');
});

test('a provider that ends the session on its own during Stop, before the tail is sent, is replaced: nothing is lost', async () => {
  const w = world();
  const tail = deferred();
  const src = source();
  // The source's last frames come through only after the provider has ended the session (a slow flush).
  src.stop = async function () {
    await tail.promise;
    for (let i = 0; i < 5; i++) this.onFrame(frame());
    this.released = true;
    return { frames: 0, inSamples: 0 };
  };
  const events = [];
  const s = await streaming(w, 'truebar', src, events);
  for (let i = 0; i < 50; i++) src.onFrame(frame()); // 5 s, no final yet
  const stopping = s.stop();
  await tick();
  w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' }); // not asked: EOS has not gone out yet
  await sleep(20);
  assert.equal(w.Sock.instances.length, 2, 'a new session is opened');
  const second = w.Sock.instances[1];
  ready(second);
  await sleep(5);
  tail.resolve();
  await sleep(20);
  assert.equal(second.binaries.length, 55, 'the held audio and the tail go to the new session');
  assert.ok(second.texts.some((m) => m.type === 'EOS'));
  second.push({ type: 'TEXT_SEGMENT', textSegment: { isFinal: true, startTimeMs: 0, endTimeMs: 5500, tokens: [{ text: 'all of it', startOffsetMs: 0, endOffsetMs: 5500 }] } });
  second.push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.equal(s.state, 'stopped');
  assert.ok(events.some((e) => e.type === 'reconnecting' && /on its own/.test(e.reason)));
  assert.ok(events.some((e) => e.type === 'final' && e.text === 'all of it'));
  assert.deepEqual(events.filter((e) => e.type === 'dropped'), []);
  assert.equal(s.diagnostics().bufferedMs, 0, 'no audio left that no final covers');
});

test('nothing reaches the page after Cancel, not even the Wiro words pending at that moment', async () => {
  const w = world('wiro');
  const src = source();
  const events = [];
  const s = await streaming(w, 'wiro', src, events);
  src.onFrame(frame());
  w.Sock.instances[0].push({ type: 'task_output', message: 'TRANSCRIPT_USER:never mind' });
  const seen = events.length;
  s.cancel();
  await sleep(20);
  assert.deepEqual(events.slice(seen), []);
});

test('Stop during a reconnect whose grant request never answers ends, instead of waiting for ever', { timeout: 10_000 }, async () => {
  const w = world();
  const events = [];
  const s = new Session({
    provider: 'truebar',
    clientOptions: { WebSocketImpl: w.Sock },
    createSource: async () => source(),
    onEvent: (e) => events.push(e),
    maxReconnects: 2,
    grantTimeoutMs: 50,
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  const never = new Promise(() => {});
  // Every grant from now on hangs, as a fetch does on a network that went away without saying so.
  globalThis.fetch = async (url) => (url === '/api/sessions' ? never : { ok: true, status: 200, json: async () => ({}) });
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  assert.equal(s.state, 'reconnecting');
  // Ended by the grant's timeout (its message), not by the stop bound (30 s by default, past the test's timeout).
  await s.stop();
  assert.equal(s.state, 'error', 'the held audio could not be delivered: that is an error, not a quiet stop');
  assert.match(events.filter((e) => e.type === 'error').at(-1).message, /did not answer/);
});

test('Stop from a listener of the drop (its `dropped` event) is handled after the reconnect begins: the held audio is replayed and the new session finishes', { timeout: 10_000 }, async () => {
  const w = world();
  const src = source();
  const events = [];
  const states = [];
  const s = new Session({
    provider: 'truebar',
    clientOptions: { WebSocketImpl: w.Sock },
    createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    onEvent: (e) => events.push(e),
    onStateChange: (from, to) => states.push(`${from}->${to}`),
    maxReplayMs: 1000,
    stopTimeoutMs: 2000,
  });
  // A page that wraps up as soon as audio is lost: its stop() comes while the drop's effects are still running.
  let stopped = null;
  s.on('dropped', () => { stopped ??= s.stop(); });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(w.Sock.instances[0]);
  await started;
  for (let i = 0; i < 30; i++) src.onFrame(frame()); // 3 s, no final: 1 s held, 2 s beyond the bound
  w.Sock.instances[0].serverClose(1006);
  await sleep(20);
  assert.ok(stopped, 'the listener asked for a stop');
  assert.equal(w.Sock.instances.length, 2, 'the lost connection is replaced');
  const second = w.Sock.instances[1];
  ready(second);
  await sleep(20);
  assert.equal(second.binaries.length, 10, 'the held second is replayed');
  assert.ok(second.texts.some((m) => m.type === 'EOS'), 'and the new session is finished in turn');
  second.push({ type: 'TEXT_SEGMENT', textSegment: { isFinal: true, startTimeMs: 0, endTimeMs: 1000, tokens: [{ text: 'tail', startOffsetMs: 0, endOffsetMs: 1000 }] } });
  second.push({ type: 'STATUS', status: 'FINISHED' });
  await stopped; // by the new session's FINISHED: past the stop bound (2 s) it would have ended in error
  assert.equal(s.state, 'stopped');
  assert.deepEqual(states.slice(-3), ['streaming->reconnecting', 'reconnecting->stopping', 'stopping->stopped']);
  assert.ok(events.some((e) => e.type === 'final' && e.text === 'tail'));
  assert.deepEqual(events.filter((e) => e.type === 'dropped').map((e) => e.droppedMs), [2000], 'only what the bound pushed out is lost');
  assert.ok(!events.some((e) => e.type === 'error'));
});

test('no level reaches the page after Cancel or Stop, though the source reports one more (a message already queued)', async () => {
  for (const end of ['cancel', 'stop']) {
    const w = world();
    const src = source();
    const levels = [];
    const s = new Session({
      provider: 'truebar', clientOptions: { WebSocketImpl: w.Sock },
      createSource: async (o) => { src.onFrame = o.onFrame; src.onLevel = o.onLevel; return src; },
      onLevel: (l) => levels.push(l),
    });
    const started = s.start();
    for (let i = 0; i < 5; i++) await tick();
    ready(w.Sock.instances[0]);
    await started;
    src.onLevel({ rms: 0.1, peak: 0.2, silent: false });
    assert.equal(levels.length, 1, 'levels reach the page while streaming');
    if (end === 'cancel') s.cancel();
    else {
      const stopped = s.stop();
      await sleep(5);
      w.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
      await stopped;
    }
    assert.ok(['cancelled', 'stopped'].includes(s.state), s.state);
    src.onLevel({ rms: 0.1, peak: 0.2, silent: false });
    assert.equal(levels.length, 1, `no level after ${end}`);
  }
});

test("Stop with a source whose stop() rejects: the failure is said, the provider still gets its end of stream and finishes, the source is released", async () => {
  const w = world();
  const events = [];
  const src = {
    released: false, onFrame: null,
    async stop() { throw new Error('device went away while flushing'); },
    async release() { this.released = true; },
  };
  const s = await streaming(w, 'truebar', src, events);
  for (let i = 0; i < 30; i++) src.onFrame(frame()); // 3 s, no final yet
  const stopped = s.stop();
  await sleep(5);
  const ws = w.Sock.instances[0];
  assert.ok(ws.texts.some((m) => m.type === 'EOS'), 'the provider is told the stream ended');
  ws.push({ type: 'TEXT_SEGMENT', textSegment: { isFinal: true, startTimeMs: 0, endTimeMs: 3000, tokens: [{ text: 'all of it', startOffsetMs: 0, endOffsetMs: 3000 }] } });
  ws.push({ type: 'STATUS', status: 'FINISHED' });
  await stopped;
  assert.equal(s.state, 'stopped');
  assert.ok(ws.readyState >= 2, 'the socket is closed');
  assert.ok(src.released, 'the source is released');
  const said = events.filter((e) => e.type === 'source');
  assert.deepEqual(said.map((e) => [e.code, e.recovered]), [['source_interrupted', false]]);
  assert.match(said[0].message, /device went away while flushing/);
  assert.ok(events.some((e) => e.type === 'final' && e.text === 'all of it'));
});
