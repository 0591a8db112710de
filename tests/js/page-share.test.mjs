// static/page/share.js: how the page words a share's expiry, and what it tells the server when publishing stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLUSH_MS } from '../../static/captions/publisher.js';
import { describeExpiry } from '../../static/page/share.js';
import { FakeTimers, tick } from './support/fakes.mjs';

/** Let the promises a fired timer started run to their end (no time passes). */
async function settle() {
  for (let i = 0; i < 10; i++) await tick();
}

test('the expiry is said in minutes, hours when long, and whether a recording keeps it alive', () => {
  const now = 1_000_000;
  assert.equal(describeExpiry(null, false, now), '');
  assert.equal(describeExpiry(now + 30 * 60000, false, now), 'ends in 30 min unless a recording starts');
  assert.equal(describeExpiry(now + 4 * 3600000, true, now), 'ends at the latest in 4 h');
  assert.equal(describeExpiry(now - 5000, false, now), 'ends in 0 min unless a recording starts');
});

test('a batch the server refuses ends the share on the server too, so its viewers are told', async () => {
  const { share, calls, timers, status } = await sharePage((method, url) => {
    if (url === '/api/captions') return [GRANT];
    if (url.endsWith('/events')) return [{ error: { code: 'bad_request', message: 'Each final needs a seq.' } }, 400];
    return [{ ended: true }];
  }, { running: true });
  share.publisher.final('one.');
  timers.advance(FLUSH_MS); // the publisher's flush
  await settle(); // its answer, the end
  assert.deepEqual(calls.map(([method]) => method), ['POST', 'POST', 'DELETE']);
  assert.equal(calls[2][1], `/api/captions/${'S'.repeat(22)}`);
  assert.match(status(), /server refused the captions \(Each final needs a seq\.\)/);
  // The panel with the dead link goes; the status line, outside it (templates/index.html), says why.
  assert.equal(share.doc.getElementById('share-live').hidden, true);
  assert.equal(share.doc.getElementById('share-link').value, '');
  assert.equal(share.doc.getElementById('share-open').href, '#');
});

test('Stop sharing takes the link off the page and says the sharing stopped', async () => {
  const { share, status } = await sharePage(() => [GRANT]);
  assert.notEqual(share.doc.getElementById('share-link').value, '');
  await share.stopSharing();
  assert.equal(share.doc.getElementById('share-live').hidden, true);
  assert.equal(share.doc.getElementById('share-link').value, '');
  assert.equal(status(), 'Sharing stopped.');
});

test('Stop sharing the server refuses (its store down) says the link lapses by itself', async () => {
  const { share, status } = await sharePage((method, url) => {
    if (method === 'DELETE') return [{ error: { code: 'state_unavailable', message: 'Try again shortly.' } }, 503];
    return [GRANT];
  });
  await share.stopSharing();
  assert.equal(status(), 'Sharing stopped here; the server could not be told, so the link lapses by itself.');
});

const GRANT = { share_id: 'S'.repeat(22), viewer_url: '/captions/x', publish_token: 'tok', expires_at: 0, max_viewers: 3 };

/**
 * The share panel with a fake app whose answers `answer(method, url)` gives, on fake timers; the status poll is run
 * by hand. `running`: a recording is under way when sharing starts.
 */
