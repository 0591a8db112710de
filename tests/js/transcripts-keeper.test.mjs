// The keeper between the page and the store, over an in-memory IndexedDB: writes land in call order although the
// page never waits, one session per transcript, Clear deletes, a dead page's session is recovered (a live tab's is
// not), failures become one notice each. The history panel's pure parts: the row text and the saved export, which
// must equal the page's own export of the same transcript. And the page's wiring of them (page/saved.js), driven
// through the run controller with a fake document.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';

import { exportAs } from '../../static/export.js';
import { LOCK_PREFIX, TranscriptKeeper } from '../../static/transcripts/keeper.js';
import { exportSaved, savedSegments, summarise } from '../../static/transcripts/history.js';
import { DB_NAME, FINALS, OPEN_TIMEOUT_MS, SESSIONS, openTranscriptStore } from '../../static/transcripts/store.js';
import { RunController } from '../../static/page/controller.js';
import { mountSaved } from '../../static/page/saved.js';
import { FakeTimers, tick } from './support/fakes.mjs';
import { fakeDocument, fakeLocks, noticeView, scriptedSessions } from './support/page-fakes.mjs';

/**
 * @param {IDBFactory} factory
 * @param {{locks?: any, cap?: any, name?: string, lockWaitMs?: number}} [options]
 */
function keeperOn(factory, options = {}) {
  const notices = [];
  const keeper = new TranscriptKeeper({
    open: () => openTranscriptStore({ indexedDB: factory, keyRange: IDBKeyRange, name: options.name ?? 'k', cap: options.cap }),
    notify: (n) => notices.push(n),
    locks: options.locks ?? null,
    ...(options.lockWaitMs !== undefined ? { lockWaitMs: options.lockWaitMs } : {}),
  });
  return { keeper, notices };
}

/**
 * The page's saved transcripts as mountPage() wires them: a run controller whose sessions the test drives, the
 * keeper and history panel on the given database, and the warnings the page shows.
 * @param {{indexedDB: IDBFactory | undefined, locks?: any}} options
 */
function savedPage({ indexedDB, locks = null }) {
  const notices = noticeView();
  const sessions = scriptedSessions();
  const controller = new RunController({
    view: notices.view,
    createSession: sessions.createSession,
    startFileSource: async () => { throw new Error('no files here'); },
    now: () => 0,
  });
  const win = { document: fakeDocument(), indexedDB, IDBKeyRange, navigator: locks ? { locks } : {} };
  const saved = mountSaved({ win: /** @type {any} */ (win), controller, view: notices.view, save: () => {}, storage: null });
  return { controller, saved, sessions, warnings: notices.warnings };
}

/** @param {number} k */
const seg = (k) => ({
  text: `final number ${k}`,
  startMs: k * 1000,
  endMs: k * 1000 + 800,
  words: [{ text: 'final', startMs: k * 1000, endMs: k * 1000 + 300 }],
});

test("a recording that got no words adds no engine to the saved transcript, as the page's export counts them", async () => {
  const factory = new IDBFactory();
  const { keeper } = keeperOn(factory);
  keeper.startRun({ title: 'talk', engine: 'truebar' });
  keeper.addFinal(seg(0), 900);
  keeper.endRun(1000);
  keeper.startRun({ title: 'talk', engine: 'wiro' }); // the microphone refused, or Cancel before any word
  keeper.endRun(1000);
  await keeper.flush();
  let [session] = await keeper.query((s) => s.listSessions());
  assert.deepEqual(session.engines, ['truebar']);
  keeper.startRun({ title: 'talk', engine: 'wiro' });
  keeper.addFinal(seg(1), 1900);
  await keeper.flush();
  [session] = await keeper.query((s) => s.listSessions());
  assert.deepEqual(session.engines, ['truebar', 'wiro']);
});

