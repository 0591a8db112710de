// static/grants.js: the grant source a session uses (the caller's getGrant/endGrant, or this app's endpoints) and
// the GrantKeeper that bounds, aborts and ends its grants. Fake timers and a fake fetch: no network, no waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ApiError, END_ATTEMPTS, GrantKeeper, appGrants, isRetryable } from '../../static/grants.js';
import { FakeTimers, tick } from './support/fakes.mjs';

const GRANT = { provider: 'local', protocol: 'truebar', ws_url: 'ws://x.test/s', token: 'T', sample_rate: 16000, frame_samples: 1600, session_id: 'abc' };

test("request() hands the caller's getGrant the request and a live signal, and resolves with its grant", async () => {
  const seen = [];
  const keeper = new GrantKeeper({ getGrant: async (request, { signal }) => { seen.push([request, signal.aborted]); return GRANT; } });
  assert.equal(await keeper.request({ provider: 'local', reconnect: true }), GRANT);
  assert.deepEqual(seen, [[{ provider: 'local', reconnect: true }, false]]);
});

test('a grant source that does not answer within timeoutMs: ApiError timeout (retryable), and its signal aborts', async () => {
  const timers = new FakeTimers();
  let signal;
  const keeper = new GrantKeeper({ getGrant: (_, init) => { signal = init.signal; return new Promise(() => {}); }, timeoutMs: 5000, timers });
  const pending = keeper.request({ provider: 'local', reconnect: false });
  timers.advance(4999);
  assert.equal(signal.aborted, false);
  timers.advance(1);
  await assert.rejects(pending, (err) => err instanceof ApiError && err.code === 'timeout' && err.status === 0 && /5 s/.test(err.message));
  assert.equal(signal.aborted, true);
  assert.equal(timers.pending.size, 0, 'no timer left behind');
});

test('abortAll() aborts every request under way', async () => {
  const signals = [];
  const keeper = new GrantKeeper({ getGrant: (_, { signal }) => { signals.push(signal); return new Promise(() => {}); }, timers: new FakeTimers() });
  keeper.request({ provider: 'a', reconnect: false });
  keeper.request({ provider: 'b', reconnect: true });
  keeper.abortAll();
  assert.deepEqual(signals.map((s) => s.aborted), [true, true]);
});

test('end() tells the source once per grant, with the beacon flag; a throwing endGrant is logged, not thrown', () => {
  const ends = [];
  const keeper = new GrantKeeper({ getGrant: async () => GRANT, endGrant: (g, { beacon }) => ends.push([g.session_id, beacon]) });
  keeper.end(GRANT, true);
  keeper.end(GRANT);
  keeper.end(null);
  assert.deepEqual(ends, [['abc', true]]);
  const logged = [];
  const quiet = console.error;
  console.error = (...args) => logged.push(args);
  try {
    new GrantKeeper({ getGrant: async () => GRANT, endGrant: () => { throw new Error('down'); } }).end(GRANT);
  } finally {
    console.error = quiet;
  }
  assert.equal(logged.length, 1);
});

