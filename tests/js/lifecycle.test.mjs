// static/lifecycle.js on its own: the start sequence (grant, source, client; what was got is let go of when the
// session ends meanwhile) and the bounded finish (the source's tail, the last finals through a reconnect, the
// timeout), with fake hosts and fake timers; and static/session-diagnostics.js's arithmetic. No session, no sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { runFinish, runStart, stopTimeoutMessage } from '../../static/lifecycle.js';
import { sessionDiagnostics } from '../../static/session-diagnostics.js';
import { FakeTimers, tick } from './support/fakes.mjs';

const GRANT = { provider: 'local', protocol: 'truebar', ws_url: 'ws://x.test/1', token: 'T', sample_rate: 16000, frame_samples: 1600, session_id: 's1' };

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/**
 * A start host that records what it is asked, in order; `state` is what `starting()` reads, and `end(state)` ends
 * the session as the reducer would (the state, then `ended` settles).
 */
function startHost({ grant = () => Promise.resolve(GRANT), source = () => Promise.resolve(capture()), clientStart = () => Promise.resolve() } = {}) {
  const log = [];
  const over = deferred();
  const h = {
    state: 'idle',
    log,
    ended: over.promise,
    end: (state) => { h.state = state; over.resolve(); },
    client: { cancel: () => log.push('client.cancel'), start: () => { log.push('client.start'); return clientStart(); }, expired: () => false },
    link: {
      grant: null,
      client: null,
      first: async () => { log.push('first'); h.link.grant = await grant(); return h.link.grant; },
      open: () => { log.push('open'); h.link.client = h.client; return h.client; },
      end: () => log.push('end-grant'),
    },
    starting: () => h.state === 'starting',
    audio: {
      prepare: (g) => log.push(`prepare ${g.session_id}`),
      open: () => { log.push('openSource'); return source(); },
      use: (c, now) => log.push(`use ${c.name} at ${now}`),
      handOver: () => log.push('handOver'),
    },
    now: () => 42,
    step: (input) => {
      log.push(`step ${input.type}`);
      if (input.type === 'start') h.state = 'starting';
    },
    fail: (err) => log.push(`fail ${err.message}`),
  };
  return h;
}

function capture(name = 'mic') {
  return { name, released: false, async release() { this.released = true; } };
}

test('runStart: start, grant, prepare, client, source, use, source-opened, client started, connected', async () => {
  const h = startHost();
  await runStart(h);
  assert.deepEqual(h.log, ['step start', 'first', 'prepare s1', 'open', 'openSource', 'use mic at 42', 'step source-opened', 'client.start', 'step connected']);
});

test('runStart: a refused grant fails the session and rejects with the refusal', async () => {
  const h = startHost({ grant: () => Promise.reject(new Error('no grant')) });
  await assert.rejects(runStart(h), /no grant/);
  assert.deepEqual(h.log, ['step start', 'first', 'fail no grant']);
});

test('runStart: ended while the grant was awaited: the grant is ended, no client, no source', async () => {
  const g = deferred();
  const h = startHost({ grant: () => g.promise });
  const started = runStart(h);
  await tick();
  h.state = 'stopped';
  g.resolve(GRANT);
  await assert.rejects(started, /ended before it started/);
  assert.deepEqual(h.log, ['step start', 'first', 'end-grant']);
});

test('runStart: a source that cannot open cancels the client and fails the session (or, once ended, ends the grant)', async () => {
  const h = startHost({ source: () => Promise.reject(new Error('denied')) });
  await assert.rejects(runStart(h), /denied/);
  assert.deepEqual(h.log.slice(-2), ['client.cancel', 'fail denied']);

  const s = deferred();
  const ended = startHost({ source: () => s.promise });
  const started = runStart(ended);
  await tick();
  ended.state = 'cancelled';
  s.reject(new Error('denied'));
  await assert.rejects(started, /denied/);
  assert.deepEqual(ended.log.slice(-2), ['client.cancel', 'end-grant']);
});

