// The captions publisher with a fake server and manual timers: numbering, coalescing, retries without loss or
// repetition, a request that never answers, the rate of requests, Retry-After, and stopping when the share ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BATCH_MAX, CaptionPublisher, FAREWELL_MAX_BYTES, FLUSH_MS, REQUEST_TIMEOUT_MS, RETRY_AFTER_MAX_MS, RETRY_MIN_MS, TEXT_MAX, retryAfterMs,
} from '../../static/captions/publisher.js';
import { FakeTimers, tick } from './support/fakes.mjs';

/** No lone surrogate (half an emoji). Not String.prototype.isWellFormed: that is Node 20+, and Debian 12's and
 * Ubuntu 24.04's own nodejs is 18. @param {string} s */
const wellFormed = (s) => !/\p{Cs}/u.test(s);

/** A fake app: records what it accepted, drops finals it already has (as the server does), can fail on demand. */
function fakeServer() {
  const server = {
    finals: /** @type {number[]} */ ([]),
    texts: /** @type {string[]} */ ([]),
    partials: /** @type {string[]} */ ([]),
    bodies: /** @type {any[]} */ ([]),
    hwm: 0,
    fail: 0, // fail this many requests after applying them (the answer is lost)
    status: 200,
    /** @type {string[]} bodies of the next 200 answers in place of the app's (a proxy's, a portal's) */
    foreign: [],
    /** @type {number | undefined} the answers' expires_in (left out while undefined, as an older server does) */
    expiresIn: undefined,
    async fetch(_url, init) {
      const body = JSON.parse(init.body);
      server.bodies.push(body);
      assert.equal(init.headers.Authorization, 'Bearer tok');
      if (server.status !== 200) return new Response('{}', { status: server.status });
      for (const e of body.events) {
        if (e.type === 'final' && e.seq > server.hwm) { server.hwm = e.seq; server.finals.push(e.seq); server.texts.push(e.text); }
        if (e.type === 'partial') server.partials.push(e.text);
      }
      if (server.fail > 0) { server.fail -= 1; throw new TypeError('network'); }
      if (server.foreign.length) return new Response(server.foreign.shift(), { status: 200 });
      return new Response(JSON.stringify({ seq: server.hwm, viewers: 3, expires_at: 100, expires_in: server.expiresIn, live: true }), { status: 200 });
    },
  };
  return server;
}

function timers() {
  /** @type {(() => void)[]} */
  const queue = [];
  return {
    setTimer: (/** @type {() => void} */ fn) => { queue.push(fn); return queue.length; },
    clearTimer: () => {},
    async run() {
      for (let i = 0; i < 100 && queue.length; i += 1) {
        queue.shift()();
        await new Promise((r) => setTimeout(r, 0));
      }
    },
  };
}

test('interims are coalesced and a final supersedes the interim before it', async () => {
  const server = fakeServer();
  const t = timers();
  const statuses = [];
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push(s), ...t });
  p.partial('he');
  p.partial('hello wor');
  p.final('hello world.');
  p.partial('and');
  await t.run();
  assert.deepEqual(server.bodies[0].events, [{ type: 'final', text: 'hello world.', seq: 1 }, { type: 'partial', text: 'and' }]);
  assert.equal(server.bodies.length, 1);
  assert.equal(statuses.at(-1).viewers, 3);
});

test('lost answers are retried and every final arrives once, in order', async () => {
  const server = fakeServer();
  const t = timers();
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', ...t });
  server.fail = 2;
  for (let i = 0; i < 5; i += 1) p.final(`f${i}`);
  await t.run();
  p.final('f5');
  await t.run();
  assert.deepEqual(server.finals, [1, 2, 3, 4, 5, 6]);
  assert.ok(server.bodies.length >= 3);
  assert.equal(p.pending.length, 0);
});

test('a backlog goes in batches the server accepts', async () => {
  const server = fakeServer();
  const t = timers();
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', ...t });
  for (let i = 0; i < 120; i += 1) p.final(`f${i}`);
  await t.run();
  assert.ok(server.bodies.every((b) => b.events.length <= BATCH_MAX));
  assert.equal(server.finals.length, 120);
});

