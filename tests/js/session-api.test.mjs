// The Session's public surface, as a page on another origin uses it (issue 19): grants from the caller's
// getGrant/endGrant, listeners with on/off, an AbortSignal, single use, coded events, and no way to read the grant's
// token from the object. The provider sockets and the audio source are doubles; the Session is the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';

import { Session, SessionError } from '../../static/session.js';
import { fakeSocketClass } from './support/fakes.mjs';
import { deferred, frame, ready, sleep, source, tick } from './support/session-fakes.mjs';

Math.random = () => 0; // backoff jitter: no wait

const TOKEN = 'SECRET-TOKEN-8c1f';

/** A caller's own grant source: counts requests and ends, and refuses the app's fetch (it must not be used). */
function ownGrants() {
  const Sock = fakeSocketClass();
  const g = { Sock, requests: [], ends: [], signals: [], hold: null };
  globalThis.fetch = async (url) => { throw new Error(`the app's endpoint was called: ${url}`); };
  g.getGrant = async (request, { signal }) => {
    g.requests.push(request);
    g.signals.push(signal);
    if (g.hold) await g.hold;
    const n = g.requests.length;
    return {
      provider: 'local', protocol: 'truebar', ws_url: 'ws://engine.test/stream', token: `${TOKEN}${n}`,
      sample_rate: 16000, frame_samples: 1600, session_id: `own${n}`,
    };
  };
  g.endGrant = (grant, { beacon }) => g.ends.push({ id: grant.session_id, beacon });
  return g;
}

function session(g, options = {}) {
  const src = source();
  const s = new Session({
    provider: 'local',
    getGrant: g.getGrant,
    endGrant: g.endGrant,
    clientOptions: { WebSocketImpl: g.Sock },
    source: async (o) => { src.onFrame = o.onFrame; return src; },
    ...options,
  });
  return { s, src };
}

async function streaming(g, options) {
  const { s, src } = session(g, options);
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(g.Sock.instances.at(-1));
  await started;
  return { s, src };
}

const segment = (text, startMs, endMs) => ({
  type: 'TEXT_SEGMENT',
  textSegment: { isFinal: true, startTimeMs: startMs, endTimeMs: endMs, tokens: [{ text, startOffsetMs: 0, endOffsetMs: endMs - startMs }] },
});

test('grants come from the caller: getGrant is asked (first, then reconnect), endGrant told, the app never called', async () => {
  const g = ownGrants();
  const { s, src } = await streaming(g, { tag: 'model-a' });
  assert.deepEqual(g.requests, [{ provider: 'local', tag: 'model-a', reconnect: false }]);
  assert.ok(g.signals[0] instanceof AbortSignal);
  assert.ok(g.Sock.instances[0].url.includes(`${TOKEN}1`), 'the socket uses the grant the caller minted');
  src.onFrame(frame());
  g.Sock.instances[0].serverClose(1006);
  await sleep(20);
  assert.deepEqual(g.requests[1], { provider: 'local', tag: 'model-a', reconnect: true });
  assert.deepEqual(g.ends, [{ id: 'own1', beacon: false }], 'the lost grant is released');
  ready(g.Sock.instances[1]);
  await sleep(20);
  const stopping = s.stop();
  await tick();
  g.Sock.instances[1].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.equal(s.state, 'stopped');
  assert.deepEqual(g.ends.map((e) => e.id), ['own1', 'own2']);
});

test('endGrant({beacon: true}) hands the beacon flag to the caller, once per grant', async () => {
  const g = ownGrants();
  const { s } = await streaming(g);
  s.endGrant({ beacon: true });
  s.endGrant({ beacon: true });
  assert.deepEqual(g.ends, [{ id: 'own1', beacon: true }]);
  s.cancel();
});

test('the token cannot be read from the object, its diagnostics or its events', async () => {
  const g = ownGrants();
  const seen = [];
  const { s, src } = await streaming(g, { onEvent: (e) => seen.push(e), onStateChange: (...a) => seen.push(a) });
  src.onFrame(frame());
  g.Sock.instances[0].push(segment('hello', 0, 100));
  await tick();
  assert.equal(Object.keys(s).length, 0, 'no own enumerable fields');
  assert.equal('grant' in s, false);
  assert.equal(JSON.stringify(s), '{}');
  const visible = JSON.stringify({ diagnostics: s.diagnostics(), seen, capabilities: s.capabilities, provider: s.provider });
  assert.ok(!visible.includes(TOKEN), visible);
  assert.ok(seen.some((e) => e.type === 'final' && e.text === 'hello' && e.timing === 'provider'), 'the events did arrive');
  s.cancel();
});

