// Keeps the page's transcript in the store as it grows: one stored session per transcript (first Start to Clear),
// every final written the moment it arrives, writes strictly in call order, failures turned into notices for people.
//
// Pure ES module (no DOM): the page calls it synchronously from its event handlers and never waits on it; the
// queue makes the session exist before its first final is written. Another tab of the same page is told apart from
// a page that died mid-recording by a Web Lock held for as long as the page owns the session.
import { toStoreError } from './store.js';

/** @typedef {import('./store.js').TranscriptStore} TranscriptStore */
/** @typedef {import('./store.js').SessionRecord} SessionRecord */
/** @typedef {import('./store.js').FinalRecord} FinalRecord */
/** @typedef {import('./store.js').FinalInput} FinalInput */
/** @typedef {import('./store.js').Pending} Pending */
/** @typedef {import('./store.js').StoreError} StoreError */
/** @typedef {import('./store.js').Cap} Cap */
/**
 * @template T
 * @typedef {import('./store.js').Result<T>} Result
 */

/**
 * What the page should tell the user. `dropped`: sessions removed for the cap (the page also refreshes its list).
 * @typedef {{kind: 'error', error: StoreError, message: string}
 *   | {kind: 'dropped', sessions: SessionRecord[], message: string}
 *   | {kind: 'skipped', count: number, message: string}} Notice
 */

/** The subset of the Web Locks API used here. @typedef {Pick<LockManager, 'request'|'query'>} Locks */

/**
 * One transcript of the page (first Start to Clear) and its stored session, once created. Every write holds the
 * transcript it was asked for, so one still queued when the page lets go of it (Clear, Delete, a new Start after a
 * restore) writes to that transcript's own session, never to the page's next one. `dropped`: cleared or deleted,
 * so the writes still queued for it write nothing (a final queued by Stop just before must not bring it back).
 * @typedef {{id: string | null, dropped: boolean}} Transcript
 */

export const LOCK_PREFIX = 'live-stt.transcript.';

/** @param {number} ms epoch */
export const describeDate = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** @param {SessionRecord[]} sessions */
export function droppedMessage(sessions) {
  const n = sessions.length;
  const which = sessions.slice(0, 3).map((s) => describeDate(s.startedAt)).join('; ');
  return `Storage limit reached: the ${n === 1 ? 'oldest saved transcript was' : `${n} oldest saved transcripts were`} `
    + `removed (${which}${n > 3 ? '; …' : ''}).`;
}

/** @param {StoreError} error */
export function errorMessage(error) {
  if (error.kind === 'missing') {
    return 'The saved copy of this transcript was deleted (in another tab?): what follows is not being saved. '
      + 'Clear or reload to start a new saved transcript.';
  }
  const unsaved = ' The page still works, but this transcript is not being saved:';
  // A reload brings saving back, but not the words since the failure: they are on the page only.
  if (error.kind === 'closed' || error.kind === 'version') {
    return `${error.message}${unsaved} export it first, then reload the page to keep saving.`;
  }
  const tail = error.kind === 'quota' || error.kind === 'unavailable' || error.kind === 'failed' || error.kind === 'blocked'
    ? `${unsaved} export it before you leave.`
    : '';
  return `${error.message}${tail}`;
}

/** How long a new session's lock may take to be granted before its writes go on without it (ms). */
export const LOCK_WAIT_MS = 2000;

export class TranscriptKeeper {
  /**
   * @param {object} options
   * @param {() => Promise<Result<TranscriptStore>>} options.open
   * @param {(notice: Notice) => void} options.notify
   * @param {Locks | null} [options.locks]  navigator.locks where the browser has them
   * @param {number} [options.lockWaitMs]  how long a new session's lock may take to be granted (default
   *   LOCK_WAIT_MS)
   */
  constructor(options) {
    this.notify = options.notify;
    this.locks = options.locks ?? null;
    this.lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
    /** @type {TranscriptStore | null} */
    this.store = null;
    /** @type {Transcript} the page's transcript */
    this._transcript = { id: null, dropped: false };
    /** @type {(() => void) | null} */
    this._releaseLock = null;
    /** @type {Map<string, Notice>} the error notices told that still hold, by error kind: one notice per kind while it
     * holds (see standingNotices) */
    this._standing = new Map();
    /** @type {Set<string>} unreadable records already told */
    this._toldSkipped = new Set();
    /** @type {{title: string, engine: string} | null} the current recording's, for a session not created yet */
    this._meta = null;
    /** @type {Cap | null} set by setCap() before the store opened; otherwise the store keeps its own */
    this._cap = null;
    /**
     * @type {{pending: Pending | null, durationMs: number | undefined} | null} the queued write of the words not
     * final yet: later interims only replace what it will write, so one write takes the newest
     */
    this._pendingWrite = null;
    this.ready = options.open().then((r) => {
      if ('error' in r) {
        this._error(r.error);
        return false;
      }
      this.store = r.value;
      this.store.onclose = () => this._error(toStoreError(new DOMException('closed', 'InvalidStateError')));
      if (this._cap) this.store.setCap(this._cap);
      return true;
    });
    /** @type {Promise<unknown>} */
    this._queue = this.ready;
  }

