// A grant's expiry as the client counts it: by the grant's expires_in, from when the client got it, not by comparing
// the server's expires_at with a browser clock that may be an hour off. A failure after that life is 'expired' (the
// session answers it with a fresh grant); one before it is what it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Session } from '../../static/session.js';
import { TruebarClient } from '../../static/providers/truebar.js';
import { localExpiry } from '../../static/providers/stream-session.js';
import { fakeSocketClass } from './support/fakes.mjs';
import { frame, ready, sleep, source, tick } from './support/session-fakes.mjs';

Math.random = () => 0; // backoff jitter: no wait

const SERVER_NOW_S = 1_900_000_000; // the server's clock when it mints the grant
const LIFE_S = 600;
const HOUR_MS = 3600 * 1000;

/** A grant minted at SERVER_NOW_S with LIFE_S to live, as the server now sends it. */
const grantOf = (overrides = {}) => ({
  provider: 'truebar', protocol: 'truebar', ws_url: 'ws://provider.test/stream', token: 'TOKEN', sample_rate: 16000,
  frame_samples: 1600, session_id: 's1', expires_at: SERVER_NOW_S + LIFE_S, expires_in: LIFE_S, ...overrides,
});

/** A started Truebar client on a browser clock `skewMs` off the server's (the test moves `clock.ms`). */
async function client(skewMs, grant = grantOf()) {
  const clock = { ms: SERVER_NOW_S * 1000 + skewMs };
  const Sock = fakeSocketClass();
  const events = [];
  const c = new TruebarClient(grant, { WebSocketImpl: Sock, onEvent: (e) => events.push(e), now: () => clock.ms, livenessTimeoutMs: 0 });
  const started = c.start();
  ready(Sock.instances[0]);
  await started;
  return { c, clock, ws: Sock.instances[0], events };
}

const causeOf = (events) => events.find((e) => e.type === 'error')?.cause;

test('a browser clock an hour ahead: a provider error within the grant\'s life is not taken for its expiry', async () => {
  const { ws, events } = await client(+HOUR_MS);
  ws.push({ type: 'ERROR', message: 'Session terminated.' });
  assert.equal(causeOf(events), 'protocol');
});

test('a browser clock an hour ahead: a dropped socket within the grant\'s life stays a transport error', async () => {
  const { ws, events } = await client(+HOUR_MS);
  ws.serverClose(1006);
  assert.equal(causeOf(events), 'transport');
});

test('a browser clock an hour behind: an error once expires_in has run out is the expiry', async () => {
  const { clock, ws, events } = await client(-HOUR_MS);
  clock.ms += (LIFE_S + 1) * 1000;
  ws.push({ type: 'ERROR', message: 'Session terminated.' });
  assert.equal(causeOf(events), 'expired');
});

test('a browser clock an hour behind: an error halfway through the grant\'s life is not the expiry', async () => {
  const { clock, ws, events } = await client(-HOUR_MS);
  clock.ms += (LIFE_S / 2) * 1000;
  ws.push({ type: 'ERROR', message: 'Session terminated.' });
  assert.equal(causeOf(events), 'protocol');
});

test('a grant without expires_in (an older server, another backend) is read by its expires_at, as before', async () => {
  const { expires_in: _, ...old } = grantOf();
  const early = await client(0, old);
  early.ws.push({ type: 'ERROR', message: 'Session terminated.' });
  assert.equal(causeOf(early.events), 'protocol');
  const late = await client((LIFE_S + 1) * 1000, old);
  late.ws.push({ type: 'ERROR', message: 'Session terminated.' });
  assert.equal(causeOf(late.events), 'expired');
});

test('the client reports the expiry it counts, on its own clock', async () => {
  const { c } = await client(-HOUR_MS);
  assert.equal(c.expiresAt, (SERVER_NOW_S + LIFE_S) * 1000 - HOUR_MS);
  assert.equal(localExpiry(grantOf(), 5000), 5000 + LIFE_S * 1000);
  assert.equal(localExpiry(grantOf({ expires_in: undefined }), 5000), (SERVER_NOW_S + LIFE_S) * 1000);
  assert.equal(localExpiry(grantOf({ expires_in: -1 }), 5000), (SERVER_NOW_S + LIFE_S) * 1000, 'nonsense: ignored');
  assert.equal(localExpiry(grantOf({ expires_in: undefined, expires_at: undefined }), 5000), null);
});

test('a session on a browser clock an hour behind reconnects when its grant runs out', async () => {
  const clock = { ms: SERVER_NOW_S * 1000 - HOUR_MS };
  const Sock = fakeSocketClass();
  const events = [];
  const src = source();
  let minted = 0;
  const s = new Session({
    provider: 'truebar',
    // The server's clock moves with the browser's, an hour ahead of it.
    getGrant: async () => {
      minted += 1;
      const serverNowS = clock.ms / 1000 + 3600;
      return grantOf({ session_id: `s${minted}`, token: `TOKEN${minted}`, expires_at: serverNowS + LIFE_S });
    },
    clientOptions: { WebSocketImpl: Sock, livenessTimeoutMs: 0 },
    now: () => clock.ms,
    createSource: async (o) => { src.onFrame = o.onFrame; return src; },
    onEvent: (e) => events.push(e),
  });
  const started = s.start();
  for (let i = 0; i < 5; i++) await tick();
  ready(Sock.instances[0]);
  await started;
  src.onFrame(frame());
  clock.ms += (LIFE_S + 1) * 1000;
  Sock.instances[0].push({ type: 'ERROR', message: 'Session terminated.' });
  await sleep(20);
  assert.equal(Sock.instances.length, 2, 'a fresh grant and a new connection');
  ready(Sock.instances[1]);
  await sleep(20);
  assert.ok(events.some((e) => e.type === 'reconnected'), events.map((e) => e.type).join());
  assert.equal(minted, 2);
  assert.notEqual(s.state, 'error');
  const d = s.diagnostics();
  assert.equal(d.tokenExpiresAt, new Date(clock.ms + LIFE_S * 1000).toISOString(), 'the new grant, on the browser clock');
  await s.stop();
});