test('on(type) gets that type, on("event") every event, on("state") each change; off and the returned function remove', async () => {
  const g = ownGrants();
  const { s, src } = session(g);
  const finals = [];
  const all = [];
  const states = [];
  const offFinal = s.on('final', (e) => finals.push(e.text));
  s.on('event', (e) => all.push(e.type));
  const stateFn = (e) => states.push(`${e.from}>${e.to}`);
  s.on('state', stateFn);
  s.on('final', () => { throw new Error('a broken listener'); }); // logged; the others still run
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(g.Sock.instances[0]);
  await started;
  src.onFrame(frame());
  const ws = g.Sock.instances[0];
  const quiet = console.error;
  console.error = () => {};
  try {
    ws.push(segment('one', 0, 100));
    await tick();
    offFinal();
    ws.push(segment('two', 100, 200));
    await tick();
  } finally {
    console.error = quiet;
  }
  assert.deepEqual(finals, ['one']);
  assert.deepEqual(all.filter((t) => t === 'final').length, 2);
  assert.equal(all.every((t) => typeof t === 'string'), true);
  assert.deepEqual(states, ['idle>starting', 'starting>connecting', 'connecting>streaming']);
  s.off('state', stateFn);
  s.cancel();
  assert.equal(states.length, 3, 'off() removed the state listener');
});

test('single-use: a second start() throws SessionError already_started, and the first session is untouched', async () => {
  const g = ownGrants();
  const { s } = await streaming(g);
  await assert.rejects(s.start(), (err) => err instanceof SessionError && err.code === 'already_started');
  assert.equal(s.state, 'streaming');
  s.cancel();
  await assert.rejects(s.start(), (err) => err.code === 'already_started');
});

test('an AbortSignal cancels: the grant request under way is aborted and the session ends cancelled', async () => {
  const g = ownGrants();
  let release;
  g.hold = new Promise((r) => { release = r; });
  const ac = new AbortController();
  const { s } = session(g, { signal: ac.signal });
  const started = s.start();
  await tick();
  ac.abort();
  assert.equal(s.state, 'cancelled');
  assert.equal(g.signals[0].aborted, true, "the caller's getGrant is told to give up");
  release();
  await assert.rejects(started);
  assert.equal(g.Sock.instances.length, 0, 'no socket was opened');
});

test('a signal aborted before start() rejects start() with its reason and asks for no grant', async () => {
  const g = ownGrants();
  const ac = new AbortController();
  ac.abort(new Error('gone'));
  const { s } = session(g, { signal: ac.signal });
  assert.equal(s.state, 'cancelled');
  await assert.rejects(s.start(), /gone/);
  assert.equal(g.requests.length, 0);
});

test('a signal aborted while start() is under way rejects start() with its reason, wherever the start was', async () => {
  for (const stage of ['grant', 'source', 'connecting']) {
    const g = ownGrants();
    let release = () => {};
    const held = new Promise((r) => { release = r; });
    if (stage === 'grant') g.hold = held;
    const ac = new AbortController();
    const options = { signal: ac.signal };
    // The microphone prompt still open: the source arrives when the test lets it.
    if (stage === 'source') options.source = async () => { await held; return source(); };
    const { s } = session(g, options);
    const started = s.start();
    for (let i = 0; i < 5; i++) await tick();
    if (stage === 'connecting') assert.equal(s.state, 'connecting');
    const reason = new Error('user navigated away');
    ac.abort(reason);
    release();
    await assert.rejects(started, (err) => err === reason, stage);
    assert.equal(s.state, 'cancelled', stage);
  }
});

test('errors carry codes: a provider error is code "protocol" in the event and in the state detail', async () => {
  const g = ownGrants();
  const events = [];
  const details = [];
  const { s } = await streaming(g, { onEvent: (e) => events.push(e), onStateChange: (_f, to, d) => details.push([to, d]) });
  g.Sock.instances[0].push({ type: 'WARNING', message: 'slow' });
  g.Sock.instances[0].push({ type: 'ERROR', message: 'bad config' });
  await sleep(10);
  const warning = events.find((e) => e.type === 'warning');
  assert.equal(warning.code, 'provider_warning');
  const error = events.find((e) => e.type === 'error');
  assert.equal(error.code, 'protocol');
  assert.equal(s.state, 'error');
  assert.equal(details.at(-1)[1].code, 'protocol');
});

