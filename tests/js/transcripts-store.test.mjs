// The transcript store over an in-memory IndexedDB (fake-indexeddb, a maintained implementation of the spec that
// runs the W3C test suite): write/read/list/delete, ordering, the cap, unreadable records, the upgrade path and the
// errors a browser can answer with.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';

import {
  DEFAULT_CAP, FINALS, MIGRATIONS, OPEN_TIMEOUT_MS, PREVIEW_CHARS, RECORD_VERSION, SESSIONS, openTranscriptStore, toStoreError,
} from '../../static/transcripts/store.js';
import { FakeTimers, tick } from './support/fakes.mjs';

/** No lone surrogate (half an emoji). Not String.prototype.isWellFormed: that is Node 20+, and Debian 12's and
 * Ubuntu 24.04's own nodejs is 18. @param {string} s */
const wellFormed = (s) => !/\p{Cs}/u.test(s);

/**
 * A store on a fresh in-memory database, with a clock and ids the test controls.
 * @param {{cap?: {maxSessions: number, maxBytes: number}, factory?: IDBFactory, migrations?: any[]}} [options]
 */
async function fresh(options = {}) {
  const factory = options.factory ?? new IDBFactory();
  const clock = { now: 1_700_000_000_000 };
  let n = 0;
  const result = await openTranscriptStore({
    indexedDB: factory,
    keyRange: IDBKeyRange,
    name: 'test',
    cap: options.cap,
    migrations: options.migrations,
    now: () => clock.now,
    newId: () => `s${String(++n).padStart(3, '0')}`,
  });
  assert.equal(result.ok, true, result.ok ? '' : JSON.stringify(result.error));
  return { store: result.value, factory, clock };
}

/** @param {any} result */
function ok(result) {
  assert.equal(result.ok, true, result.ok ? '' : JSON.stringify(result.error));
  return result.value;
}

/** @param {number} k @param {number} [words] */
function final(k, words = 3) {
  const w = Array.from({ length: words }, (_, i) => ({ text: `w${k}_${i}`, startMs: k * 1000 + i * 300, endMs: k * 1000 + i * 300 + 250 }));
  return { text: w.map((x) => x.text).join(' '), startMs: w[0].startMs, endMs: w[w.length - 1].endMs, words: w };
}

/** Raw access to the same database, as a buggy or older page would write it. */
async function raw(factory, fn) {
  const db = await new Promise((resolve, reject) => {
    const r = factory.open('test');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction([SESSIONS, FINALS], 'readwrite');
      let value;
      tx.oncomplete = () => resolve(value);
      tx.onerror = () => reject(tx.error);
      fn(tx, (v) => { value = v; });
    });
  } finally {
    db.close();
  }
}

/** @param {IDBFactory} factory */
const countFinals = (factory) => raw(factory, (tx, done) => {
  const r = tx.objectStore(FINALS).count();
  r.onsuccess = () => done(r.result);
});