  /**
   * Queue `op` after every earlier call; it runs only when the store is open.
   * @param {(store: TranscriptStore) => Promise<unknown>} op
   * @returns {Promise<void>}
   */
  _enqueue(op) {
    const next = this._queue.then(async () => {
      if (this.store) await op(this.store);
    });
    // One failed step must not stop the ones after it (each reports its own failure).
    this._queue = next.catch(() => {});
    return this._queue.then(() => {});
  }

  /** Resolves once every write asked for so far is done. */
  flush() {
    return this._enqueue(async () => {});
  }

  /** @param {StoreError} error */
  _error(error) {
    if (this._standing.has(error.kind)) return;
    /** @type {Notice} */
    const notice = { kind: 'error', error, message: errorMessage(error) };
    this._standing.set(error.kind, notice);
    this.notify(notice);
  }

  /**
   * The storage failures told that still hold, for the page to show again when it clears its warnings (Start): each
   * is told once, so a notice the page dropped would leave the user believing the transcript is being saved. A
   * store that never opened or was closed holds for the page's life; a failed write, for the transcript it failed.
   * @returns {Notice[]}
   */
  get standingNotices() {
    return [...this._standing.values()];
  }

  /**
   * The page's transcript is let go of: a write that failed for it (quota, failed, missing) says nothing about the
   * next one, and the same failure there is news again.
   */
  _forgetTranscriptErrors() {
    for (const kind of ['quota', 'failed', 'missing']) {
      this._standing.delete(kind);
    }
  }

  /**
   * Report what a store call says; the value, or null when it failed.
   * @template T
   * @param {Result<T>} r
   * @param {boolean} [browsing]  a history call: a session gone meanwhile (another tab) is no news, the list is
   *   simply refreshed
   * @returns {T | null}
   */
  _report(r, browsing = false) {
    // Sessions removed to make room are gone even when the write they made room for failed: always told.
    if (r.dropped?.length) this.notify({ kind: 'dropped', sessions: r.dropped, message: droppedMessage(r.dropped) });
    if ('error' in r) {
      if (!(browsing && r.error.kind === 'missing')) this._error(r.error);
      return null;
    }
    // Every listing meets the same unreadable records again: each is reported once per page.
    const fresh = r.skipped.filter((k) => !this._toldSkipped.has(`${k.store}/${k.id}`));
    for (const k of fresh) this._toldSkipped.add(`${k.store}/${k.id}`);
    if (fresh.length) {
      this.notify({
        kind: 'skipped',
        count: fresh.length,
        message: `${fresh.length} saved record${fresh.length === 1 ? ' was' : 's were'} unreadable `
          + '(damaged, or written by another version of the page) and skipped.',
      });
    }
    return r.value;
  }

  /** @param {Cap} cap */
  setCap(cap) {
    this._cap = cap;
    return this._enqueue(async (store) => {
      store.setCap(cap);
      this._report(await store.prune(this.currentId));
    });
  }

  /**
   * Take a session's lock, held until _unlock(); resolves once granted (at once: nobody else asks for this name),
   * or after lockWaitMs without it: every write waits behind this one, and a lock manager that never answers must
   * not stop the saving (unlocked, the session is only less well guarded from another tab's crash recovery).
   * @param {string} id
   * @returns {Promise<void>}
   */
  _lock(id) {
    if (!this.locks) return Promise.resolve();
    const locks = this.locks;
    this._unlock();
    /** @type {Promise<void>} */
    const held = new Promise((resolve) => { this._releaseLock = resolve; });
    return new Promise((granted) => {
      const timer = setTimeout(granted, this.lockWaitMs);
      const grant = () => {
        clearTimeout(timer);
        granted();
      };
      locks.request(LOCK_PREFIX + id, () => {
        grant();
        return held;
      }).catch(grant);
    });
  }

  _unlock() {
    this._releaseLock?.();
    this._releaseLock = null;
  }