test('a refused batch ends the share visibly instead of holding every later final behind it', async () => {
  const bodies = [];
  const refuse = async (_url, init) => {
    bodies.push(JSON.parse(init.body));
    return new Response(JSON.stringify({ error: { code: 'bad_request', message: 'Each final needs a seq.' } }), { status: 400 });
  };
  const t = timers();
  const statuses = [];
  const p = new CaptionPublisher({ fetch: refuse, shareId: 's', token: 'tok', onStatus: (s) => statuses.push(s), ...t });
  p.final('one.');
  await t.run();
  assert.equal(bodies.length, 1, 'not retried');
  assert.deepEqual([statuses.at(-1).state, statuses.at(-1).reason, statuses.at(-1).detail], ['ended', 'refused', 'Each final needs a seq.']);
  p.final('two.');
  await t.run();
  assert.equal(bodies.length, 1);
});

test('a revoked share stops the publisher', async () => {
  const server = fakeServer();
  const t = timers();
  const statuses = [];
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push(s), ...t });
  server.status = 410;
  p.live(true);
  await t.run();
  assert.equal(statuses.at(-1).state, 'ended');
  assert.equal(statuses.at(-1).reason, 'revoked');
  p.final('after');
  await t.run();
  assert.equal(server.bodies.length, 1);
});

test('text is cut between characters, never inside an emoji', async () => {
  const server = fakeServer();
  const t = timers();
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', ...t });
  // The emoji is two UTF-16 units, the 2000th and 2001st: cut at 2000, half of it would go (a lone surrogate).
  p.final(`${'a'.repeat(1999)}😀 and more`);
  p.final(`${'b'.repeat(1998)}😀 and more`);
  p.partial(`${'c'.repeat(1999)}😀`);
  await t.run();
  assert.deepEqual(server.texts, ['a'.repeat(1999), `${'b'.repeat(1998)}😀`]);
  assert.deepEqual(server.partials, ['c'.repeat(1999)]);
  assert.ok(server.bodies.every((b) => b.events.every((e) => e.text.length <= TEXT_MAX && wellFormed(e.text))));
});

test("a 200 that is not the app's answer is retried like a lost one, never reported with NaN or undefined", async () => {
  const server = fakeServer();
  const t = timers();
  const statuses = [];
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push({ ...s }), ...t });
  server.foreign = ['<html>Sign in to the Wi-Fi</html>', 'null', '[]', '{"viewers": "3", "expires_at": 100, "live": true}',
    '{"viewers": 3, "live": true}', '{"viewers": 3, "expires_at": 100, "live": "yes"}'];
  p.final('one.');
  await t.run();
  const retries = statuses.filter((s) => s.state === 'retrying');
  assert.equal(retries.length, 6, 'each foreign answer is a retry');
  assert.ok(retries.every((s) => s.reason === "HTTP 200, not the app's answer"), retries.map((s) => s.reason).join());
  assert.ok(statuses.every((s) => Number.isInteger(s.viewers) && (s.expiresAt === null || Number.isFinite(s.expiresAt))
    && typeof s.live === 'boolean'), JSON.stringify(statuses));
  assert.deepEqual(statuses.at(-1), { state: 'ok', reason: undefined, viewers: 3, expiresAt: 100000, live: true });
  assert.deepEqual(server.finals, [1], 'the final reached the app once');
  assert.equal(p.pending.length, 0);
});

test("the share's expiry is counted from the answer's arrival, whatever the browser's clock says", async () => {
  const server = fakeServer();
  const t = timers();
  const statuses = [];
  // The server's clock says the share ends at 100 (Unix s); the browser's is an hour ahead of it.
  const browserNow = (100 - 1800 + 3600) * 1000;
  const p = new CaptionPublisher({
    fetch: server.fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push({ ...s }), now: () => browserNow, ...t,
  });
  server.expiresIn = 1800;
  p.final('one.');
  await t.run();
  assert.deepEqual(statuses.at(-1), { state: 'ok', reason: undefined, viewers: 3, expiresAt: browserNow + 1800 * 1000, live: true });
  // An answer without expires_in (an older server): its expires_at, read on the browser's clock, as before.
  server.expiresIn = undefined;
  p.final('two.');
  await t.run();
  assert.equal(statuses.at(-1).expiresAt, 100000);
});

/** Timers and a clock the test moves (`pass`), with the promises in between settled as they would be. */
function clocked() {
  const t = new FakeTimers();
  return {
    deps: { setTimer: t.setTimeout, clearTimer: t.clearTimeout, now: () => t.now },
    timers: t,
    /** Let `ms` of time pass, in steps of `step`. @param {number} ms @param {number} [step] */
    async pass(ms, step = 10) {
      for (let done = 0; done < ms; done += step) {
        t.advance(step);
        for (let i = 0; i < 4; i += 1) await tick();
      }
    },
  };
}