test('a session and its finals are written, read back in arrival order, listed and deleted', async () => {
  const { store, factory, clock } = await fresh();
  const session = ok(await store.startSession({ title: 'meeting', engine: 'local' }));
  assert.equal(session.state, 'recording');
  assert.equal(session.startedAt, clock.now);
  const inputs = [final(0), { text: 'no times at all', startMs: null, endMs: null, estimated: true }, final(2, 5)];
  for (const f of inputs) {
    clock.now += 1000;
    ok(await store.addFinal(session.id, f, { durationMs: 2500 }));
  }
  const { session: back, finals } = ok(await store.getSession(session.id));
  assert.deepEqual(finals.map((f) => f.seq), [0, 1, 2]);
  assert.deepEqual(finals.map((f) => f.text), inputs.map((f) => f.text));
  assert.deepEqual(finals[0].words, inputs[0].words);
  assert.equal(finals[1].startMs, null);
  assert.equal(finals[1].estimated, true);
  assert.equal(finals[0].estimated, false);
  assert.equal(back.finalCount, 3);
  assert.equal(back.updatedAt, clock.now);
  assert.equal(back.durationMs, inputs[2].endMs, 'the last word end is later than the progress given');
  assert.equal(back.preview, inputs.map((f) => f.text).join(' '));
  assert.ok(back.bytes > JSON.stringify(inputs).length, back.bytes);

  ok(await store.updateSession(session.id, { state: 'stopped', durationMs: 99_000, engine: 'wiro' }));
  ok(await store.updateSession(session.id, { engine: 'local', durationMs: 10 }));
  const [listed] = ok(await store.listSessions());
  assert.equal(listed.state, 'stopped');
  assert.equal(listed.durationMs, 99_000, 'the length never shrinks');
  assert.deepEqual(listed.engines, ['local', 'wiro']);

  const other = ok(await store.startSession({ title: 'other', engine: 'truebar' }));
  ok(await store.addFinal(other.id, final(0)));
  assert.equal(await countFinals(factory), 4);
  assert.equal(ok(await store.deleteSession(session.id)), true);
  assert.equal(ok(await store.deleteSession(session.id)), false);
  assert.equal(await countFinals(factory), 1, "the session's finals went with it");
  assert.deepEqual(ok(await store.listSessions()).map((s) => s.id), [other.id]);
  const missing = await store.getSession(session.id);
  assert.equal(missing.ok, false);
  assert.equal(missing.error.kind, 'missing');
  const gone = await store.addFinal(session.id, final(1));
  assert.equal(gone.error.kind, 'missing', 'a final for a deleted session is refused, not orphaned');

  assert.equal(ok(await store.deleteAll()), 1);
  assert.deepEqual(ok(await store.listSessions()), []);
  assert.equal(await countFinals(factory), 0);
});

test('sessions are listed newest first and finals stay with their own session in order', async () => {
  const { store, clock } = await fresh();
  const ids = {};
  for (const at of [3, 1, 2, 2]) {
    clock.now = at * 1000;
    const s = ok(await store.startSession({ title: `t${at}`, engine: 'local' }));
    ids[s.id] = at;
  }
  const listed = ok(await store.listSessions());
  // Equal start times (s003, s004) are ordered by id, newest id first, so the order never depends on the engine.
  assert.deepEqual(listed.map((s) => s.id), ['s001', 's004', 's003', 's002']);
  // Interleaved writes to two sessions.
  for (let k = 0; k < 6; k++) ok(await store.addFinal(k % 2 ? 's001' : 's002', final(k)));
  assert.deepEqual(ok(await store.getSession('s001')).finals.map((f) => f.text), [1, 3, 5].map((k) => final(k).text));
  assert.deepEqual(ok(await store.getSession('s002')).finals.map((f) => f.text), [0, 2, 4].map((k) => final(k).text));
});

test('the preview holds the first words only', async () => {
  const { store } = await fresh();
  const s = ok(await store.startSession({ title: 't', engine: 'local' }));
  ok(await store.addFinal(s.id, { text: '  first   words\nhere ', startMs: 0, endMs: 1 }));
  for (let k = 0; k < 40; k++) ok(await store.addFinal(s.id, final(k)));
  const [listed] = ok(await store.listSessions());
  assert.equal(listed.preview.length, PREVIEW_CHARS);
  assert.ok(listed.preview.startsWith('first words here w0_0'), listed.preview);
});

test('the preview is cut between characters, never inside an emoji (a surrogate pair)', async () => {
  const { store } = await fresh();
  for (const text of [`a${'😀'.repeat(PREVIEW_CHARS)}`, `${'y'.repeat(PREVIEW_CHARS - 2)} 😀`]) {
    const s = ok(await store.startSession({ title: 't', engine: 'local' }));
    ok(await store.addFinal(s.id, { text, startMs: 0, endMs: 1 }));
    ok(await store.addFinal(s.id, { text: 'more words', startMs: 1, endMs: 2 }));
    const { session } = ok(await store.getSession(s.id));
    assert.ok(wellFormed(session.preview), JSON.stringify(session.preview.slice(-4)));
    assert.ok(session.preview.length >= PREVIEW_CHARS && session.preview.length <= PREVIEW_CHARS + 1, `${session.preview.length}`);
    assert.ok(text.startsWith(session.preview), 'the first words, and only them: the next final adds nothing');
  }
});