test('runStart: ended while the source opened: the source is released, the client cancelled, the grant ended', async () => {
  const s = deferred();
  const h = startHost({ source: () => s.promise });
  const started = runStart(h);
  await tick();
  h.state = 'stopped';
  const mic = capture();
  s.resolve(mic);
  await assert.rejects(started, /ended before it started/);
  assert.equal(mic.released, true);
  assert.deepEqual(h.log.slice(-2), ['client.cancel', 'end-grant']);
  assert.ok(!h.log.includes('step source-opened'));
});

test('runStart: ended while the source is still opening (a permission prompt): rejects at once, a source that comes later is released', async () => {
  for (const state of ['stopped', 'cancelled']) {
    const s = deferred();
    const h = startHost({ source: () => s.promise });
    const started = runStart(h);
    await tick();
    h.end(state);
    const outcome = await Promise.race([started.then(() => 'resolved', (err) => err.message), tick().then(() => 'pending')]);
    assert.match(outcome, /ended before it started/, state);
    assert.deepEqual(h.log.slice(-2), ['client.cancel', 'end-grant'], state);
    const mic = capture();
    s.resolve(mic);
    await tick();
    assert.equal(mic.released, true, `${state}: the prompt answered after the end`);
    assert.ok(!h.log.includes('step source-opened'), state);
  }
});

test('runStart: a grant that ran out while the source opened (a long permission prompt) is replaced before the client starts', async () => {
  const grants = [GRANT, { ...GRANT, token: 'T2', session_id: 's2' }];
  const h = startHost({ grant: () => Promise.resolve(grants.shift()) });
  const stale = h.client;
  stale.expired = () => true;
  const fresh = { cancel: () => h.log.push('fresh.cancel'), start: () => { h.log.push('fresh.start'); return Promise.resolve(); }, expired: () => false };
  h.link.open = () => { h.log.push('open'); h.link.client = h.link.client ? fresh : stale; return h.link.client; };
  await runStart(h);
  assert.deepEqual(h.log, ['step start', 'first', 'prepare s1', 'open', 'openSource', 'use mic at 42',
    'client.cancel', 'end-grant', 'first', 'open', 'handOver', 'step source-opened', 'fresh.start', 'step connected']);
  assert.equal(h.link.grant.session_id, 's2');
});

test('runStart: a fresh grant for another rate, or refused, fails the session; ended meanwhile, the source is released', async () => {
  const other = startHost({ grant: (() => { let n = 0; return () => Promise.resolve(n++ ? { ...GRANT, sample_rate: 24000 } : GRANT); })() });
  other.client.expired = () => true;
  await assert.rejects(runStart(other), /24000 Hz/);
  assert.match(other.log.at(-1), /^fail The fresh grant is for 24000 Hz/);

  const g = deferred();
  const src = capture();
  const stopped = startHost({ grant: (() => { let n = 0; return () => (n++ ? g.promise : Promise.resolve(GRANT)); })(), source: () => Promise.resolve(src) });
  stopped.client.expired = () => true;
  const started = runStart(stopped);
  for (let i = 0; i < 10; i++) await tick();
  stopped.state = 'stopped';
  g.resolve(GRANT);
  await assert.rejects(started, /ended before it started/);
  assert.ok(src.released, 'the microphone is let go of');
  assert.deepEqual(stopped.log.slice(-2), ['first', 'end-grant'], 'the fresh grant is ended');
});

test('runStart: a client that cannot connect fails the session', async () => {
  const h = startHost({ clientStart: () => Promise.reject(new Error('socket refused')) });
  await assert.rejects(runStart(h), /socket refused/);
  assert.deepEqual(h.log.slice(-2), ['client.start', 'fail socket refused']);
});

