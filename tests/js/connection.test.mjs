// static/connection.js on its own: the first grant and client, an outage (the lost client and grant go), each
// reconnect attempt (backoff, fresh grant, new client) reported as the reducer's input, and the release. Fake
// grant source, fake clients, fake timers: no session, no sockets, no waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ApiError } from '../../static/grants.js';
import { Connection, codeOf, failure } from '../../static/connection.js';
import { FakeTimers, tick } from './support/fakes.mjs';

const grant = (n, extra = {}) => ({ provider: 'local', protocol: 'truebar', ws_url: `ws://x.test/${n}`, token: `T${n}`, sample_rate: 16000, frame_samples: 1600, session_id: `s${n}`, ...extra });

function fakeClient(g, onEvent) {
  let ready;
  const client = {
    grant: g, onEvent, cancelled: 0, sent: [],
    started: new Promise((resolve, reject) => { ready = { resolve, reject }; }),
    start() { return this.started; },
    cancel() { this.cancelled += 1; },
    sendAudio(pcm) { this.sent.push(pcm); },
    ready: () => ready.resolve(),
    refuse: (err) => ready.reject(err),
  };
  return client;
}

function world({ grants = [grant(1), grant(2), grant(3)], tag, provider = 'local' } = {}) {
  const timers = new FakeTimers();
  const requests = [];
  const ended = [];
  const clients = [];
  const events = [];
  let aborted = 0;
  let over = false;
  const queue = [...grants];
  const source = {
    async request(request) {
      requests.push(request);
      const next = queue.shift();
      if (next instanceof Error) throw next;
      return next;
    },
    end: (g, beacon = false) => { if (g) ended.push([g.session_id, beacon]); },
    abortAll: () => { aborted += 1; },
  };
  const link = new Connection({
    grants: source, provider, ...(tag ? { tag } : {}), timers, over: () => over,
    onEvent: (event) => events.push(event),
    createClient: (g, options) => { const c = fakeClient(g, options.onEvent); clients.push(c); return c; },
  });
  return { link, timers, requests, ended, clients, events, aborted: () => aborted, end: () => { over = true; } };
}

async function lostAfterFirst(w) {
  await w.link.first();
  w.link.open().ready();
  w.link.beginOutage();
}

test('first() asks for a first grant; open() builds its client, whose events come back', async () => {
  const w = world({ tag: 'model-a' });
  assert.equal(w.link.grant, null);
  assert.equal((await w.link.first()).session_id, 's1');
  assert.deepEqual(w.requests, [{ provider: 'local', tag: 'model-a', reconnect: false }]);
  assert.equal(w.link.capabilities, null, 'no capabilities before the client');
  const client = w.link.open();
  assert.equal(w.link.client, client);
  assert.equal(client.grant.session_id, 's1');
  assert.ok(w.link.capabilities);
  client.onEvent({ type: 'partial', text: 'a' });
  assert.deepEqual(w.events, [{ type: 'partial', text: 'a' }]);
});

test('beginOutage(): the lost client is cancelled and its grant ended; outageEnded settles on outageOver()', async () => {
  const w = world();
  await lostAfterFirst(w);
  assert.equal(w.link.client, null);
  assert.equal(w.clients[0].cancelled, 1);
  assert.deepEqual(w.ended, [['s1', false]]);
  w.clients[0].onEvent({ type: 'closed', code: 1006, reason: '', clean: false });
  assert.deepEqual(w.events, [], "a replaced client's last words are nobody's");
  let settled = false;
  w.link.outageEnded.then(() => { settled = true; });
  await tick();
  assert.equal(settled, false);
  w.link.outageOver();
  await tick();
  assert.equal(settled, true);
});

test('attempt(): waits out the backoff, then a reconnect grant and a new client; ready once its start resolves', async () => {
  const w = world();
  await lostAfterFirst(w);
  const outcomes = [];
  const done = w.link.attempt(1000, (o) => outcomes.push(o));
  w.timers.advance(999);
  await tick();
  assert.equal(w.requests.length, 1, 'still waiting');
  w.timers.advance(1);
  await tick();
  assert.deepEqual(w.requests[1], { provider: 'local', reconnect: true });
  assert.equal(w.clients.length, 2);
  w.clients[1].onEvent({ type: 'error', message: 'x', fatal: true, cause: 'transport' });
  assert.deepEqual(w.events, [], "an attempt's events are not the session's until it is ready");
  assert.equal(w.link.client, null, 'not the client audio goes to until ready');
  w.clients[1].ready();
  await done;
  assert.deepEqual(outcomes, [{ type: 'attempt-ready' }]);
  assert.equal(w.link.client, w.clients[1]);
  assert.equal(w.link.grant.session_id, 's2');
  w.clients[1].onEvent({ type: 'final', text: 'b' });
  assert.deepEqual(w.events, [{ type: 'final', text: 'b' }], 'the new client is the one heard');
});