test('past the session cap the oldest sessions are dropped and reported', async () => {
  const { store, clock } = await fresh({ cap: { maxSessions: 3, maxBytes: DEFAULT_CAP.maxBytes } });
  /** @type {string[][]} */
  const droppedEach = [];
  for (let k = 0; k < 5; k++) {
    clock.now += 1000;
    const r = await store.startSession({ title: `t${k}`, engine: 'local' });
    ok(r);
    ok(await store.addFinal(r.value.id, final(k)));
    // Stopped, as a page leaves it: one still recording is never dropped (see the test on two tabs below).
    ok(await store.updateSession(r.value.id, { state: 'stopped' }));
    droppedEach.push(r.dropped.map((s) => s.id));
  }
  assert.deepEqual(droppedEach, [[], [], [], ['s001'], ['s002']]);
  assert.deepEqual(ok(await store.listSessions()).map((s) => s.id), ['s005', 's004', 's003']);

  // Lowering the cap applies it at once, keeping the session named.
  store.setCap({ maxSessions: 1, maxBytes: DEFAULT_CAP.maxBytes });
  const pruned = await store.prune('s003');
  assert.deepEqual(ok(pruned).map((s) => s.id), ['s004', 's005']);
  assert.deepEqual(ok(await store.listSessions()).map((s) => s.id), ['s003']);
  assert.throws(() => store.setCap({ maxSessions: 0, maxBytes: 10 }), RangeError);
});

test('past the byte cap the oldest sessions go first, never the one being written', async () => {
  const { store, factory, clock } = await fresh();
  const a = ok(await store.startSession({ title: 'a', engine: 'local' }));
  for (let k = 0; k < 10; k++) ok(await store.addFinal(a.id, final(k, 20)));
  ok(await store.updateSession(a.id, { state: 'stopped' }));
  clock.now += 1000;
  const b = ok(await store.startSession({ title: 'b', engine: 'local' }));
  for (let k = 0; k < 10; k++) ok(await store.addFinal(b.id, final(k, 20)));
  ok(await store.updateSession(b.id, { state: 'stopped' }));
  const sizes = ok(await store.listSessions()).map((s) => s.bytes);
  // Room for b and a bit: the next final to c pushes the total over, and a (the oldest) goes.
  store.setCap({ maxSessions: 100, maxBytes: sizes[0] + 2000 });
  clock.now += 1000;
  const c = await store.startSession({ title: 'c', engine: 'local' });
  ok(c);
  /** @type {string[]} */
  const dropped = [...c.dropped.map((s) => s.id)];
  for (let k = 0; k < 10 && dropped.length === 0; k++) {
    const r = await store.addFinal(c.value.id, final(k, 20));
    ok(r);
    dropped.push(...r.dropped.map((s) => s.id));
  }
  assert.deepEqual(dropped, [a.id]);
  const left = ok(await store.listSessions());
  assert.deepEqual(left.map((s) => s.id), [c.value.id, b.id]);
  assert.ok(left.reduce((sum, s) => sum + s.bytes, 0) <= sizes[0] + 2000);

  // One session larger than the cap on its own keeps every word (the others go).
  store.setCap({ maxSessions: 100, maxBytes: 100 });
  const r = await store.addFinal(c.value.id, final(99));
  assert.deepEqual(ok(r) && r.dropped.map((s) => s.id), [b.id]);
  assert.equal(ok(await store.getSession(c.value.id)).finals.length, ok(await store.listSessions())[0].finalCount);
  const finalsLeft = await countFinals(factory);
  assert.equal(finalsLeft, ok(await store.listSessions())[0].finalCount);
});