/** A finish host: a source with a tail, a link whose client finishes when told, and what the host is told. */
function finishHost({ lost = false, rounds = 8 } = {}) {
  const log = [];
  const timers = new FakeTimers();
  const h = {
    log, timers, rounds, isLost: lost, isStopping: true,
    source: { stop: async () => { log.push('source.stop'); } },
    clientStop: null,
    outage: deferred(),
    link: {
      client: null,
      wake: () => log.push('wake'),
      get outageEnded() { return h.outage.promise; },
      end: () => log.push('end-grant'),
    },
    lost: () => h.isLost,
    stopping: () => h.isStopping,
    sourceFailed: (err) => log.push(`sourceFailed ${err.message}`),
    unfinished: () => log.push('unfinished'),
    timedOut: (boundMs) => log.push(`timedOut ${boundMs}`),
    finished: () => log.push('finished'),
  };
  h.link.client = { stop: () => { log.push('client.stop'); return h.clientStop ? h.clientStop.promise : Promise.resolve(); } };
  return h;
}

test('runFinish: the source tail, then the client finishes; the grant ended, finished said, no timer left', async () => {
  const h = finishHost();
  await runFinish(h, 30_000);
  assert.deepEqual(h.log, ['source.stop', 'client.stop', 'end-grant', 'finished']);
  assert.equal(h.timers.pending.size, 0);
});

test("runFinish: a source whose tail fails is reported, and the client still finishes", async () => {
  const h = finishHost();
  h.source = { stop: async () => { h.log.push('source.stop'); throw new Error('device went away while flushing'); } };
  await runFinish(h, 30_000);
  assert.deepEqual(h.log, ['source.stop', 'sourceFailed device went away while flushing', 'client.stop', 'end-grant', 'finished']);
});

test('runFinish: during an outage, the backoff is woken and the replacement awaited, then it finishes', async () => {
  const h = finishHost({ lost: true });
  const finishing = runFinish(h, 30_000);
  await tick();
  assert.deepEqual(h.log, ['source.stop', 'wake']);
  h.isLost = false;
  h.outage.resolve();
  await finishing;
  assert.deepEqual(h.log, ['source.stop', 'wake', 'client.stop', 'end-grant', 'finished']);
});

test('runFinish: a connection lost while the last finals were awaited is replaced, and that one finishes', async () => {
  const h = finishHost();
  h.clientStop = deferred();
  const finishing = runFinish(h, 30_000);
  await tick();
  h.isLost = true; // the socket dropped during the client's stop
  h.clientStop.resolve();
  await tick();
  assert.deepEqual(h.log, ['source.stop', 'client.stop', 'wake']);
  h.isLost = false;
  h.clientStop = null;
  h.outage.resolve();
  await finishing;
  assert.deepEqual(h.log.slice(-3), ['client.stop', 'end-grant', 'finished']);
});

test('runFinish: a replacement ready before the lost client has closed (a half-open socket) is finished too', async () => {
  const h = finishHost();
  h.clientStop = deferred();
  const finishing = runFinish(h, 30_000);
  await tick();
  // The first client gave up waiting for the end; its socket's close is still awaited while the replacement, with
  // the audio no final covered, is already up.
  h.link.client = { stop: () => { h.log.push('replacement.stop'); return Promise.resolve(); } };
  h.clientStop.resolve();
  await finishing;
  assert.deepEqual(h.log, ['source.stop', 'client.stop', 'replacement.stop', 'end-grant', 'finished']);
});

test('runFinish: a connection lost after every end of stream, rounds run out: unfinished, then finished, never a clean end', async () => {
  for (const lastRound of ['lost', 'replaced']) {
    const h = finishHost({ rounds: 1 });
    // Each client's stop ends with its connection lost; the outage ends with a replacement up.
    let n = 0;
    const stopThenLose = () => {
      h.log.push(`client${n}.stop`);
      // 'replaced': the last client's stop resolves only after its replacement, with the held audio, is up.
      if (lastRound === 'replaced' && n === 1) h.link.client = { stop: stopThenLose };
      else h.isLost = true;
      return Promise.resolve();
    };
    h.link.client = { stop: stopThenLose };
    h.link.wake = () => {
      h.log.push('wake');
      n += 1;
      h.link.client = { stop: stopThenLose };
      h.isLost = false;
    };
    h.outage.resolve(); // each outage ends as soon as it is woken
    await runFinish(h, 30_000);
    assert.deepEqual(h.log.slice(-3), ['unfinished', 'end-grant', 'finished'], lastRound);
    assert.equal(h.log.filter((l) => l.endsWith('.stop') && l !== 'source.stop').length, 2, 'rounds + 1 clients asked to finish');
    assert.equal(h.timers.pending.size, 0);
  }
});