async function sharePage(answer, { running = false } = {}) {
  const { mountShare } = await import('../../static/page/share.js');
  const { fakeDocument } = await import('./support/page-fakes.mjs');
  const calls = [];
  const requests = [];
  const handlers = {};
  const timers = new FakeTimers();
  const win = {
    document: fakeDocument(),
    location: { href: 'http://127.0.0.1:8000/' },
    navigator: {},
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    addEventListener(type, fn) { (handlers[type] ??= []).push(fn); },
    async fetch(url, init = {}) {
      calls.push([init.method || 'GET', url]);
      requests.push({ url, init });
      const [body, status = 200] = answer(init.method || 'GET', url);
      return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    },
  };
  const polls = [];
  const original = globalThis.setInterval;
  globalThis.setInterval = (fn) => { polls.push(fn); return 0; };
  const share = mountShare({ win, controller: { running, listen() {} } });
  try {
    await share.share();
  } finally {
    globalThis.setInterval = original;
  }
  const poll = async () => {
    for (const fn of polls) fn();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  };
  const fire = (type) => { for (const fn of handlers[type] ?? []) fn(); };
  share.doc = win.document;
  return { share, calls, requests, fire, poll, timers, status: () => win.document.getElementById('share-status').textContent };
}

test('a tab closed while finals wait for their batch sends them with its last request, not only the end', async () => {
  const { share, requests, fire } = await sharePage((method, url) => (url === '/api/captions' ? [GRANT] : [{ viewers: 0, expires_at: 0, live: false }]), { running: true });
  share.publisher.final('one.');
  share.publisher.final('two.');
  fire('pagehide'); // before the publisher's flush timer
  const last = requests.at(-1);
  assert.equal(last.url, `/api/captions/${'S'.repeat(22)}/events`);
  assert.equal(last.init.keepalive, true);
  assert.equal(last.init.headers.Authorization, 'Bearer tok');
  assert.deepEqual(JSON.parse(last.init.body), {
    events: [{ type: 'final', text: 'one.', seq: 1 }, { type: 'final', text: 'two.', seq: 2 }],
    live: false,
  });
});

test("an answer to Share that is not a share (a field missing or of another type) says so and publishes nothing", async () => {
  for (const body of [{ ...GRANT, publish_token: undefined }, { ...GRANT, share_id: 5 }, { ...GRANT, expires_at: 'soon' }, [GRANT], null, '<html>']) {
    const page = await sharePage(() => [body]);
    assert.equal(page.share.publisher, null, JSON.stringify(body));
    assert.equal(page.status(), "Could not make a link: the server's answer is not a share", JSON.stringify(body));
    assert.deepEqual(page.calls.map(([method]) => method), ['POST']);
  }
});

test("a refused Share shows the app's message, or the status when the answer is not the app's", async () => {
  let page = await sharePage(() => [{ error: { code: 'state_unavailable', message: 'Try again shortly.' } }, 503]);
  assert.equal(page.status(), 'Could not make a link: Try again shortly.');
  page = await sharePage(() => ['<html>Bad gateway</html>', 502]);
  assert.equal(page.status(), 'Could not make a link: HTTP 502');
});

test("a status poll answered with something other than the share's status changes nothing (no 'NaN min')", async () => {
  let statusAnswer = [{ error: { code: 'state_unavailable', message: 'Try again shortly.' } }, 503];
  const page = await sharePage((method, url) => (method === 'POST' ? [GRANT] : statusAnswer));
  const before = page.status();
  assert.match(before, /^0 viewers · ends in 0 min/);
  for (const answer of [statusAnswer, [{ status: 'active', viewers: 2 }], [{ status: 'active', live: false, expires_at: 'x', viewers: 2, max_viewers: 3 }], ['[]'], ['<html>']]) {
    statusAnswer = answer;
    await page.poll();
    assert.equal(page.status(), before, JSON.stringify(answer));
    assert.notEqual(page.share.publisher, null, 'still sharing');
  }
  statusAnswer = [{ status: 'active', live: false, expires_at: Date.now() / 1000 + 1800, viewers: 2, max_viewers: 3 }];
  await page.poll();
  assert.match(page.status(), /^2 viewers · ends in (29|30) min unless a recording starts$/);
  page.share.stopSharing();
});