test('a lock manager that never grants holds the saving back only lockWaitMs, not for good', async () => {
  const factory = new IDBFactory();
  const silent = { request: () => new Promise(() => {}) }; // neither grants nor refuses
  const { keeper, notices } = keeperOn(factory, { locks: silent, lockWaitMs: 20 });
  keeper.startRun({ title: 'talk', engine: 'local' });
  keeper.addFinal(seg(0), 900);
  const flushed = await Promise.race([keeper.flush().then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
  assert.equal(flushed, true, 'the first final waited for a lock that never came');
  const [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.finalCount, 1);
  assert.deepEqual(notices, []);
});

test('one transcript, two recordings: every final lands in order without the page waiting', async () => {
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory);
  // Called back to back, as the page's event handlers do.
  keeper.startRun({ title: 'talk', engine: 'local' });
  for (let k = 0; k < 20; k++) keeper.addFinal(seg(k), k * 1000 + 900);
  keeper.endRun(20_500);
  keeper.startRun({ title: 'talk', engine: 'wiro' });
  keeper.addFinal({ text: 'untimed', startMs: null, endMs: null, estimated: true }, 21_000);
  await keeper.flush();
  const [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.id, keeper.currentId);
  assert.equal(session.state, 'recording');
  assert.deepEqual(session.engines, ['local', 'wiro']);
  assert.equal(session.durationMs, 21_000);
  const { finals } = await keeper.query((s) => s.getSession(session.id));
  assert.deepEqual(finals.map((f) => f.text), [...Array.from({ length: 20 }, (_, k) => seg(k).text), 'untimed']);
  assert.deepEqual(notices, []);

  keeper.endRun(22_000);
  keeper.discard();
  assert.equal(keeper.currentId, null);
  await keeper.flush();
  assert.deepEqual(await keeper.query((s) => s.listSessions()), [], 'Clear deletes the stored copy');
});

test('a recording that never got a final leaves no saved session', async () => {
  const { keeper } = keeperOn(new IDBFactory());
  keeper.startRun({ title: 'refused microphone', engine: 'local' });
  keeper.endRun(0);
  keeper.startRun({ title: 'refused microphone', engine: 'wiro' });
  keeper.endRun(0);
  await keeper.flush();
  assert.equal(keeper.currentId, null);
  assert.deepEqual(await keeper.query((s) => s.listSessions()), []);
  // The engine of the recording that produced the first final is the one saved.
  keeper.startRun({ title: 'refused microphone', engine: 'truebar' });
  keeper.addFinal(seg(0), 900);
  await keeper.flush();
  const [session] = await keeper.query((s) => s.listSessions());
  assert.deepEqual(session.engines, ['truebar']);
  assert.equal(session.state, 'recording');
});

test('the final handed over is copied: later changes by the page do not leak into the store', async () => {
  const { keeper } = keeperOn(new IDBFactory());
  keeper.startRun({ title: 't', engine: 'local' });
  const s = seg(1);
  keeper.addFinal(s, 2000);
  s.text = 'changed';
  s.words[0].text = 'changed';
  await keeper.flush();
  const { finals } = await keeper.query((st) => st.getSession(/** @type {string} */ (keeper.currentId)));
  assert.equal(finals[0].text, 'final number 1');
  assert.equal(finals[0].words[0].text, 'final');
});

test('a page that died mid-recording is recovered as interrupted; a live tab is left alone', async () => {
  const factory = new IDBFactory();
  const locks = fakeLocks();
  const live = keeperOn(factory, { locks });
  live.keeper.startRun({ title: 'live tab', engine: 'local' });
  live.keeper.addFinal(seg(0), 1000);
  const dead = keeperOn(factory);  // no locks: as if its tab had gone
  dead.keeper.startRun({ title: 'crashed', engine: 'truebar' });
  dead.keeper.addFinal(seg(0), 1000);
  dead.keeper.addFinal(seg(1), 2000);
  await Promise.all([live.keeper.flush(), dead.keeper.flush()]);
  assert.ok(locks.held.has(LOCK_PREFIX + live.keeper.currentId));

  const reopened = keeperOn(factory, { locks });
  const restored = await reopened.keeper.recoverInterrupted();
  assert.ok(restored);
  assert.equal(restored.session.title, 'crashed');
  assert.equal(restored.session.state, 'interrupted');
  assert.deepEqual(restored.finals.map((f) => f.text), [seg(0).text, seg(1).text]);
  assert.equal(reopened.keeper.currentId, dead.keeper.currentId, 'Clear on the new page removes the restored copy');
  const states = Object.fromEntries((await reopened.keeper.query((s) => s.listSessions())).map((s) => [s.title, s.state]));
  assert.deepEqual(states, { 'live tab': 'recording', crashed: 'interrupted' });
  // Restored once: the next load does not offer it again (it is in the history).
  assert.equal(await keeperOn(factory, { locks }).keeper.recoverInterrupted(), null);
  assert.ok(locks.held.has(LOCK_PREFIX + dead.keeper.currentId), 'the restoring page holds it now');

  // A new Start on the page that restored it begins a new session; the interrupted one stays.
  await reopened.keeper.detach();
  reopened.keeper.startRun({ title: 'next', engine: 'local' });
  reopened.keeper.addFinal(seg(0), 1000);
  await reopened.keeper.flush();
  assert.notEqual(reopened.keeper.currentId, dead.keeper.currentId);
  assert.equal((await reopened.keeper.query((s) => s.listSessions())).length, 3);
});

test('a tab holds its new session before writing it: another tab recovering right after the write leaves it recording', async () => {
  const factory = new IDBFactory();
  const locks = fakeLocks();
  const a = keeperOn(factory, { locks });
  const b = keeperOn(factory, { locks });
  await Promise.all([a.keeper.ready, b.keeper.ready]);
  const store = /** @type {any} */ (a.keeper.store);
  const startSession = store.startSession.bind(store);
  store.startSession = async (meta) => {
    const written = await startSession(meta);
    await b.keeper.recoverInterrupted();
    return written;
  };
  a.keeper.startRun({ title: 'live', engine: 'local' });
  a.keeper.addFinal(seg(0), 1000);
  await a.keeper.flush();
  const sessions = await b.keeper.query((s) => s.listSessions());
  assert.deepEqual(sessions.map((s) => [s.title, s.state, s.finalCount]), [['live', 'recording', 1]]);
  assert.ok(locks.held.has(LOCK_PREFIX + a.keeper.currentId));
});

test('of two tabs opened at once after a crash, one restores the session', async () => {
  const factory = new IDBFactory();
  const dead = keeperOn(factory);
  dead.keeper.startRun({ title: 'crashed', engine: 'local' });
  dead.keeper.addFinal(seg(0), 1000);
  await dead.keeper.flush();
  const locks = fakeLocks();
  const tabs = [keeperOn(factory, { locks }), keeperOn(factory, { locks })];
  const restored = await Promise.all(tabs.map((t) => t.keeper.recoverInterrupted()));
  assert.deepEqual(restored.map((r) => (r ? r.session.title : null)).sort(), ['crashed', null]);
  assert.deepEqual(tabs.map((t) => t.keeper.currentId).filter(Boolean), [dead.keeper.currentId]);
});

test('a storage that cannot be opened gives one notice and the page carries on', async () => {
  const notices = [];
  const keeper = new TranscriptKeeper({
    open: () => openTranscriptStore({ indexedDB: undefined }),
    notify: (n) => notices.push(n),
  });
  assert.equal(await keeper.ready, false);
  keeper.startRun({ title: 't', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  keeper.endRun(1000);
  keeper.discard();
  await keeper.flush();
  assert.equal(await keeper.recoverInterrupted(), null);
  assert.equal(notices.length, 1);
  assert.equal(notices[0].kind, 'error');
  assert.equal(notices[0].error.kind, 'unavailable');
  assert.match(notices[0].message, /still works/);
});

test('a database that never opens: one notice, and the writes asked for meanwhile are let go of, not kept for ever', async () => {
  const notices = [];
  const timers = new FakeTimers();
  const keeper = new TranscriptKeeper({
    open: () => openTranscriptStore({
      indexedDB: /** @type {any} */ ({ open: () => ({}) }), setTimer: timers.setTimeout, clearTimer: timers.clearTimeout,
    }),
    notify: (n) => notices.push(n),
  });
  keeper.startRun({ title: 't', engine: 'local' });
  for (let k = 0; k < 100; k++) keeper.addFinal(seg(k), k * 1000 + 900);
  let outcome = 'waiting';
  Promise.all([keeper.ready, keeper.flush(), keeper.query((s) => s.listSessions())]).then((o) => { outcome = o; });
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(outcome, 'waiting', 'the database is still given its time to open');
  timers.advance(OPEN_TIMEOUT_MS);
  for (let i = 0; i < 10; i++) await tick();
  assert.deepEqual(outcome, [false, undefined, null], 'saving gives up, the history panel gets an answer');
  assert.deepEqual(notices.map((n) => n.error.kind), ['unavailable']);
  assert.match(notices[0].message, /not being saved: export it before you leave/);
});

test('past the cap the user is told which sessions were removed', async () => {
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory, { cap: { maxSessions: 2, maxBytes: 1e9 } });
  for (let k = 0; k < 3; k++) {
    keeper.startRun({ title: `t${k}`, engine: 'local' });
    keeper.addFinal(seg(k), 1000);
    keeper.endRun(1000);
    await keeper.detach();
  }
  await keeper.flush();
  assert.deepEqual(notices.map((n) => n.kind), ['dropped']);
  assert.deepEqual(notices[0].sessions.map((s) => s.title), ['t0']);
  assert.match(notices[0].message, /oldest saved transcript was removed/);
  // Lowering the limit applies at once.
  await keeper.setCap({ maxSessions: 1, maxBytes: 1e9 });
  assert.deepEqual(notices.slice(1).map((n) => n.sessions.map((s) => s.title)), [['t1']]);
  assert.match(notices[1].message, /oldest saved transcript was removed/);
});

test('a write that fails for a full browser quota names the saved transcript removed to make room for it', async () => {
  const { keeper, notices } = keeperOn(new IDBFactory());
  keeper.startRun({ title: 'old', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  keeper.endRun(1000);
  await keeper.detach();
  const [old] = await keeper.query((s) => s.listSessions());
  const add = IDBObjectStore.prototype.add;
  IDBObjectStore.prototype.add = function fullAdd(...args) {
    if (this.name === FINALS) throw new DOMException('Quota exceeded', 'QuotaExceededError');
    return add.apply(this, args);
  };
  try {
    keeper.startRun({ title: 'new', engine: 'local' });
    keeper.addFinal(seg(1), 2000);
    await keeper.flush();
  } finally {
    IDBObjectStore.prototype.add = add;
  }
  assert.deepEqual(notices.map((n) => (n.kind === 'error' ? `error: ${n.error.kind}` : n.kind)), ['dropped', 'error: quota']);
  assert.deepEqual(notices[0].sessions.map((s) => s.id), [old.id]);
  assert.match(notices[0].message, /the oldest saved transcript was removed/);
  assert.deepEqual((await keeper.query((s) => s.listSessions())).map((s) => [s.title, s.finalCount]), [['new', 0]]);
});

test('deleting the page’s own session from the history lets go of it', async () => {
  const { keeper } = keeperOn(new IDBFactory());
  keeper.startRun({ title: 'a', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  keeper.endRun(1000);
  await keeper.flush();
  const id = /** @type {string} */ (keeper.currentId);
  assert.equal(await keeper.delete([id]), true);
  assert.equal(keeper.currentId, null);
  // The next Start makes a new session instead of writing into the deleted one.
  keeper.startRun({ title: 'b', engine: 'local' });
  keeper.addFinal(seg(1), 2000);
  await keeper.flush();
  const sessions = await keeper.query((s) => s.listSessions());
  assert.deepEqual(sessions.map((s) => [s.title, s.finalCount]), [['b', 1]]);
  assert.equal(await keeper.delete('all'), true);
  assert.deepEqual(await keeper.query((s) => s.listSessions()), []);
});

test('a saved export equals the page export of the same transcript', async () => {
  const { keeper } = keeperOn(new IDBFactory());
  const segments = [
    seg(0), { text: 'no times', startMs: null, endMs: null, words: [] },
    { text: 'guessed times', startMs: 2500, endMs: 2900, words: [], estimated: true }, seg(3),
  ];
  keeper.startRun({ title: 'My talk', engine: 'local' });
  for (const s of segments) keeper.addFinal(s, 3800);
  keeper.endRun(5000);
  await keeper.flush();
  const { session, finals } = await keeper.query((s) => s.getSession(/** @type {string} */ (keeper.currentId)));
  const at = '2026-01-01T00:00:00.000Z';
  for (const format of /** @type {const} */ (['txt', 'srt', 'vtt', 'json'])) {
    const page = exportAs(format, segments, { title: 'My talk', durationMs: 5000, provider: 'local', exportedAt: at });
    assert.deepEqual(exportSaved(format, session, finals, at), page, format);
  }
  const row = summarise(session);
  assert.equal(row.engines, 'local');
  assert.equal(row.length, '00:05');
  assert.equal(row.words, 'final number 0 no times guessed times final number 3');
  assert.match(exportSaved('json', session, finals, at).text, /"estimated": true/, 'the estimate survives saving');
  assert.equal(row.state, '');
  assert.equal(summarise({ ...session, state: 'interrupted', preview: '', engines: [] }).words, '(no words)');
});

test('the page exports its transcript with the same metadata as the history exports the saved session', async () => {
  const page = savedPage({ indexedDB: new IDBFactory() });
  await page.saved.load();
  await page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  const session = page.sessions.last();
  session.audioMs = 2500;
  session.emit({ type: 'final', text: 'Hello there.', startMs: 0, endMs: 2000, words: [] });
  await page.controller.stop();
  await page.saved.keeper.flush();
  const [stored] = await page.saved.keeper.query((s) => s.listSessions());
  const { finals } = await page.saved.keeper.query((s) => s.getSession(stored.id));
  const at = '2026-01-01T00:00:00.000Z';
  const pageExport = exportAs('json', page.controller.segments, { ...page.controller.exportMeta(), exportedAt: at });
  assert.deepEqual(pageExport, exportSaved('json', stored, finals, at));
  assert.equal(JSON.parse(pageExport.text).meta.provider, 'local');
});

test('a session deleted in another tab: the recording page is told once; browsing it is no news', async () => {
  const factory = new IDBFactory();
  const a = keeperOn(factory);
  const b = keeperOn(factory);
  a.keeper.startRun({ title: 'a', engine: 'local' });
  a.keeper.addFinal(seg(0), 1000);
  await a.keeper.flush();
  const id = /** @type {string} */ (a.keeper.currentId);
  assert.equal(await b.keeper.delete([id]), true);
  a.keeper.addFinal(seg(1), 2000);
  a.keeper.addFinal(seg(2), 3000);
  await a.keeper.flush();
  assert.deepEqual(a.notices.map((n) => n.kind === 'error' && n.error.kind), ['missing']);
  assert.match(a.notices[0].message, /not being saved/);
  assert.equal(await b.keeper.query((s) => s.getSession(id)), null);
  assert.deepEqual(b.notices, []);
  // Clear, then a new recording saves again.
  a.keeper.discard();
  a.keeper.startRun({ title: 'again', engine: 'local' });
  a.keeper.addFinal(seg(3), 4000);
  await a.keeper.flush();
  assert.deepEqual((await b.keeper.query((s) => s.listSessions())).map((s) => s.title), ['again']);
});

test('an unreadable record is reported once, however often the list is read', async () => {
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory);
  keeper.startRun({ title: 'a', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  await keeper.flush();
  const store = /** @type {any} */ (keeper.store);
  await new Promise((resolve, reject) => {
    const tx = store.db.transaction(['sessions'], 'readwrite');
    tx.objectStore('sessions').put({ id: 'junk', v: 99 });
    tx.oncomplete = resolve;
    tx.onerror = reject;
  });
  for (let i = 0; i < 3; i++) assert.equal((await keeper.query((s) => s.listSessions())).length, 1);
  assert.deepEqual(notices.map((n) => [n.kind, n.count]), [['skipped', 1]]);
  assert.match(notices[0].message, /1 saved record was unreadable/);
});

test('a saved session dated past what a Date can hold does not blank the history: the others are listed', async () => {
  const factory = new IDBFactory();
  const tab = keeperOn(factory, { name: DB_NAME });
  tab.keeper.startRun({ title: 'good', engine: 'local' });
  tab.keeper.addFinal(seg(0), 1000);
  tab.keeper.endRun(1000);
  await tab.keeper.flush();
  const [good] = await tab.keeper.query((s) => s.listSessions());
  const db = /** @type {any} */ (tab.keeper.store).db;
  await new Promise((resolve, reject) => {
    const tx = db.transaction(SESSIONS, 'readwrite');
    tx.objectStore(SESSIONS).put({ ...good, id: 'far-future', startedAt: 1e17 });
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  const page = savedPage({ indexedDB: factory });
  await page.saved.load();
  assert.deepEqual(page.saved.panel.list.children.map((li) => li.dataset.sessionId), [good.id]);
  assert.deepEqual(page.warnings(), ['1 saved record was unreadable (damaged, or written by another version of the page) and skipped.']);
});

test('the storage limits the user set are read back, and anything odd gives the defaults', async () => {
  const { loadCap, CAP_KEY } = await import('../../static/page/saved.js');
  const { DEFAULT_CAP } = await import('../../static/transcripts/store.js');
  const storage = (value) => ({ getItem: (key) => (key === CAP_KEY ? value : null) });
  assert.deepEqual(loadCap(storage(JSON.stringify({ maxSessions: 3, maxBytes: 1000 }))), { maxSessions: 3, maxBytes: 1000 });
  for (const odd of [null, 'not json', '[]', '{"maxSessions": 0, "maxBytes": 5}', '{"maxSessions": 2.5, "maxBytes": 5}']) {
    assert.deepEqual(loadCap(storage(odd)), DEFAULT_CAP, String(odd));
  }
  assert.deepEqual(loadCap(null), DEFAULT_CAP);
});

test('a recording started before the crashed session is looked for keeps its own saved session', async () => {
  const factory = new IDBFactory();
  const dead = keeperOn(factory);
  dead.keeper.startRun({ title: 'crashed', engine: 'local' });
  dead.keeper.addFinal(seg(0), 1000);
  await dead.keeper.flush();

  // Start pressed before the page got round to restoring: its first final is written first.
  const locks = fakeLocks();
  const page = keeperOn(factory, { locks });
  page.keeper.startRun({ title: 'live', engine: 'local' });
  page.keeper.addFinal(seg(1), 2000);
  await page.keeper.flush();
  const live = page.keeper.currentId;
  assert.ok(live);

  const restored = await page.keeper.recoverInterrupted();
  assert.equal(restored, null, 'nothing is put back over a live recording');
  assert.equal(page.keeper.currentId, live, 'the recording keeps writing into its own session');
  assert.ok(locks.held.has(LOCK_PREFIX + live), 'and keeps holding its lock');
  page.keeper.addFinal(seg(2), 3000);
  await page.keeper.flush();
  const byTitle = Object.fromEntries((await page.keeper.query((s) => s.listSessions())).map((s) => [s.title, s]));
  assert.equal(byTitle.crashed.state, 'interrupted', 'the crashed one is still marked, and stays in the history');
  assert.equal(byTitle.crashed.finalCount, 1);
  assert.equal(byTitle.live.finalCount, 2);
});

test('Clear before the first save has run: nothing is saved, and the next recording starts its own session', async () => {
  const { keeper } = keeperOn(new IDBFactory());
  keeper.startRun({ title: 'cleared', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  keeper.endRun(1000);
  // Clear is pressed at once: the store has not even opened yet, so no session exists to delete.
  keeper.discard();
  keeper.startRun({ title: 'next', engine: 'local' });
  keeper.addFinal(seg(1), 2000);
  await keeper.flush();
  const sessions = await keeper.query((s) => s.listSessions());
  assert.deepEqual(sessions.map((s) => [s.title, s.finalCount]), [['next', 1]], 'the cleared transcript is gone');
  const { finals } = await keeper.query((s) => s.getSession(sessions[0].id));
  assert.deepEqual(finals.map((f) => f.text), [seg(1).text], 'the next recording does not append to it');
});

test('Delete all before the first save has run takes the pending transcript with it and lets go of it', async () => {
  const locks = fakeLocks();
  const { keeper, notices } = keeperOn(new IDBFactory(), { locks });
  keeper.startRun({ title: 'pending', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  keeper.endRun(1000);
  assert.equal(keeper.holdsTranscript, true, 'the page has a transcript being saved, though not written yet');
  assert.equal(await keeper.delete('all'), true);
  assert.deepEqual(await keeper.query((s) => s.listSessions()), []);
  assert.equal(keeper.currentId, null);
  assert.equal(locks.held.size, 0, 'no lock is left on the deleted session');
  keeper.startRun({ title: 'after', engine: 'local' });
  keeper.addFinal(seg(1), 2000);
  await keeper.flush();
  assert.deepEqual((await keeper.query((s) => s.listSessions())).map((s) => s.title), ['after']);
  assert.deepEqual(notices, []);
});

/** Every saved session with the text of its finals: what a reload or the history would find. */
async function savedTexts(keeper) {
  const sessions = await keeper.query((s) => s.listSessions());
  return Promise.all(sessions.map(async (s) => {
    const { finals } = await keeper.query((st) => st.getSession(s.id));
    return [s.title, s.state, finals.map((f) => f.text)];
  }));
}

test('Clear or Delete right after Stop, while the last final is still queued, leaves nothing saved to come back', async () => {
  for (const how of ['clear', 'delete']) {
    const factory = new IDBFactory();
    const { keeper, notices } = keeperOn(factory, { locks: fakeLocks() });
    keeper.startRun({ title: 'private', engine: 'local' });
    keeper.addFinal(seg(0), 1000);
    await keeper.flush();
    // Stop queues the run's last final and its end; the user clears (or deletes it from the history) at once.
    keeper.addFinal(seg(1), 2000);
    keeper.setPending({ text: 'and three', startMs: 2000 }, 2500);
    keeper.endRun(2500);
    if (how === 'clear') keeper.discard();
    else assert.equal(await keeper.delete([/** @type {string} */ (keeper.currentId)]), true, how);
    await keeper.flush();
    assert.deepEqual(await savedTexts(keeper), [], `${how}: no saved copy, not even a piece of it`);
    assert.equal(keeper.currentId, null, how);
    // The next load of the page (this tab gone, its lock with it) has nothing to put back.
    assert.equal(await keeperOn(factory, { locks: fakeLocks() }).keeper.recoverInterrupted(), null, how);
    assert.deepEqual(notices, [], how);
  }
});

test('finals queued before the page lets go of its transcript (a new Start after a restore) stay with its session', async () => {
  const locks = fakeLocks();
  const { keeper, notices } = keeperOn(new IDBFactory(), { locks });
  keeper.startRun({ title: 'first', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  await keeper.flush();
  const first = keeper.currentId;
  keeper.addFinal(seg(1), 2000);
  keeper.endRun(2000);
  keeper.detach();
  keeper.startRun({ title: 'second', engine: 'local' });
  keeper.addFinal(seg(2), 3000);
  await keeper.flush();
  assert.deepEqual(await savedTexts(keeper), [
    ['second', 'recording', [seg(2).text]],
    ['first', 'stopped', [seg(0).text, seg(1).text]],
  ]);
  assert.notEqual(keeper.currentId, first);
  assert.deepEqual([...locks.held], [LOCK_PREFIX + keeper.currentId], 'only the transcript being recorded is held');
  assert.deepEqual(notices, []);
});

test('Clear on the page just after Stop, with words in flight: the cleared transcript does not come back on reload', async () => {
  const factory = new IDBFactory();
  const page = savedPage({ indexedDB: factory, locks: fakeLocks() });
  await page.saved.load();
  await page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  const session = page.sessions.last();
  session.emit({ type: 'final', text: 'Private words one.', startMs: 0, endMs: 900, words: [] });
  await page.saved.keeper.flush();
  session.emit({ type: 'final', text: 'Private words two.', startMs: 1000, endMs: 1900, words: [] });
  // Still in flight at Stop: the controller keeps it as a rough final.
  session.emit({ type: 'partial', text: 'and three' });
  await page.controller.stop();
  assert.equal(page.controller.clear(), true);
  await page.saved.keeper.flush();
  assert.deepEqual(await page.saved.keeper.query((s) => s.listSessions()), []);

  const reloaded = savedPage({ indexedDB: factory, locks: fakeLocks() });
  await reloaded.saved.load();
  assert.deepEqual(reloaded.controller.segments, [], 'a cleared transcript stays cleared');
});

test('two tabs recording under a cap of one transcript: neither deletes what the other is recording', async () => {
  const factory = new IDBFactory();
  const locks = fakeLocks();
  const cap = { maxSessions: 1, maxBytes: 1e9 };
  const a = keeperOn(factory, { locks, cap });
  a.keeper.startRun({ title: 'tab A lecture', engine: 'local' });
  a.keeper.addFinal(seg(0), 1000);
  await a.keeper.flush();
  const b = keeperOn(factory, { locks, cap });
  b.keeper.startRun({ title: 'tab B meeting', engine: 'local' });
  b.keeper.addFinal(seg(0), 1000);
  await b.keeper.flush();
  a.keeper.addFinal(seg(1), 2000);
  await a.keeper.flush();
  assert.deepEqual(a.notices, [], 'tab A keeps saving');
  assert.deepEqual(b.notices, []);
  assert.deepEqual(await savedTexts(a.keeper), [
    ['tab B meeting', 'recording', [seg(0).text]],
    ['tab A lecture', 'recording', [seg(0).text, seg(1).text]],
  ]);
  // Tab A stops: tab B's next final brings the store back under the cap, and says so.
  a.keeper.endRun(2000);
  await a.keeper.flush();
  b.keeper.addFinal(seg(1), 2000);
  await b.keeper.flush();
  assert.deepEqual(b.notices.map((n) => n.kind === 'dropped' && n.sessions.map((s) => s.title)), [['tab A lecture']]);
});

test('an old tab that holds the database open and ignores versionchange cannot stall the page', async () => {
  const { MIGRATIONS } = await import('../../static/transcripts/store.js');
  const factory = new IDBFactory();
  // An old tab: an open connection that never closes for an upgrade.
  const old = await new Promise((resolve, reject) => {
    const r = factory.open('k', 1);
    r.onupgradeneeded = () => MIGRATIONS[0](r.result, r.transaction);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const notices = [];
  const keeper = new TranscriptKeeper({
    open: () => openTranscriptStore({
      indexedDB: factory, keyRange: IDBKeyRange, name: 'k', migrations: [...MIGRATIONS, () => {}],
    }),
    notify: (n) => notices.push(n),
  });
  try {
    const outcome = await Promise.race([keeper.ready, new Promise((r) => setTimeout(() => r('hung'), 1000))]);
    assert.equal(outcome, false, 'the keeper gives up on the store instead of waiting for the other tab');
    assert.deepEqual(notices.map((n) => n.error.kind), ['blocked']);
    assert.match(notices[0].message, /another tab/i);
    assert.equal(await keeper.query((s) => s.listSessions()), null, 'the history panel gets an answer');
  } finally {
    // The old tab goes away: the upgrade that was waiting completes, and the late connection is closed again.
    old.close();
  }
});

test('a newer page upgrading the database in another tab: this page steps aside and says so at once', async () => {
  const { MIGRATIONS } = await import('../../static/transcripts/store.js');
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory);
  assert.equal(await keeper.ready, true);
  const newer = await openTranscriptStore({
    indexedDB: factory, keyRange: IDBKeyRange, name: 'k', migrations: [...MIGRATIONS, () => {}],
  });
  assert.equal(newer.ok, true, 'the upgrade is not blocked by this page');
  assert.deepEqual(notices.map((n) => n.error.kind), ['closed'], 'told without waiting for the next write');
  newer.value.close();
});

test('the database taken away by a newer page, or newer than this page: export first, then reload', async () => {
  const { MIGRATIONS } = await import('../../static/transcripts/store.js');
  const newer = [...MIGRATIONS, () => {}];
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory);
  keeper.startRun({ title: 'talk', engine: 'local' });
  keeper.addFinal(seg(0), 1000);
  await keeper.flush();
  const other = await openTranscriptStore({ indexedDB: factory, keyRange: IDBKeyRange, name: 'k', migrations: newer });
  keeper.addFinal(seg(1), 2000);
  await keeper.flush();
  other.value.close();
  // The finals since the close are on the page only: a reload as the notice asks would lose them.
  assert.deepEqual(notices.map((n) => n.error.kind), ['closed']);
  assert.match(notices[0].message, /not being saved: export it first, then reload/);
  // This page's code opened again after the upgrade: the database is newer than it.
  const older = keeperOn(factory);
  assert.equal(await older.keeper.ready, false);
  assert.deepEqual(older.notices.map((n) => n.error.kind), ['version']);
  assert.match(older.notices[0].message, /not being saved: export it first, then reload/);
});

test('the words not final yet are kept with the session: one write takes the newest, a final clears them', async () => {
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory);
  const store = await keeper.ready.then(() => keeper.store);
  let writes = 0;
  const setPending = store.setPending.bind(store);
  store.setPending = (...args) => { writes += 1; return setPending(...args); };
  keeper.startRun({ title: 'talk', engine: 'local' });
  // Interims arrive faster than the database writes: they do not pile up, and the newest is what is stored.
  const interims = ['go', 'go for', 'go forward', 'go forward ten', 'go forward ten meters'];
  for (const text of interims) keeper.setPending({ text, startMs: 1200 });
  await keeper.flush();
  assert.ok(writes >= 1 && writes <= 2, `${writes} writes for ${interims.length} interims`);
  let [session] = await keeper.query((s) => s.listSessions());
  assert.ok(session, 'words heard start the saved session, as a final would');
  assert.deepEqual(session.pending, { text: 'go forward ten meters', startMs: 1200 });
  assert.equal(session.finalCount, 0);

  keeper.setPending({ text: 'and then', startMs: 5000 });
  keeper.addFinal(seg(1), 3000);
  await keeper.flush();
  [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.pending, undefined, 'the final supersedes them; a write queued before it does not put them back');
  assert.equal(session.finalCount, 1);

  keeper.setPending({ text: 'cut off here', startMs: 6000 });
  await keeper.flush();
  [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.pending.text, 'cut off here');
  keeper.endRun(7000);
  await keeper.flush();
  [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.state, 'stopped');
  assert.equal(session.pending, undefined, 'a stopped recording has no words in flight');
  assert.deepEqual(notices, []);
});

test('the next words in flight after a final, or after the end of a run, are stored though a write was still queued', async () => {
  const factory = new IDBFactory();
  const { keeper, notices } = keeperOn(factory);
  keeper.startRun({ title: 'talk', engine: 'local' });
  // Back to back, before the queue runs: the first utterance's interim and final, the next one's first interim.
  keeper.setPending({ text: 'hello', startMs: 0 });
  keeper.addFinal(seg(0), 900);
  keeper.setPending({ text: 'how are', startMs: 1000 });
  await keeper.flush();
  let [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.finalCount, 1);
  assert.deepEqual(session.pending, { text: 'how are', startMs: 1000 }, 'the words on screen after the final');

  keeper.setPending({ text: 'how are you', startMs: 1000 });
  keeper.endRun(2000);
  keeper.startRun({ title: 'talk', engine: 'local' });
  keeper.setPending({ text: 'again', startMs: 3000 });
  await keeper.flush();
  [session] = await keeper.query((s) => s.listSessions());
  assert.equal(session.state, 'recording');
  assert.deepEqual(session.pending, { text: 'again', startMs: 3000 }, "the next run's words, not cleared by the end of the last");
  assert.deepEqual(notices, []);
});

test('an empty interim starts no session, and a page that died on an interim gets those words back', async () => {
  const factory = new IDBFactory();
  const quiet = keeperOn(factory);
  quiet.keeper.startRun({ title: 'quiet', engine: 'local' });
  quiet.keeper.setPending({ text: '  ', startMs: null });
  await quiet.keeper.flush();
  assert.deepEqual(await quiet.keeper.query((s) => s.listSessions()), []);

  const dead = keeperOn(factory, { name: 'k2' });
  dead.keeper.startRun({ title: 'crashed before any final', engine: 'local' });
  dead.keeper.setPending({ text: 'the first words', startMs: 400 });
  await dead.keeper.flush();
  const reopened = keeperOn(factory, { name: 'k2' });
  const restored = await reopened.keeper.recoverInterrupted();
  assert.ok(restored, 'a session with only words in flight is restored too');
  assert.deepEqual(restored.finals, []);
  assert.deepEqual(restored.session.pending, { text: 'the first words', startMs: 400 });
});

test('a recording cancelled while its only words were in flight leaves no empty entry behind', async () => {
  const { keeper, notices } = keeperOn(new IDBFactory());
  keeper.startRun({ title: 'cancelled', engine: 'local' });
  keeper.setPending({ text: 'hel', startMs: 0 });
  await keeper.flush();
  assert.equal((await keeper.query((s) => s.listSessions())).length, 1, 'kept while recording, for a reload');
  keeper.endRun(1000);
  await keeper.flush();
  assert.deepEqual(await keeper.query((s) => s.listSessions()), []);
  assert.equal(keeper.currentId, null);
  // The next recording's first final starts a session of its own; one with finals is never deleted at its end.
  keeper.startRun({ title: 'next', engine: 'local' });
  keeper.addFinal(seg(0), 900);
  keeper.endRun(1000);
  await keeper.flush();
  const sessions = await keeper.query((s) => s.listSessions());
  assert.deepEqual(sessions.map((s) => [s.title, s.state, s.finalCount]), [['next', 'stopped', 1]]);
  assert.deepEqual(notices, []);
});

test('an interrupted session exports, from the history, the words that were not final yet as its rough last line', async () => {
  const factory = new IDBFactory();
  const dead = keeperOn(factory);
  dead.keeper.startRun({ title: 'cut off', engine: 'local' });
  dead.keeper.addFinal(seg(0), 900);
  dead.keeper.setPending({ text: 'and then i said', startMs: 1200 });
  await dead.keeper.flush();
  const reopened = keeperOn(factory);
  const restored = await reopened.keeper.recoverInterrupted();
  assert.ok(restored);
  const segments = savedSegments(restored.session, restored.finals);
  assert.deepEqual(segments.map((s) => [s.text, s.startMs, s.rough]), [
    [seg(0).text, 0, undefined], ['And then I said.', 1200, true],
  ]);
  const at = '2026-01-01T00:00:00.000Z';
  const meta = { title: 'cut off', durationMs: restored.session.durationMs, provider: 'local', exportedAt: at };
  // The page restores exactly these segments, so its export and the history's are the same file.
  assert.deepEqual(exportSaved('json', restored.session, restored.finals, at), exportAs('json', segments, meta));
  assert.match(exportSaved('json', restored.session, restored.finals, at).text, /"rough": true/);
});

test('Start pressed while the page takes over a crashed recording: the new one keeps every final, the crashed one stays interrupted', async () => {
  // Start is enabled before the restore runs: the click lands after the restore looked for a recording on this
  // page and found none, while it waits for the crashed session's lock, or for its records.
  for (const during of ['lock', 'read']) {
    const factory = new IDBFactory();
    const dead = keeperOn(factory, { name: DB_NAME });
    dead.keeper.startRun({ title: 'crashed', engine: 'local' });
    dead.keeper.addFinal(seg(0), 1000);
    await dead.keeper.flush();

    const locks = fakeLocks();
    const page = savedPage({ indexedDB: factory, locks });
    const keeper = page.saved.keeper;
    let clicked = false;
    const click = () => {
      if (clicked) return;
      clicked = true;
      page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
    };
    if (during === 'lock') {
      const request = locks.request.bind(locks);
      locks.request = (name, options, callback) => {
        if (callback) click();
        return request(name, options, callback);
      };
    } else {
      await keeper.ready;
      const store = /** @type {any} */ (keeper.store);
      const getSession = store.getSession.bind(store);
      store.getSession = (id) => { click(); return getSession(id); };
    }
    await page.saved.load();
    assert.ok(clicked && page.controller.running, during);
    const texts = ['first new words', 'second new words', 'third new words'];
    texts.forEach((text, k) => page.sessions.last().emit({ type: 'final', text, startMs: k * 1000, endMs: k * 1000 + 900, words: [] }));
    await page.controller.stop();
    await keeper.flush();

    const sessions = await keeper.query((s) => s.listSessions());
    const byTitle = Object.fromEntries(sessions.map((s) => [s.title, s]));
    const live = page.controller.title;
    assert.deepEqual(sessions.map((s) => [s.title, s.state, s.finalCount]).sort(), [
      ['crashed', 'interrupted', 1], [live, 'stopped', 3],
    ], during);
    const { finals } = await keeper.query((s) => s.getSession(byTitle[live].id));
    assert.deepEqual(finals.map((f) => f.text), texts, during);
    assert.equal(keeper.currentId, byTitle[live].id, during);
    assert.ok(!locks.held.has(LOCK_PREFIX + byTitle.crashed.id), `${during}: the crashed session is left for a later page`);
    assert.deepEqual(page.warnings(), [], during);
  }
});

test('words in flight well after the last final are exported at their time, at a readable length, after a crash', async () => {
  const factory = new IDBFactory();
  const dead = savedPage({ indexedDB: factory });
  await dead.saved.load();
  await dead.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  const session = dead.sessions.last();
  session.audioMs = 2500;
  session.emit({ type: 'final', text: 'Hello there.', startMs: 0, endMs: 2000, words: [] });
  // A pause, then the next utterance: its interims grow as the audio clock runs on, and no final comes.
  for (const [atMs, text] of [[10_000, 'and then'], [10_600, 'and then we went'], [11_200, 'and then we went home']]) {
    session.audioMs = atMs;
    session.emit({ type: 'partial', text });
  }
  await dead.saved.keeper.flush();

  // The tab dies; a new page restores the recording.
  const page = savedPage({ indexedDB: factory });
  await page.saved.load();
  const restored = /** @type {any[]} */ (page.controller.segments);
  assert.deepEqual(restored.map((s) => [s.text, s.startMs, s.rough === true]), [
    ['Hello there.', 0, false], ['And then we went home.', 10_000, true],
  ]);
  const [stored] = await page.saved.keeper.query((s) => s.listSessions());
  const { finals } = await page.saved.keeper.query((s) => s.getSession(stored.id));
  assert.ok(stored.durationMs >= 11_200, `the saved length covers the words heard: ${stored.durationMs}`);
  const at = '2026-01-01T00:00:00.000Z';
  // The engine that made it, as the history's export says, whatever the new page's list shows.
  assert.equal(page.controller.exportMeta().provider, 'local');
  assert.equal(exportSaved('json', stored, finals, at).text.includes('"provider": "local"'), true);
  const pageExport = exportAs('srt', restored, { ...page.controller.exportMeta(), exportedAt: at }).text;
  for (const srt of [pageExport, exportSaved('srt', stored, finals, at).text]) {
    const cues = srt.trim().split('\n\n').map((cue) => cue.split('\n'));
    assert.deepEqual(cues.map((c) => c.slice(1)), [
      ['00:00:00,000 --> 00:00:02,000', 'Hello there.'],
      ['00:00:10,000 --> 00:00:11,200', 'And then we went home.'],
    ]);
  }
});

test('words in flight the engine then drops (an empty final) are not saved, so a crash does not bring them back', async () => {
  const factory = new IDBFactory();
  const dead = savedPage({ indexedDB: factory });
  await dead.saved.load();
  await dead.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  const session = dead.sessions.last();
  session.emit({ type: 'final', text: 'Kept words.', startMs: 0, endMs: 900, words: [] });
  session.emit({ type: 'partial', text: 'uh the' });
  await dead.saved.keeper.flush();
  // Noise: the engine ends the utterance with nothing. The page drops the line; the saved copy must too.
  session.emit({ type: 'final', text: '', startMs: null, endMs: null, words: [] });
  await dead.saved.keeper.flush();
  assert.deepEqual(dead.controller.segments.map((s) => s.text), ['Kept words.']);

  const page = savedPage({ indexedDB: factory });
  await page.saved.load();
  assert.deepEqual(page.controller.segments.map((s) => s.text), ['Kept words.']);
  const [stored] = await page.saved.keeper.query((s) => s.listSessions());
  assert.equal(stored.pending, undefined);
});

test('a storage failure stays on the page when Start clears the warnings, while it still holds', async () => {
  const noDatabase = savedPage({ indexedDB: undefined });
  await noDatabase.saved.load();
  const told = noDatabase.warnings();
  assert.equal(told.length, 1);
  assert.match(told[0], /no database for saved transcripts.*still works/);
  for (let run = 0; run < 2; run++) {
    await noDatabase.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
    assert.deepEqual(noDatabase.warnings(), told, 'Start keeps it, once');
    await noDatabase.controller.stop();
  }

  // The page's saved copy deleted in another tab: said while this transcript goes unsaved, gone with it on Clear.
  const factory = new IDBFactory();
  const page = savedPage({ indexedDB: factory });
  await page.saved.load();
  await page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  page.sessions.last().emit({ type: 'final', text: 'Saved.', startMs: 0, endMs: 900, words: [] });
  await page.saved.keeper.flush();
  const other = keeperOn(factory, { name: DB_NAME });
  assert.equal(await other.keeper.delete('all'), true);
  page.sessions.last().emit({ type: 'final', text: 'Not saved.', startMs: 1000, endMs: 1900, words: [] });
  await page.controller.stop();
  await page.saved.keeper.flush();
  const deleted = page.warnings();
  assert.equal(deleted.length, 1);
  assert.match(deleted[0], /was deleted/);
  await page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  assert.deepEqual(page.warnings(), deleted, 'the next recording of the same transcript is not saved either');
  await page.controller.stop();
  assert.equal(page.controller.clear(), true);
  await page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  assert.deepEqual(page.warnings(), [], 'a cleared page saves a new transcript');
  page.sessions.last().emit({ type: 'final', text: 'Saved again.', startMs: 0, endMs: 900, words: [] });
  await page.controller.stop();
  await page.saved.keeper.flush();
  assert.deepEqual((await other.keeper.query((s) => s.listSessions())).map((s) => s.preview), ['Saved again.']);
  // Deleted again: told again, since the last notice was about a transcript the page no longer has.
  assert.equal(await other.keeper.delete('all'), true);
  await page.controller.start({ provider: 'local', providerLabel: 'Offline engine' });
  page.sessions.last().emit({ type: 'final', text: 'Lost.', startMs: 1000, endMs: 1900, words: [] });
  await page.saved.keeper.flush();
  assert.equal(page.warnings().length, 1);
  assert.match(page.warnings()[0], /was deleted/);
  await page.controller.stop();
});