test('runFinish: an outage that ends the session (no longer stopping) ends the finish without asking a client', async () => {
  const h = finishHost({ lost: true });
  const finishing = runFinish(h, 30_000);
  await tick();
  h.isStopping = false;
  h.outage.resolve();
  await finishing;
  assert.deepEqual(h.log, ['source.stop', 'wake', 'end-grant', 'finished']);
});

test('runFinish: past the bound, timedOut then finished, even though the client never answers', async () => {
  const h = finishHost();
  h.clientStop = deferred();
  const finishing = runFinish(h, 5000);
  await tick();
  h.timers.advance(4999);
  await tick();
  assert.ok(!h.log.includes('timedOut 5000'));
  h.timers.advance(1);
  await finishing;
  assert.deepEqual(h.log.slice(-3), ['timedOut 5000', 'end-grant', 'finished']);
});

test('runFinish: the bound is 30 s unless the session says otherwise', async () => {
  const h = finishHost();
  h.clientStop = deferred();
  const finishing = runFinish(h, undefined);
  await tick();
  h.timers.advance(29_999);
  await tick();
  assert.ok(!h.log.some((l) => l.startsWith('timedOut')));
  h.timers.advance(1);
  await finishing;
  assert.ok(h.log.includes('timedOut 30000'));
});

test('stopTimeoutMessage says the bound and what was not transcribed, in seconds', () => {
  assert.equal(stopTimeoutMessage(30_000, 2500), 'Stopped after 30 s without the last words: 2.5 s of audio were not transcribed.');
  assert.equal(stopTimeoutMessage(1250, 0), 'Stopped after 1.3 s without the last words: 0.0 s of audio were not transcribed.');
});

test("sessionDiagnostics: frames expected from the source's clock while it is the first source, else the wall clock", () => {
  const ctx = { currentTime: 12 };
  const mic = { context: ctx, contextRate: 48000, deviceLabel: 'Mic', deviceSettings: { sampleRate: 48000 } };
  const facts = {
    grant: { ...GRANT, expires_at: 0 }, capture: mic, clockStart: { capture: mic, time: 2 }, startedAt: 1000, now: 4000,
    replay: { buffer: { totalSamples: 16000 * 9 }, bufferedMs: 300, droppedMs: 0 }, clientFramesSent: 90,
    socketState: 'open', sessionState: 'streaming', reconnects: 1,
  };
  const d = sessionDiagnostics(facts);
  assert.equal(d.framesExpected, 100, '10 s of the context clock at 10 frames a second');
  assert.equal(d.framesSent, 90);
  assert.equal(d.ratio, '48000 → 16000 (×0.3333)');
  assert.equal(d.tokenExpiresAt, '1970-01-01T00:00:00.000Z');
  assert.ok(!JSON.stringify(d).includes('ws://'), 'never the URL');
  assert.ok(!Object.values(d).includes('T'), 'never the token');
  const replaced = sessionDiagnostics({ ...facts, capture: { ...mic } });
  assert.equal(replaced.framesExpected, 30, 'a replaced source: 3 s of the wall clock');
  const before = sessionDiagnostics({ ...facts, grant: null, capture: null, replay: null, startedAt: 0 });
  assert.deepEqual([before.framesExpected, before.framesSent, before.providerRate, before.bufferedMs], [0, 0, null, 0]);
});