test('a session still being recorded (in another tab) is never dropped for the cap; once stopped it can be', async () => {
  const { store, clock } = await fresh({ cap: { maxSessions: 1, maxBytes: DEFAULT_CAP.maxBytes } });
  const a = ok(await store.startSession({ title: 'tab A', engine: 'local' }));
  ok(await store.addFinal(a.id, final(0)));
  clock.now += 1000;
  const b = await store.startSession({ title: 'tab B', engine: 'local' });
  assert.deepEqual(ok(b) && b.dropped, [], 'both record: over the cap for now');
  const more = await store.addFinal(b.value.id, final(1));
  assert.deepEqual(ok(more) && more.dropped, []);
  assert.deepEqual(ok(await store.prune(b.value.id)), []);
  assert.deepEqual(ok(await store.getSession(a.id)).finals.map((f) => f.text), [final(0).text]);
  // Tab A stops (or its crash is found on the next load, 'interrupted'): the next write past the cap drops it.
  ok(await store.updateSession(a.id, { state: 'stopped' }));
  const next = await store.addFinal(b.value.id, final(2));
  assert.deepEqual(ok(next) && next.dropped.map((s) => s.id), [a.id]);
  assert.deepEqual(ok(await store.listSessions()).map((s) => s.id), [b.value.id]);
});

test('a full quota never drops a session still being recorded: with nothing else to drop the write fails', async () => {
  const { store, clock } = await fresh();
  const recording = ok(await store.startSession({ title: 'other tab', engine: 'local' }));
  clock.now += 1000;
  const stopped = ok(await store.startSession({ title: 'stopped', engine: 'local' }));
  ok(await store.updateSession(stopped.id, { state: 'stopped' }));
  clock.now += 1000;
  const written = ok(await store.startSession({ title: 'this tab', engine: 'local' }));
  const add = IDBObjectStore.prototype.add;
  IDBObjectStore.prototype.add = function fullAdd(...args) {
    if (this.name === FINALS) throw new DOMException('Quota exceeded', 'QuotaExceededError');
    return add.apply(this, args);
  };
  let full;
  try {
    full = await store.addFinal(written.id, final(0));
  } finally {
    IDBObjectStore.prototype.add = add;
  }
  assert.equal(full.ok, false);
  assert.equal(full.error.kind, 'quota');
  assert.deepEqual(full.dropped.map((s) => s.title), ['stopped'], 'the failure names what was removed for it');
  assert.deepEqual(ok(await store.listSessions()).map((s) => s.title), ['this tab', 'other tab'],
    'the stopped one made room in vain; the one another tab records into stays');
});