  /**
   * Take a session's lock only if nobody holds it: of two tabs opened after a crash, one restores the session.
   * @param {string} id
   * @returns {Promise<boolean>}
   */
  _tryLock(id) {
    if (!this.locks) return Promise.resolve(true);
    const locks = this.locks;
    this._unlock();
    return new Promise((resolve) => {
      locks.request(LOCK_PREFIX + id, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        return new Promise((release) => { this._releaseLock = () => release(undefined); });
      }).catch(() => resolve(false));
    });
  }

  /**
   * A recording starts. The transcript's session is created with its first final (a Start that never got a word,
   * such as a refused microphone, leaves no empty entry behind); later recordings mark it recording again.
   * @param {{title: string, engine: string}} meta
   */
  startRun(meta) {
    this._meta = { ...meta };
    const transcript = this._transcript;
    return this._enqueue(async (store) => {
      const id = await this._sessionOf(store, transcript, null);
      // The engine is the transcript's with its first final (addFinal), as the page's own export counts it: a
      // recording that got no words (a refused microphone, a Cancel) names no engine.
      if (id) this._report(await store.updateSession(id, { state: 'recording' }));
    });
  }

  /**
   * @param {FinalInput} final  on the transcript's clock
   * @param {number} durationMs  the transcript's length so far
   */
  addFinal(final, durationMs) {
    const copy = { ...final, words: final.words ? final.words.map((w) => ({ ...w })) : [] };
    const meta = this._meta;
    const transcript = this._transcript;
    // The final supersedes the pending words (the store clears them with it).
    this._supersedePending();
    return this._enqueue(async (store) => {
      const id = await this._sessionOf(store, transcript, meta);
      if (id) this._report(await store.addFinal(id, copy, { durationMs, ...(meta ? { engine: meta.engine } : {}) }));
    });
  }

  /**
   * The words on screen that are not final yet (an interim), kept so a reload before their final keeps them. Called
   * for every interim; writes never pile up: while one is queued, later calls only replace what it will write.
   * @param {Pending | null} pending
   * @param {number} [durationMs]  the transcript's length so far (its audio clock), as addFinal is given it
   */
  setPending(pending, durationMs) {
    const latest = pending && pending.text.trim() ? { ...pending } : null;
    if (this._pendingWrite) {
      this._pendingWrite.pending = latest;
      this._pendingWrite.durationMs = durationMs;
      return this._queue.then(() => {});
    }
    const write = { pending: latest, durationMs };
    this._pendingWrite = write;
    const meta = this._meta;
    const transcript = this._transcript;
    return this._enqueue(async (store) => {
      if (this._pendingWrite === write) this._pendingWrite = null;
      // Words heard start the saved session as a final would; nothing pending creates nothing.
      const id = await this._sessionOf(store, transcript, write.pending ? meta : null);
      if (id) this._report(await store.setPending(id, write.pending, { durationMs: write.durationMs }));
    });
  }

  /**
   * The words not final yet are superseded (by a final, the end of the run, Clear). A write of them still queued
   * writes none (after a Clear it would start a saved session for words no longer on screen), and the next interim
   * queues a write of its own, after this call's: taken by the queued one, it would be cleared by this call's write
   * and never stored.
   */
  _supersedePending() {
    if (this._pendingWrite) this._pendingWrite.pending = null;
    this._pendingWrite = null;
  }

  /**
   * The session a write asked for `transcript` goes to, where the queue has got to: none once it was cleared or
   * deleted. Given `meta`, its first words create it. Only the page's own transcript takes the lock: one it has let
   * go of and kept gets the writes still queued for it, and the lock is the next transcript's.
   * @param {TranscriptStore} store
   * @param {Transcript} transcript  the page's when the write was asked for
   * @param {{title: string, engine: string} | null} meta  the recording's, as it was when the write was asked for
   * @returns {Promise<string | null>}
   */
  async _sessionOf(store, transcript, meta) {
    if (transcript.dropped) return null;
    if (!transcript.id && meta) {
      // Locked before the record exists: a 'recording' session nobody holds is taken for a crashed page's, and
      // another tab recovering meanwhile would mark this live one interrupted.
      const id = store.newId();
      const own = transcript === this._transcript;
      if (own) await this._lock(id);
      const session = this._report(await store.startSession({ ...meta, id }));
      if (!session) {
        if (own) this._unlock();
        return null;
      }
      transcript.id = session.id;
    }
    return transcript.id;
  }

  /** The stored session of the page's transcript, once its first words created it. */
  get currentId() {
    return this._transcript.id;
  }

  /**
   * Whether the page has a transcript being saved: a stored session, or one its first queued final will create.
   * Sync, for the page to decide whether a delete takes its copy too.
   */
  get holdsTranscript() {
    return this.currentId !== null || this._meta !== null;
  }

  /**
   * The page lets go of its transcript now; a new one follows. The lock is let go of in the queue, once the writes
   * asked for before are done: till then the session is still being written.
   * @param {boolean} dropped  cleared or deleted: its writes still queued write nothing
   * @returns {Transcript} the transcript let go of
   */
  _letGo(dropped) {
    const transcript = this._transcript;
    transcript.dropped = dropped;
    this._transcript = { id: null, dropped: false };
    this._meta = null;
    this._supersedePending();
    this._forgetTranscriptErrors();
    return transcript;
  }

  /** @param {number} durationMs */
  endRun(durationMs) {
    // A stopped session has no words in flight (the store clears them with the state).
    this._supersedePending();
    const transcript = this._transcript;
    return this._enqueue(async (store) => {
      const id = await this._sessionOf(store, transcript, null);
      if (!id) return;
      const session = this._report(await store.updateSession(id, { state: 'stopped', durationMs }));
      // Only words in flight ever came (then Cancel): no final was kept, so no empty entry is left in the history.
      // The transcript goes on without a session: its next words create one.
      if (session && session.finalCount === 0) {
        transcript.id = null;
        if (transcript === this._transcript) this._unlock();
        this._report(await store.deleteSession(id));
      }
    });
  }

  /** The page's transcript is cleared: so is its stored copy, and nothing still queued for it writes. */
  discard() {
    const transcript = this._letGo(true);
    return this._enqueue(async (store) => {
      this._unlock();
      if (transcript.id) this._report(await store.deleteSession(transcript.id));
    });
  }

  /**
   * Run a store call after every queued write and report its notices; its value, or null when it failed.
   * @template T
   * @param {(store: TranscriptStore) => Promise<Result<T>>} op
   * @returns {Promise<T | null>}
   */
  async query(op) {
    /** @type {T | null} */
    let out = null;
    await this._enqueue(async (store) => { out = this._report(await op(store), true); });
    return out;
  }

  /**
   * Delete saved sessions; deleting the page's own transcript lets go of it (the page clears its copy).
   * @param {string[] | 'all'} ids
   * @returns {Promise<boolean>}  whether it worked
   */
  async delete(ids) {
    if (ids === 'all' || (this.currentId && ids.includes(this.currentId))) {
      // Dropped: a final still queued for it (Stop just before) would otherwise write into, or recreate, what the
      // delete below removes.
      this._letGo(true);
      this._enqueue(async () => { this._unlock(); });
    }
    if (ids === 'all') return (await this.query((store) => store.deleteAll())) !== null;
    let ok = true;
    for (const id of ids) ok = (await this.query((store) => store.deleteSession(id))) !== null && ok;
    return ok;
  }

  /** The page lets go of its transcript but the stored copy stays (a new session follows). */
  detach() {
    // Finals queued before stay with the old session; only what is queued after starts a new one.
    this._letGo(false);
    return this._enqueue(async () => { this._unlock(); });
  }

  /**
   * Sessions left 'recording' by a page that is gone (reload, crash, closed tab) are marked interrupted; the newest
   * is returned with its finals (and, on `session.pending`, the words it had heard but not finalised) and becomes
   * this page's transcript (so Clear removes it). Sessions another open tab
   * is recording into (it holds their lock) are left alone, and of two tabs recovering at once only one restores.
   * @returns {Promise<{session: SessionRecord, finals: FinalRecord[]} | null>}
   */
  async recoverInterrupted() {
    /** @type {{session: SessionRecord, finals: FinalRecord[]} | null} */
    let restored = null;
    await this._enqueue(async (store) => {
      const sessions = this._report(await store.listSessions());
      if (!sessions) return;
      const held = new Set();
      if (this.locks) {
        try {
          const snapshot = await this.locks.query();
          for (const lock of [...(snapshot.held ?? []), ...(snapshot.pending ?? [])]) held.add(lock.name);
        } catch { /* no lock information: treat every recording session as orphaned */ }
      }
      const orphans = sessions.filter((s) => s.state === 'recording' && !held.has(LOCK_PREFIX + s.id));
      for (const s of orphans) this._report(await store.updateSession(s.id, { state: 'interrupted' }));
      // A recording begun on this page meanwhile (Start before the restore got its turn) owns the page's
      // transcript: taking the lock or the id here would send its finals into the crashed session.
      if (this.currentId !== null || this._meta !== null) return;
      const newest = orphans.find((s) => s.finalCount > 0 || s.pending);
      if (!newest || !(await this._tryLock(newest.id))) return;
      const opened = this._report(await store.getSession(newest.id));
      // Asked again after those waits: Start is enabled before the restore runs, so a recording can have begun
      // during them, and it keeps the page's transcript (the crashed session stays interrupted, lock let go).
      if (!opened || this.currentId !== null || this._meta !== null) {
        this._unlock();
        return;
      }
      this._transcript.id = newest.id;
      restored = { session: { ...opened.session, state: 'interrupted' }, finals: opened.finals };
    });
    return restored;
  }
}