test('the reconnect asks for the same model where the provider lets the page choose one', async () => {
  const w = world({ provider: 'wiro', grants: [grant(1, { provider: 'wiro', protocol: 'wiro', tag: 'big' }), grant(2, { provider: 'wiro', protocol: 'wiro' })] });
  await lostAfterFirst(w);
  const done = w.link.attempt(0, () => {});
  w.timers.advance(0);
  await tick();
  assert.equal(w.requests[1].reconnect, true);
  assert.equal(w.requests[1].provider, 'wiro');
  w.clients[1].ready();
  await done;
});

test('a refused grant is reported with its code and whether another attempt can help; nothing is left open', async () => {
  const w = world({ grants: [grant(1), new ApiError('Forbidden', 403, 'forbidden')] });
  await lostAfterFirst(w);
  const outcomes = [];
  const done = w.link.attempt(0, (o) => outcomes.push(o));
  w.timers.advance(0);
  await done;
  assert.deepEqual(outcomes, [{ type: 'attempt-failed', message: 'Forbidden', code: 'forbidden', retryable: false }]);
  assert.equal(w.clients.length, 1);
});

test("a client that fails to start is cancelled and its grant ended; the failure is retryable", async () => {
  const w = world();
  await lostAfterFirst(w);
  const outcomes = [];
  const done = w.link.attempt(0, (o) => outcomes.push(o));
  w.timers.advance(0);
  await tick();
  w.clients[1].refuse(new Error('socket closed'));
  await done;
  assert.deepEqual(outcomes, [{ type: 'attempt-failed', message: 'socket closed', retryable: true }]);
  assert.equal(w.clients[1].cancelled, 1);
  assert.deepEqual(w.ended, [['s1', false], ['s2', false]]);
  w.clients[1].onEvent({ type: 'closed', code: 1006, reason: '', clean: false });
  assert.deepEqual(w.events, []);
});

test('wake() cuts the backoff short; an attempt that finds the session over reports nothing and lets go', async () => {
  const w = world();
  await lostAfterFirst(w);
  const outcomes = [];
  w.end();
  const done = w.link.attempt(60_000, (o) => outcomes.push(o));
  w.link.wake();
  await done;
  assert.deepEqual(outcomes, []);
  assert.equal(w.requests.length, 1, 'no grant asked for once over');
  assert.equal(w.timers.pending.size, 0, 'no timer left behind');
});

test('a client ready after the end is cancelled, and never becomes the one audio goes to', async () => {
  const w = world();
  await lostAfterFirst(w);
  const outcomes = [];
  const done = w.link.attempt(0, (o) => outcomes.push(o));
  w.timers.advance(0);
  await tick();
  w.end();
  w.clients[1].ready();
  await done;
  assert.equal(w.clients[1].cancelled, 1);
  assert.equal(w.link.client, null);
  assert.deepEqual(outcomes, []);

});

test('a grant that arrives after the end is ended at once, and no client is built for it', async () => {
  let resolveGrant;
  const w = world({ grants: [grant(1), new Promise((r) => { resolveGrant = r; })] });
  await lostAfterFirst(w);
  const outcomes = [];
  const done = w.link.attempt(0, (o) => outcomes.push(o));
  w.timers.advance(0);
  await tick();
  w.end();
  resolveGrant(grant(8));
  await done;
  assert.deepEqual(w.ended, [['s1', false], ['s8', false]]);
  assert.equal(w.clients.length, 1);
  assert.deepEqual(outcomes, []);
});

test('release(): requests aborted, the backoff woken, the clients cancelled, the grant ended, the outage settled', async () => {
  const w = world();
  await lostAfterFirst(w);
  const done = w.link.attempt(0, () => {});
  w.timers.advance(0);
  await tick();
  let settled = false;
  w.link.outageEnded.then(() => { settled = true; });
  w.end();
  w.link.release();
  await tick();
  assert.equal(w.aborted(), 1);
  assert.equal(w.clients[1].cancelled, 1, 'the attempt under way is cancelled');
  assert.deepEqual(w.ended, [['s1', false], ['s2', false]]);
  assert.equal(settled, true);
  w.clients[1].ready();
  await done;
});

test('end(): the current grant, or the one given, with the beacon flag', async () => {
  const w = world();
  await w.link.first();
  w.link.end(true);
  w.link.end(false, grant(9));
  assert.deepEqual(w.ended, [['s1', true], ['s9', false]]);
});

test('codeOf(), failure(): the string code an error carries, else none; the message', () => {
  assert.deepEqual(failure(new ApiError('Slow down', 429, 'rate_limited')), { message: 'Slow down', code: 'rate_limited' });
  assert.deepEqual(failure('gone'), { message: 'gone' });
  assert.equal(codeOf(new ApiError('x', 429, 'rate_limited')), 'rate_limited');
  assert.equal(codeOf(new Error('x')), undefined);
  assert.equal(codeOf({ code: 7 }), undefined);
  assert.equal(codeOf(null), undefined);
});