test('corrupt and old-version records are skipped and reported; the rest still reads', async () => {
  const { store, factory } = await fresh();
  const good = ok(await store.startSession({ title: 'good', engine: 'local' }));
  ok(await store.addFinal(good.id, final(0)));
  ok(await store.addFinal(good.id, final(1)));
  await raw(factory, (tx) => {
    const sessions = tx.objectStore(SESSIONS);
    sessions.put({ id: 'old', v: 0, startedAt: 1, text: 'a record from before versions' });
    sessions.put({ ...good, id: 'future', v: RECORD_VERSION + 1 });
    sessions.put({ ...good, id: 'odd-state', state: 'paused' });
    sessions.put({ ...good, id: 'no-dates', startedAt: 'yesterday' });
    sessions.put({ ...good, id: 'bad-pending', pending: { text: 42, startMs: 0 } });
    // A final with a broken word list, between two good ones.
    tx.objectStore(FINALS).put({ v: RECORD_VERSION, sessionId: good.id, seq: 0.5, text: 'x', startMs: 0, endMs: 1, words: [{ text: 1 }] });
    tx.objectStore(FINALS).put({ v: 7, sessionId: good.id, seq: 0.7, text: 'from a newer page' });
  });
  const listed = await store.listSessions();
  assert.deepEqual(ok(listed).map((s) => s.id), [good.id]);
  const reasons = Object.fromEntries(listed.skipped.map((s) => [s.id, s.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), ['bad-pending', 'future', 'no-dates', 'odd-state', 'old']);
  assert.match(reasons['bad-pending'], /pending/);
  assert.match(reasons.old, /record version 0/);
  assert.match(reasons.future, /record version 2/);
  assert.match(reasons['odd-state'], /state paused/);

  const opened = await store.getSession(good.id);
  assert.deepEqual(ok(opened).finals.map((f) => f.text), [final(0).text, final(1).text]);
  assert.deepEqual(opened.skipped.map((s) => s.reason), ['bad words', 'record version 7, expected 1']);
  // Writes go on past them, and the cap counts only readable sessions.
  ok(await store.addFinal(good.id, final(2)));
  const unreadable = await store.getSession('odd-state');
  assert.equal(unreadable.error.kind, 'missing');
  assert.match(unreadable.error.message, /unreadable/);
});

test('a session dated beyond what a Date can hold is skipped as bad dates, and the others still list', async () => {
  const { store, factory } = await fresh();
  const good = ok(await store.startSession({ title: 'good', engine: 'local' }));
  await raw(factory, (tx) => {
    const sessions = tx.objectStore(SESSIONS);
    sessions.put({ ...good, id: 'far-future', startedAt: 1e17 });
    sessions.put({ ...good, id: 'far-past', updatedAt: -8.64e15 - 1 });
    sessions.put({ ...good, id: 'the-edge', startedAt: 8.64e15, updatedAt: -8.64e15 });
  });
  const listed = await store.listSessions();
  assert.deepEqual(ok(listed).map((s) => s.id), ['the-edge', good.id]);
  assert.deepEqual(listed.skipped.map((s) => [s.id, s.reason]).sort(), [['far-future', 'bad dates'], ['far-past', 'bad dates']]);
  for (const s of listed.value) assert.doesNotThrow(() => new Date(s.startedAt).toISOString());
});

test('upgrade path: a newer schema runs only its new steps and keeps the data; an older page is told', async () => {
  const factory = new IDBFactory();
  const v1 = await fresh({ factory });
  const s = ok(await v1.store.startSession({ title: 'kept', engine: 'local' }));
  ok(await v1.store.addFinal(s.id, final(0)));

  // A future release's step 1 -> 2: an index, and a rewrite of the existing records in the same transaction.
  const seen = [];
  const step2 = (db, tx) => {
    seen.push(db.version);
    const sessions = tx.objectStore(SESSIONS);
    sessions.createIndex('state', 'state');
    const cursor = sessions.openCursor();
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c) return;
      c.update({ ...c.value, title: `${c.value.title} (migrated)` });
      c.continue();
    };
  };
  // The open store steps aside for the upgrade (versionchange) instead of blocking it.
  const v2 = await fresh({ factory, migrations: [...MIGRATIONS, step2] });
  assert.deepEqual(seen, [2], 'only the new step ran (re-running step 0 would fail: the stores exist)');
  const [listed] = ok(await v2.store.listSessions());
  assert.equal(listed.title, 'kept (migrated)');
  assert.deepEqual(ok(await v2.store.getSession(s.id)).finals.map((f) => f.text), [final(0).text]);

  const stale = await v1.store.listSessions();
  assert.equal(stale.ok, false);
  assert.equal(stale.error.kind, 'closed');
  // An older page opening the upgraded database is refused with a reason, not an exception.
  const older = await openTranscriptStore({ indexedDB: factory, keyRange: IDBKeyRange, name: 'test' });
  assert.equal(older.ok, false);
  assert.equal(older.error.kind, 'version');
  assert.match(older.error.message, /newer version/);
});

