// static/page/share.js: how the page words a share's expiry, and what it tells the server when publishing stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeExpiry } from '../../static/page/share.js';

test('the expiry is said in minutes, hours when long, and whether a recording keeps it alive', () => {
  const now = 1_000_000;
  assert.equal(describeExpiry(null, false, now), '');
  assert.equal(describeExpiry(now + 30 * 60000, false, now), 'ends in 30 min unless a recording starts');
  assert.equal(describeExpiry(now + 4 * 3600000, true, now), 'ends at the latest in 4 h');
  assert.equal(describeExpiry(now - 5000, false, now), 'ends in 0 min unless a recording starts');
});

test('a batch the server refuses ends the share on the server too, so its viewers are told', async () => {
  const { mountShare } = await import('../../static/page/share.js');
  const { fakeDocument } = await import('./support/page-fakes.mjs');
  const calls = [];
  const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const win = {
    document: fakeDocument(),
    location: { href: 'http://127.0.0.1:8000/' },
    navigator: {},
    addEventListener() {},
    async fetch(url, init = {}) {
      calls.push([init.method || 'GET', url]);
      if (url === '/api/captions') {
        return json({ share_id: 'S'.repeat(22), viewer_url: '/captions/x', publish_token: 'tok', expires_at: 0, max_viewers: 3 });
      }
      if (url.endsWith('/events')) return json({ error: { code: 'bad_request', message: 'Each final needs a seq.' } }, 400);
      return json({ ended: true });
    },
  };
  const controller = { running: true, listen() {} };
  const share = mountShare({ win, controller });
  await share.share();
  share.publisher.final('one.');
  await new Promise((resolve) => setTimeout(resolve, 400)); // the publisher's flush (200 ms), its answer, the end
  assert.deepEqual(calls.map(([method]) => method), ['POST', 'POST', 'DELETE']);
  assert.equal(calls[2][1], `/api/captions/${'S'.repeat(22)}`);
  assert.match(win.document.getElementById('share-status').textContent, /server refused the captions \(Each final needs a seq\.\)/);
});