test("with the browser's clock an hour ahead of the server's, the panel still says how long the share has left", async () => {
  const HOUR = 3600;
  const serverNow = () => Date.now() / 1000 - HOUR;
  let statusAnswer = null;
  const page = await sharePage((method) => (method === 'POST'
    ? [{ ...GRANT, expires_at: serverNow() + 1800, expires_in: 1800 }]
    : statusAnswer));
  assert.match(page.status(), /^0 viewers · ends in 30 min unless a recording starts$/);
  statusAnswer = [{ status: 'active', live: false, expires_at: serverNow() + 1200, expires_in: 1200, viewers: 2, max_viewers: 3 }];
  await page.poll();
  assert.match(page.status(), /^2 viewers · ends in 20 min unless a recording starts$/);
  // An answer without expires_in (an older server): its expires_at on the browser's clock, as before.
  statusAnswer = [{ status: 'active', live: false, expires_at: Date.now() / 1000 + 600, viewers: 1, max_viewers: 3 }];
  await page.poll();
  assert.match(page.status(), /^1 viewer · ends in 10 min unless a recording starts$/);
  page.share.stopSharing();
});

test("a stopped share's late answer (revoked, refused, ok) leaves the next share alone", async () => {
  const { mountShare } = await import('../../static/page/share.js');
  const { fakeDocument } = await import('./support/page-fakes.mjs');
  const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const late = [
    json({ error: { code: 'share_revoked', message: 'stopped' } }, 410),
    json({ error: { code: 'bad_events', message: 'Each final needs a seq.' } }, 400),
    json({ viewers: 7, expires_at: 0, expires_in: 60, live: false }),
  ];
  for (const answer of late) {
    let made = 0;
    /** @type {(r: Response) => void} */
    let answerOldPost = () => {};
    const calls = [];
    const timers = new FakeTimers();
    const win = {
      document: fakeDocument(), location: { href: 'http://127.0.0.1:8000/' }, navigator: {}, addEventListener() {},
      setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout,
      async fetch(url, init = {}) {
        calls.push(`${init.method || 'GET'} ${url}`);
        if (url === '/api/captions') {
          made += 1;
          return json({ share_id: String(made).repeat(22), viewer_url: `/captions/${made}`, publish_token: `tok${made}`, expires_at: 0, expires_in: 1800 });
        }
        // The first share's publish is slow: its answer comes after the user stopped sharing and shared again.
        if (url.endsWith('/events') && url.includes('1'.repeat(22))) return new Promise((resolve) => { answerOldPost = resolve; });
        if (init.method === 'DELETE') return json({ revoked: true });
        return json({ viewers: 0, expires_at: 0, expires_in: 1800, live: true });
      },
    };
    const original = globalThis.setInterval;
    globalThis.setInterval = () => 0;
    let share;
    try {
      share = mountShare({ win, controller: { running: true, listen() {} } });
      await share.share();
      share.publisher.final('one.');
      timers.advance(FLUSH_MS);
      await settle();
      // The case under test, or every assertion below passes without it: the first share's publish went, and is
      // still waiting for its answer when the user stops sharing.
      assert.ok(calls.includes(`POST /api/captions/${'1'.repeat(22)}/events`), `${answer.status}: the first share's publish went`);
      assert.equal(share.publisher.inFlight, true, `${answer.status}: and is unanswered`);
      await share.stopSharing();
      await share.share();
    } finally {
      globalThis.setInterval = original;
    }
    const second = share.publisher;
    const status = win.document.getElementById('share-status').textContent;
    answerOldPost(answer);
    await settle();
    assert.equal(share.publisher, second, `${answer.status}: the new share keeps publishing`);
    assert.equal(win.document.getElementById('share-live').hidden, false, `${answer.status}: its panel stays`);
    assert.equal(win.document.getElementById('share-status').textContent, status, `${answer.status}: its status stays`);
    assert.deepEqual(calls.filter((c) => c.startsWith('DELETE')), [`DELETE /api/captions/${'1'.repeat(22)}`], `${answer.status}: only the first share was revoked`);
    share.stopSharing();
  }
});