test('a refusal with an HTTP status from getGrant ends the reconnects at once, its code in the state', async () => {
  const g = ownGrants();
  const details = [];
  const { s } = await streaming(g, { onStateChange: (_f, to, d) => details.push([to, d]) });
  // The next grant request is refused the way a token endpoint refuses: an error with an HTTP status.
  g.hold = Promise.reject(Object.assign(new Error('token endpoint says no'), { status: 401, code: 'unauthorized' }));
  g.hold.catch(() => {});
  g.Sock.instances[0].serverClose(1006);
  await sleep(30);
  assert.equal(s.state, 'error');
  assert.equal(g.requests.length, 2, 'one reconnect attempt, no retries after a 401');
  assert.equal(details.at(-1)[1].code, 'unauthorized', "the refusal's own code, to act on");
});

test('a Session needs a provider name', () => {
  assert.throws(() => new Session({}), TypeError);
});

test('an onStateChange that throws is reported like a listener, and the state listeners still hear every change', async () => {
  const g = ownGrants();
  const states = [];
  const heard = [];
  const failed = [];
  const logged = console.error;
  console.error = (...args) => failed.push(args[0]);
  try {
    const { s, src } = session(g, {
      onStateChange: (_from, to) => { states.push(to); throw new Error('a page bug'); },
    });
    s.on('state', (change) => heard.push(change.to));
    const started = s.start();
    for (let i = 0; i < 5; i++) await tick();
    ready(g.Sock.instances.at(-1));
    await started;
    src.onFrame(frame());
    const stopping = s.stop();
    await tick();
    g.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
    await stopping;
    assert.equal(s.state, 'stopped');
    assert.deepEqual(states, ['starting', 'connecting', 'streaming', 'stopping', 'stopped']);
    assert.deepEqual(heard, states, 'a throwing onStateChange kept the state listeners from hearing the change');
    assert.equal(failed.length, states.length, String(failed));
  } finally {
    console.error = logged;
  }
});

test('start() after cancel() or stop() rejects at once with SessionError ended, and asks for no grant', async () => {
  for (const end of ['cancel', 'stop']) {
    const g = ownGrants();
    const { s } = session(g);
    if (end === 'cancel') s.cancel();
    else await s.stop();
    assert.equal(s.state, end === 'cancel' ? 'cancelled' : 'stopped');
    await assert.rejects(s.start(), (err) => err instanceof SessionError && err.code === 'ended' && err.message.includes(s.state));
    assert.equal(g.requests.length, 0, `no grant asked for after ${end}`);
    assert.equal(g.Sock.instances.length, 0);
    await assert.rejects(s.start(), (err) => err.code === 'already_started', 'and a second call is a second call');
  }
});

