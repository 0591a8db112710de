// static/captions/viewer.js under Node: what a viewer is told when its caption stream is refused. A fake document,
// EventSource, fetch and timers; the viewer module is the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { mountViewer } from '../../static/captions/viewer.js';
import { endNotice } from '../../static/captions/overlay.js';
import { fakeDocument } from './support/page-fakes.mjs';
import { FakeTimers, tick } from './support/fakes.mjs';

const SHARE = 'S'.repeat(22);

class FakeEventSource {
  static CLOSED = 2;
  /** @type {FakeEventSource[]} */
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = new Map();
    FakeEventSource.instances.push(this);
  }
  addEventListener(type, fn) { this.listeners.set(type, fn); }
  close() { this.readyState = FakeEventSource.CLOSED; }
  /** The browser's answer to a refused stream (any status but 200): the error event, the source closed. */
  refuse() {
    this.readyState = FakeEventSource.CLOSED;
    this.listeners.get('error')?.({});
  }
}

/** A viewer on an active share whose status endpoint answers `status` with `body`. */
function viewer(status, body) {
  FakeEventSource.instances = [];
  globalThis.EventSource = FakeEventSource;
  const doc = fakeDocument();
  doc.body = { dataset: { share: SHARE, status: 'active' }, style: { setProperty() {} } };
  const timers = new FakeTimers();
  const win = {
    location: { search: '' },
    EventSource: FakeEventSource,
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    fetch: async () => ({ status, ok: status >= 200 && status < 300, json: async () => body }),
  };
  mountViewer(doc, win);
  return { doc, timers, notice: () => doc.getElementById('notice').textContent };
}

test('a stream refused because the share is full says so, and tries again', async () => {
  const v = viewer(200, { status: 'active', live: true, expires_at: 0, viewers: 3, max_viewers: 3 });
  FakeEventSource.instances[0].refuse();
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(v.notice(), endNotice('full'));
  v.timers.advance(15000);
  assert.equal(FakeEventSource.instances.length, 2, 'a new stream');
});

test('a stream refused for another reason (the server unavailable) is not blamed on too many viewers', async () => {
  for (const [status, body] of [
    [503, { error: { code: 'state_unavailable', message: 'Try again shortly.' } }],
    [502, null],
    [200, { status: 'active', live: true, expires_at: 0, viewers: 1, max_viewers: 3 }],
  ]) {
    const v = viewer(status, body);
    FakeEventSource.instances[0].refuse();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(v.notice(), endNotice('offline'), `status ${status}`);
    v.timers.advance(15000);
    assert.equal(FakeEventSource.instances.length, 2, `status ${status}: tries again`);
  }
});

test('a revoked share or a gone one ends the viewer, with no retry', async () => {
  for (const [status, body, reason] of [[200, { status: 'revoked', live: false, expires_at: 0, viewers: 0, max_viewers: 3 }, 'revoked'], [404, null, 'gone']]) {
    const v = viewer(status, body);
    FakeEventSource.instances[0].refuse();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(v.notice(), endNotice(reason));
    v.timers.advance(60000);
    assert.equal(FakeEventSource.instances.length, 1, `${reason}: no new stream`);
  }
});