test('a request that never answers is given up after REQUEST_TIMEOUT_MS and retried: nothing lost, nothing twice', async () => {
  const server = fakeServer();
  const c = clocked();
  const statuses = [];
  let hang = true;
  /** @type {AbortSignal[]} */
  const signals = [];
  // A half-open connection: the request reached the app (its final is kept there), the answer never comes back.
  const fetch = (url, init) => {
    signals.push(init.signal);
    const answer = server.fetch(url, init);
    if (!hang) return answer;
    hang = false;
    return new Promise(() => {});
  };
  const p = new CaptionPublisher({ fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push({ ...s }), ...c.deps });
  p.final('one.');
  await c.pass(FLUSH_MS + 100);
  for (let i = 0; i < 5; i += 1) p.final(`later ${i}.`);
  await c.pass(REQUEST_TIMEOUT_MS - FLUSH_MS - 200);
  assert.equal(server.bodies.length, 1, 'waiting for the answer, within its time');
  assert.deepEqual(statuses, []);
  await c.pass(200 + RETRY_MIN_MS + FLUSH_MS);
  assert.ok(signals[0].aborted, 'the abandoned request is aborted');
  assert.deepEqual(statuses.map((s) => [s.state, s.reason]), [['retrying', 'no answer in 10 s'], ['ok', undefined]]);
  assert.deepEqual(server.finals, [1, 2, 3, 4, 5, 6], 'every final reached the app once, in order');
  assert.equal(p.pending.length, 0);
});

test('with an interim every round trip, requests start at least FLUSH_MS apart: within the server\'s 600 a minute', async () => {
  const server = fakeServer();
  const c = clocked();
  const RTT = 40;
  let inFlight = 0;
  let most = 0;
  const fetch = (url, init) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    return new Promise((resolve) => {
      c.timers.setTimeout(() => { inFlight -= 1; resolve(server.fetch(url, init)); }, RTT);
    });
  };
  const p = new CaptionPublisher({ fetch, shareId: 's', token: 'tok', ...c.deps });
  let n = 0;
  const speak = () => {
    n += 1;
    p.partial(`word ${n}`);
    if (n % 20 === 0) p.final(`sentence ${n / 20}.`);
    c.timers.setTimeout(speak, RTT);
  };
  speak();
  await c.pass(60_000, 20);
  const sent = server.bodies.length;
  assert.ok(sent <= 60_000 / FLUSH_MS && sent <= 600, `${sent} requests in a minute`);
  assert.ok(sent >= 60_000 / FLUSH_MS / 2, `${sent} requests in a minute: interims still go out several times a second`);
  assert.equal(most, 1, 'one request in flight at a time');
  const said = Math.floor(n / 20);
  assert.deepEqual(server.finals, Array.from({ length: server.finals.length }, (_, i) => i + 1));
  assert.ok(server.finals.length >= said - 1, `${server.finals.length} of ${said} finals arrived`);
});

test('Retry-After is read in both its forms, on the injected clock; an unreadable one leaves the backoff', async () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);
  assert.equal(retryAfterMs('7', now), 7000);
  assert.equal(retryAfterMs(' 0 ', now), 0);
  assert.equal(retryAfterMs(new Date(now + 50_000).toUTCString(), now), 50_000);
  // A maintenance page asking for hours is obeyed for a minute at a time: the finals wait, and go once it is over.
  assert.equal(RETRY_AFTER_MAX_MS, 60_000);
  assert.equal(retryAfterMs(new Date(now + 3_600_000).toUTCString(), now), RETRY_AFTER_MAX_MS);
  assert.equal(retryAfterMs('86400', now), RETRY_AFTER_MAX_MS);
  assert.equal(retryAfterMs(new Date(now - 5000).toUTCString(), now), 0, 'a date passed: no wait of its own');
  for (const bad of [null, '', 'soon', '-3', '1.5e400', 'Thu, 99 Foo 2025']) assert.equal(retryAfterMs(bad, now), 0, String(bad));

  // A 503 from a maintenance page with a date: the publisher waits until then, instead of retrying at once.
  for (const [header, wait] of [[new Date(now + 45_000).toUTCString(), 45_000], ['whenever', RETRY_MIN_MS]]) {
    const t = new FakeTimers();
    t.now = now - FLUSH_MS; // the request goes at `now`
    let sent = 0;
    const fetch = async () => {
      sent += 1;
      return new Response('<html>maintenance</html>', { status: 503, headers: { 'Retry-After': header } });
    };
    const p = new CaptionPublisher({
      fetch, shareId: 's', token: 'tok', setTimer: t.setTimeout, clearTimer: t.clearTimeout, now: () => t.now,
    });
    p.final('one.');
    t.advance(FLUSH_MS);
    for (let i = 0; i < 5; i += 1) await tick();
    assert.equal(sent, 1);
    assert.equal(p.retryMs, wait, header);
    t.advance(wait - 1);
    for (let i = 0; i < 5; i += 1) await tick();
    assert.equal(sent, 1, `no retry before ${wait} ms`);
    p.stop();
  }
});