test('a first grant that ran out while the user read the microphone prompt is replaced before connecting (injected clock)', async () => {
  const g = ownGrants();
  let now = 1_000_000;
  const plain = g.getGrant;
  g.getGrant = async (request, init) => ({ ...(await plain(request, init)), expires_in: 60 });
  const prompt = deferred();
  const states = [];
  const mic = { ...source(), onFrame: null };
  const { s } = session(g, {
    now: () => now,
    source: undefined,
    microphone: async (o) => { await prompt.promise; mic.onFrame = o.onFrame; return mic; },
    onStateChange: (_from, to, detail) => states.push([to, detail.code ?? '']),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  now += 90_000; // the user answers the permission prompt after 90 s: the 60 s grant has run out
  prompt.resolve();
  for (let i = 0; i < 3; i++) await tick();
  mic.onFrame(frame()); // captured while the fresh grant is on its way
  for (let i = 0; i < 10; i++) await tick();
  assert.equal(g.requests.length, 2, 'a fresh grant was asked for');
  assert.deepEqual(g.ends.map((e) => e.id), ['own1'], 'the expired one was ended');
  assert.equal(g.Sock.instances.length, 1, 'no socket opened with the expired token');
  const ws = g.Sock.instances[0];
  assert.match(ws.url, new RegExp(`${TOKEN}2`));
  ready(ws);
  await started;
  mic.onFrame(frame());
  assert.equal(s.state, 'streaming');
  assert.equal(ws.binaries.length, 2, 'the audio captured meanwhile went to the new connection, then the live audio');
  assert.ok(!states.some(([to]) => to === 'error'));
  s.cancel();
});

test('a shared AbortSignal keeps no listener of a session that is over, whichever way it ended', async () => {
  const ac = new AbortController(); // one signal for recording after recording, as a page may keep
  for (const end of ['stop', 'cancel', 'error']) {
    const g = ownGrants();
    const { s } = await streaming(g, { signal: ac.signal });
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1, `${end}: the session listens while it runs`);
    if (end === 'stop') {
      const stopping = s.stop();
      await tick();
      g.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
      await stopping;
    } else if (end === 'cancel') {
      s.cancel();
    } else {
      g.Sock.instances[0].push({ type: 'ERROR', message: 'bad config' });
      await sleep(10);
    }
    assert.equal(s.state, { stop: 'stopped', cancel: 'cancelled', error: 'error' }[end]);
    assert.deepEqual(getEventListeners(ac.signal, 'abort'), [], `${end}: the signal would keep the finished session alive`);
  }
});

test('a reconnect grant for another sample rate or frame size ends the session in error, without a retry', async () => {
  for (const [field, other] of [['sample_rate', 24000], ['frame_samples', 480]]) {
    const g = ownGrants();
    const details = [];
    const events = [];
    // A backend that fails over to another provider on the reconnect: its grant is for other audio.
    const getGrant = async (request, init) => {
      const grant = await g.getGrant(request, init);
      return request.reconnect ? { ...grant, [field]: other } : grant;
    };
    const { s, src } = await streaming(g, {
      getGrant, onStateChange: (_from, to, detail) => details.push([to, detail]), onEvent: (e) => events.push(e),
    });
    src.onFrame(frame());
    g.Sock.instances[0].serverClose(1006);
    await sleep(30);
    assert.equal(s.state, 'error', field);
    assert.match(details.at(-1)[1].message, new RegExp(`${other}`), field);
    assert.match(details.at(-1)[1].message, /the audio source was opened for 16000 Hz in frames of 1600/, field);
    assert.equal(g.requests.length, 2, `${field}: not retried`);
    assert.equal(g.Sock.instances.length, 1, `${field}: no client for the grant of other audio`);
    assert.deepEqual(g.ends.map((e) => e.id), ['own1', 'own2'], `${field}: the refused grant is handed back`);
    assert.ok(!events.some((e) => e.type === 'reconnected'), field);
  }
});

test('start() rejects with SessionError ended when stop() or cancel() ends the session before audio flows', async () => {
  for (const [stage, action] of [['grant', 'cancel'], ['microphone prompt', 'stop'], ['connecting', 'cancel']]) {
    const g = ownGrants();
    let release = () => {};
    if (stage === 'grant') g.hold = new Promise((r) => { release = r; });
    const prompt = deferred();
    const { s } = session(g, stage === 'microphone prompt' ? { source: undefined, microphone: () => prompt.promise } : {});
    const started = s.start();
    started.catch(() => {});
    for (let i = 0; i < 5; i++) await tick();
    if (stage === 'connecting') assert.equal(s.state, 'connecting');
    await s[action]();
    release();
    await assert.rejects(started, (err) => {
      assert.ok(err instanceof SessionError, `${stage}: ${err}`);
      assert.equal(err.code, 'ended', stage);
      return true;
    });
    assert.equal(s.state, action === 'stop' ? 'stopped' : 'cancelled', stage);
    prompt.resolve(source());
  }
});

test('stop() while connecting: start() resolves once the audio reaches the provider, stop() with the last finals', async () => {
  const g = ownGrants();
  const { s, src } = session(g);
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(s.state, 'connecting');
  src.onFrame(frame());
  const stopping = s.stop();
  ready(g.Sock.instances[0]);
  await started;
  assert.equal(s.state, 'stopping');
  assert.equal(g.Sock.instances[0].binaries.length, 1, 'the audio captured while connecting went out');
  await tick();
  g.Sock.instances[0].push({ type: 'STATUS', status: 'FINISHED' });
  await stopping;
  assert.equal(s.state, 'stopped');
});

test('stop() or cancel() from a state listener on starting: no grant is asked for', async () => {
  for (const action of ['cancel', 'stop']) {
    const g = ownGrants();
    const { s } = session(g);
    s.on('state', ({ to }) => { if (to === 'starting') s[action](); });
    const err = await s.start().then(() => null, (e) => e);
    assert.equal(g.requests.length, 0, `${action}: a grant was minted only to be ended`);
    assert.ok(err instanceof SessionError && err.code === 'ended', `${action}: ${err}`);
    assert.equal(s.state, action === 'stop' ? 'stopped' : 'cancelled');
  }
});
