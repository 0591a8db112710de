// Doubles for driving static/session.js in Node: the app server's /api/sessions (a fake fetch that can be held),
// an audio source the test feeds by hand, and the provider sockets (fakes.mjs). Not a test file itself.
import { fakeSocketClass, tick } from './fakes.mjs';

export { tick };

export function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A world for one test: sockets, grants minted, end calls, and a gate to hold the next grant. */
export function world(protocol = 'truebar') {
  const Sock = fakeSocketClass();
  const w = { Sock, grants: [], ends: [], hold: null };
  globalThis.fetch = async (url) => {
    if (url === '/api/sessions') {
      if (w.hold) { const h = w.hold; w.hold = null; await h; }
      const n = w.grants.length + 1;
      const grant = {
        provider: protocol, protocol, ws_url: `ws://provider.test/${protocol}`, token: `TOKEN${n}`,
        sample_rate: 16000, frame_samples: 1600, session_id: `s${n}`, expires_at: Date.now() / 1000 + 3600,
      };
      w.grants.push(grant);
      return { ok: true, status: 200, json: async () => grant };
    }
    w.ends.push(url);
    return { ok: true, status: 200, json: async () => ({}) };
  };
  return w;
}

export function source() {
  return {
    released: false, onFrame: null,
    async stop() { this.released = true; return { frames: 0, inSamples: 0 }; },
    async release() { this.released = true; },
  };
}

export const frame = () => new Int16Array(1600).fill(7);

/** The provider says it is ready for audio. */
export function ready(ws, protocol = 'truebar') {
  ws.open();
  ws.push(protocol === 'wiro' ? { type: 'task_stream_ready' } : { type: 'STATUS', status: 'CONFIGURED' });
}