test('an answer that arrives after stop() changes nothing and tells nobody', async () => {
  const c = clocked();
  const statuses = [];
  /** @type {(r: Response) => void} */
  let answer = () => {};
  const fetch = () => new Promise((resolve) => { answer = resolve; });
  const p = new CaptionPublisher({ fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push({ ...s }), ...c.deps });
  p.final('one.');
  await c.pass(FLUSH_MS);
  p.stop();
  answer(new Response(JSON.stringify({ error: { code: 'share_revoked', message: 'stopped' } }), { status: 410 }));
  await c.pass(REQUEST_TIMEOUT_MS + 1000);
  p.report({ state: 'ended', reason: 'expired' });
  assert.deepEqual(statuses, []);
  assert.equal(p.status.state, 'ok');
});

test('stop() ends the request in flight: its fetch is aborted, no deadline timer is left, nothing is reported', async () => {
  const c = clocked();
  const statuses = [];
  /** @type {AbortSignal[]} */
  const signals = [];
  // A request that answers only when aborted, as fetch does: a rejection with an AbortError.
  const fetch = (_url, init) => {
    signals.push(init.signal);
    return new Promise((_resolve, reject) => {
      init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
  };
  const p = new CaptionPublisher({ fetch, shareId: 's', token: 'tok', onStatus: (s) => statuses.push({ ...s }), ...c.deps });
  p.final('one.');
  await c.pass(FLUSH_MS);
  assert.equal(signals.length, 1, 'the request is in flight');
  assert.equal(signals[0].aborted, false);
  p.stop();
  assert.ok(signals[0].aborted, 'stop() aborts the request, not its deadline 10 s later');
  assert.equal(c.timers.pending.size, 0, 'no timer left pending');
  for (let i = 0; i < 5; i += 1) await tick();
  assert.equal(p.inFlight, false, 'the request is over');
  assert.equal(c.timers.pending.size, 0, 'and nothing scheduled after it');
  assert.deepEqual(statuses, [], 'its rejection is not news: the publisher is stopped');
});

test("a page's last request carries the finals not yet acknowledged, oldest first, within keepalive's size, and keeps them", async () => {
  const server = fakeServer();
  const t = timers();
  const p = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', ...t });
  p.final('one.');
  await t.run(); // acknowledged: not sent again
  server.fail = 1000; // the network is down from here on: the rest wait for a retry
  for (let i = 2; i <= BATCH_MAX + 10; i += 1) p.final(`${i}${'é'.repeat(TEXT_MAX - 3)}`);
  p.partial('thr');
  const body = p.farewell();
  const bytes = new TextEncoder().encode(JSON.stringify(body)).length;
  assert.ok(bytes <= FAREWELL_MAX_BYTES, `${bytes} bytes`);
  assert.equal(body.live, false);
  assert.ok(body.events.length >= 1 && body.events.length < BATCH_MAX, `${body.events.length} finals`);
  assert.deepEqual(body.events.map((e) => e.seq), body.events.map((_, i) => i + 2));
  assert.ok(body.events.every((e) => e.type === 'final' && e.text === `${e.seq}${'é'.repeat(TEXT_MAX - 3)}`));
  // Small finals: every one, up to the server's batch.
  const q = new CaptionPublisher({ fetch: server.fetch, shareId: 's', token: 'tok', ...timers() });
  for (let i = 1; i <= BATCH_MAX + 5; i += 1) q.final(`w${i}.`);
  assert.deepEqual(q.farewell().events.map((e) => e.seq), Array.from({ length: BATCH_MAX }, (_, i) => i + 1));
  assert.equal(q.pending.length, BATCH_MAX + 5, 'kept for a page shown again');
});