test('an async endGrant that rejects is logged, never an unhandled rejection', async () => {
  const logged = [];
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const quiet = console.error;
  console.error = (...args) => logged.push(args);
  try {
    // A page's own backend is down when the session ends: its fetch rejects.
    new GrantKeeper({ getGrant: async () => GRANT, endGrant: async () => { throw new Error('fetch failed'); } }).end(GRANT);
    await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    console.error = quiet;
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(unhandled, []);
  assert.equal(logged.length, 1);
  assert.match(String(logged[0][1]), /fetch failed/);
});

test("a caller's getGrant without endGrant ends nothing (this app's /end would not know its grants)", () => {
  const calls = [];
  globalThis.fetch = async (url) => { calls.push(url); return { ok: true, status: 200, json: async () => ({}) }; };
  new GrantKeeper({ getGrant: async () => GRANT }).end(GRANT);
  assert.deepEqual(calls, []);
});

test("appGrants(): this app's mint and end endpoints, at a base URL; refusals become ApiErrors with the server's code", async () => {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push([url, init.method, init.body]);
    if (url.endsWith('/api/sessions') && JSON.parse(init.body).provider === 'wiro') {
      return { ok: false, status: 403, json: async () => ({ error: { code: 'forbidden', message: 'Refused.' } }) };
    }
    return { ok: true, status: 200, json: async () => GRANT };
  };
  const app = appGrants('https://stt.example');
  const signal = new AbortController().signal;
  assert.deepEqual(await app.getGrant({ provider: 'local', tag: 'big', reconnect: false }, { signal }), GRANT);
  assert.deepEqual(calls[0], ['https://stt.example/api/sessions', 'POST', '{"provider":"local","tag":"big"}']);
  await assert.rejects(app.getGrant({ provider: 'wiro', reconnect: false }, { signal }), (err) => {
    assert.ok(err instanceof ApiError);
    assert.deepEqual([err.status, err.code, err.message], [403, 'forbidden', 'Refused.']);
    assert.equal(isRetryable(err), false, 'a refusal is not retried');
    return true;
  });
  app.endGrant(GRANT, { beacon: false });
  await tick();
  assert.deepEqual(calls.at(-1).slice(0, 2), ['https://stt.example/api/sessions/local/abc/end', 'POST']);
  const before = calls.length;
  app.endGrant({ ...GRANT, session_id: undefined }, { beacon: false });
  assert.equal(calls.length, before, 'a grant without a session id holds nothing to end');
  const beacons = [];
  globalThis.navigator = { sendBeacon: (url) => { beacons.push(url); return true; } };
  try {
    app.endGrant(GRANT, { beacon: true });
  } finally {
    delete globalThis.navigator;
  }
  assert.deepEqual(beacons, ['https://stt.example/api/sessions/local/abc/end']);
});

test('isRetryable: no status, or 0/429/502/503/504, may be retried; any other status may not', () => {
  assert.equal(isRetryable(new Error('network')), true);
  for (const status of [0, 429, 502, 503, 504]) assert.equal(isRetryable({ status }), true, String(status));
  for (const status of [400, 401, 403, 404, 500]) assert.equal(isRetryable({ status }), false, String(status));
});

test("an end the server refuses with 503 (its shared state is down) is sent again after Retry-After, a bounded number of times", async () => {
  const timers = new FakeTimers();
  const calls = [];
  let answers = [];
  globalThis.fetch = async (url, init) => {
    calls.push([url, init.method]);
    const status = answers.shift() ?? 200;
    return { ok: status < 400, status, headers: new Headers(status === 503 ? { 'Retry-After': '5' } : {}), json: async () => ({}) };
  };
  const app = appGrants('', { timers });
  // Refused twice, then the server's store answers: three sends, each after the Retry-After asked for.
  answers = [503, 503, 200];
  const done = app.endGrant(GRANT, { beacon: false });
  await tick();
  assert.equal(calls.length, 1);
  timers.advance(4999);
  await tick();
  assert.equal(calls.length, 1, 'not before Retry-After');
  timers.advance(1);
  await tick();
  assert.equal(calls.length, 2);
  timers.advance(5000);
  await done;
  assert.equal(calls.length, 3);
  assert.deepEqual(calls[2], ['/api/sessions/local/abc/end', 'POST']);
  assert.equal(timers.pending.size, 0, 'nothing more once it was ended');

  // A store that stays down: END_ATTEMPTS sends in all, then the end is given up (never an error thrown).
  calls.length = 0;
  answers = Array(10).fill(503);
  const given = app.endGrant(GRANT, { beacon: false });
  for (let i = 0; i < 10; i += 1) {
    await tick();
    timers.advance(5000);
  }
  await given;
  assert.equal(calls.length, END_ATTEMPTS);
  assert.ok(END_ATTEMPTS >= 3 && END_ATTEMPTS <= 6);

  // Other refusals are final: a 429 or a 400 is not sent again.
  for (const status of [429, 400]) {
    calls.length = 0;
    answers = [status, 200];
    await app.endGrant(GRANT, { beacon: false });
    timers.advance(60000);
    await tick();
    assert.equal(calls.length, 1, String(status));
  }
});