test('a browser without storage or refusing it gives a typed error', async () => {
  const none = await openTranscriptStore({ indexedDB: undefined });
  assert.equal(none.ok, false);
  assert.equal(none.error.kind, 'unavailable');
  // Firefox in some private modes and locked-down profiles refuse the open itself.
  const refusing = /** @type {any} */ ({
    open() { throw new DOMException('The operation is insecure.', 'SecurityError'); },
  });
  const refused = await openTranscriptStore({ indexedDB: refusing });
  assert.equal(refused.ok, false);
  assert.equal(refused.error.kind, 'unavailable');
  assert.match(refused.error.message, /insecure/);
  // Firefox private windows before version 115 fail the open with InvalidStateError: never open, not closed.
  const privateWindow = /** @type {any} */ ({
    open() {
      const request = {};
      setTimeout(() => {
        request.error = new DOMException('A mutation operation was attempted on a database that did not allow mutations.', 'InvalidStateError');
        request.onerror();
      });
      return request;
    },
  });
  const refusedPrivate = await openTranscriptStore({ indexedDB: privateWindow });
  assert.equal(refusedPrivate.ok, false);
  assert.equal(refusedPrivate.error.kind, 'unavailable');
  assert.match(refusedPrivate.error.message, /does not let the page save transcripts/);
  assert.equal(toStoreError(new DOMException('x', 'QuotaExceededError')).kind, 'quota');
  assert.equal(toStoreError(new Error('boom')).kind, 'failed');
});

test('an open() that never answers (a known Safari failure) gives up as unavailable; a late answer is closed', async () => {
  /** @type {any} */
  let request = null;
  const silent = /** @type {any} */ ({ open() { request = {}; return request; } });
  const timers = new FakeTimers();
  let outcome = null;
  openTranscriptStore({ indexedDB: silent, setTimer: timers.setTimeout, clearTimer: timers.clearTimeout }).then((o) => { outcome = o; });
  timers.advance(OPEN_TIMEOUT_MS - 1);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(outcome, null, 'waiting, within the open timeout');
  timers.advance(1);
  for (let i = 0; i < 5; i++) await tick();
  assert.notEqual(outcome, null, 'the page is told instead of waiting for ever');
  assert.equal(timers.pending.size, 0);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error.kind, 'unavailable');
  assert.match(outcome.error.message, /did not open/);
  // The database opens after all: nobody holds that connection, so it is closed at once.
  let closed = false;
  request.result = { close() { closed = true; } };
  request.onsuccess();
  assert.equal(closed, true);
});

test('a full browser quota drops at most one older session per write, none after a drop in vain, and always says which', async () => {
  const { store, clock } = await fresh();
  for (let k = 0; k < 5; k++) {
    clock.now += 1000;
    const { id } = ok(await store.startSession({ title: `t${k}`, engine: 'local' }));
    ok(await store.updateSession(id, { state: 'stopped' }));
  }
  // The browser's quota, simulated while `body` runs: adding a final fails until `needed` more sessions have been
  // deleted. Browsers reclaim deleted records' space lazily, so a deletion may free nothing at once (Infinity).
  const add = IDBObjectStore.prototype.add;
  const del = IDBObjectStore.prototype.delete;
  let needed = 1;
  /** @template T @param {() => Promise<T>} body @returns {Promise<T>} */
  const underQuota = async (body) => {
    IDBObjectStore.prototype.add = function patchedAdd(...args) {
      if (this.name === FINALS && needed > 0) throw new DOMException('Quota exceeded', 'QuotaExceededError');
      return add.apply(this, args);
    };
    IDBObjectStore.prototype.delete = function patchedDelete(...args) {
      if (this.name === SESSIONS) needed -= 1;
      return del.apply(this, args);
    };
    try {
      return await body();
    } finally {
      IDBObjectStore.prototype.add = add;
      IDBObjectStore.prototype.delete = del;
    }
  };
  const [inVain, after] = await underQuota(async () => {
    const r = await store.addFinal('s005', final(0));
    assert.deepEqual(ok(r) && r.dropped.map((s) => s.id), ['s001'], 'one deletion made room, the oldest');
    needed = Infinity;
    return [await store.addFinal('s005', final(1)), await store.addFinal('s005', final(2))];
  });
  assert.equal(inVain.ok, false);
  assert.equal(inVain.error.kind, 'quota');
  assert.deepEqual(inVain.dropped.map((s) => s.id), ['s002'], 'one more went for it, and the failure says which');
  assert.equal(after.ok, false);
  assert.equal(after.error.kind, 'quota');
  assert.equal(after.dropped, undefined, 'a drop that made no room is not repeated on the next write');
  assert.deepEqual(ok(await store.getSession('s005')).finals.map((f) => f.text), [final(0).text], 'nothing half-written');
  assert.deepEqual(ok(await store.listSessions()).map((s) => s.id), ['s005', 's004', 's003']);
  // Room again (the browser freed the space, the user deleted some): a later full quota may make room once more.
  ok(await store.addFinal('s005', final(3)));
  needed = 1;
  const later = await underQuota(() => store.addFinal('s005', final(4)));
  assert.deepEqual(ok(later) && later.dropped.map((s) => s.id), ['s003']);
});

test('the words not final yet live on the session record: replaced, counted in its size, cleared by a final', async () => {
  const { store } = await fresh();
  const session = ok(await store.startSession({ title: 't', engine: 'local' }));
  const empty = session.bytes;
  let got = ok(await store.setPending(session.id, { text: 'go forward', startMs: 1200 }));
  assert.deepEqual(got.pending, { text: 'go forward', startMs: 1200 });
  assert.ok(got.bytes > empty, 'the cap counts them');
  got = ok(await store.setPending(session.id, { text: 'go forward ten meters', startMs: 1200 }));
  const [listed] = ok(await store.listSessions());
  assert.deepEqual(listed.pending, { text: 'go forward ten meters', startMs: 1200 }, 'read back as written');
  assert.equal(listed.bytes, got.bytes);
  ok(await store.addFinal(session.id, final(0)));
  assert.equal(ok(await store.getSession(session.id)).session.pending, undefined);
  ok(await store.setPending(session.id, { text: 'more', startMs: null }));
  got = ok(await store.setPending(session.id, null));
  assert.equal(got.pending, undefined);
  ok(await store.setPending(session.id, { text: 'again', startMs: null }));
  got = ok(await store.updateSession(session.id, { state: 'interrupted' }));
  assert.equal(got.pending.text, 'again', 'an interrupted recording keeps them: that is what they are for');
  got = ok(await store.updateSession(session.id, { state: 'stopped' }));
  assert.equal(got.pending, undefined);
  assert.equal((await store.setPending('nobody', { text: 'x', startMs: null })).error.kind, 'missing');
});

test('words in flight carry the audio clock: the session grows with it, as with a final, and never shrinks', async () => {
  const { store } = await fresh();
  const session = ok(await store.startSession({ title: 't', engine: 'local' }));
  ok(await store.addFinal(session.id, { text: 'hello', startMs: 0, endMs: 2000 }, { durationMs: 2500 }));
  let got = ok(await store.setPending(session.id, { text: 'and then we went', startMs: 10_000 }, { durationMs: 10_600 }));
  assert.equal(got.durationMs, 10_600);
  got = ok(await store.setPending(session.id, { text: 'and then we went home', startMs: 10_000 }, { durationMs: 9000 }));
  assert.equal(got.durationMs, 10_600);
  got = ok(await store.setPending(session.id, null));
  assert.equal(got.durationMs, 10_600, 'a length heard stays when the words are superseded');
  assert.equal(ok(await store.listSessions())[0].durationMs, 10_600, 'read back as written');
});
