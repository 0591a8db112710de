// Saved transcripts: the browser's own database (IndexedDB), nothing leaves the machine.
//
// Pure ES module: no DOM, no globals; the IDBFactory is handed in (the page passes `indexedDB`, Node tests an
// in-memory one). Plain IndexedDB, no wrapper: the dozen calls used here fit in one small transaction helper, and
// the best-known wrapper (idb) would have to be vendored into static/ because the page has no bundler.
//
// Two object stores:
//   sessions  key `id`: one record per transcript (what the page shows between a Start and a Clear)
//   finals    key [sessionId, seq]: one record per final, seq counting from 0 in arrival order. The compound key
//             keeps a session's finals together and in order without an index.
// The latest interim (words heard but not final yet) is kept on the session record as `pending`, replaced as it
// changes and cleared by the final that supersedes it: a reload before that final keeps those words too.
// Every record carries `v` (RECORD_VERSION). The database version is the number of migration steps; a step that
// changes the records' shape rewrites them inside its upgrade transaction, so readers only ever see the current
// shape. A record that still does not parse (corrupt, foreign, half-written by a crashed release) is skipped and
// reported, never thrown: one bad record must not hide the others.
//
// Every operation resolves to a Result; none rejects. A browser that refuses storage (private mode, quota, a
// disabled database) gives {ok: false, error} and the page carries on without saving.

export const DB_NAME = 'live-stt-transcripts';
export const RECORD_VERSION = 1;
export const SESSIONS = 'sessions';
export const FINALS = 'finals';
// Defaults the page can override (setting in the history panel): the oldest sessions go first past either limit.
export const DEFAULT_CAP = Object.freeze({ maxSessions: 200, maxBytes: 50 * 1024 * 1024 });
// How long indexedDB.open() may take to answer before the page carries on without saving (Safari has been known
// never to answer it).
export const OPEN_TIMEOUT_MS = 10_000;
// Characters of the first words kept on the session record, so the list needs no final records (UTF-16 units, one
// more when the last character is a surrogate pair).
export const PREVIEW_CHARS = 120;

/** @typedef {{text: string, startMs: number, endMs: number}} StoredWord */

/**
 * One final as stored (times on the transcript's clock, ms; null when the provider gave none).
 * @typedef {object} FinalRecord
 * @property {number} v
 * @property {string} sessionId
 * @property {number} seq
 * @property {string} text
 * @property {number|null} startMs
 * @property {number|null} endMs
 * @property {StoredWord[]} words
 * @property {boolean} estimated
 * @property {boolean} [rough]  given without the engine's better pass (an optional field: no schema change)
 */

/** @typedef {'recording'|'stopped'|'interrupted'} SessionState */

/**
 * One transcript. `state` is 'recording' while a page is capturing into it: a session still 'recording' when no
 * page holds it was cut off by a reload or a crash, and the page marks it 'interrupted'.
 * @typedef {object} SessionRecord
 * @property {number} v
 * @property {string} id
 * @property {number} startedAt    epoch ms
 * @property {number} updatedAt    epoch ms of the last write
 * @property {string} title        the export file name stem
 * @property {string[]} engines    provider names in the order first used
 * @property {SessionState} state
 * @property {number} durationMs   length of the recording(s) on the transcript's clock
 * @property {number} finalCount
 * @property {number} nextSeq
 * @property {number} bytes        UTF-8 size of its records as JSON: what the cap counts
 * @property {string} preview      the first words
 * @property {Pending} [pending]  the interim on screen when last written: words not final yet (an optional field, no
 *   schema change)
 */

/**
 * Words heard but not final yet. `startMs`: where the utterance began on the transcript's clock, when known.
 * @typedef {{text: string, startMs: number|null}} Pending
 */

/**
 * @typedef {object} StoreError
 * @property {'unavailable'|'quota'|'version'|'blocked'|'closed'|'missing'|'failed'} kind
 *   unavailable: no IndexedDB or the browser refuses it (private mode, disabled); quota: out of space, also after
 *   dropping an older session to make room; version: another tab opened a newer database; blocked: another tab
 *   holds an older version open and does not let go; closed: the database was closed (another tab upgraded it);
 *   missing: no such session
 * @property {string} message  for people
 */

/** @typedef {{id: string, store: string, reason: string}} Skipped */

/**
 * @template T
 * @typedef {{ok: true, value: T, dropped: SessionRecord[], skipped: Skipped[]}
 *   | {ok: false, error: StoreError, dropped?: SessionRecord[]}} Result
 *   dropped: sessions removed to stay under the cap or to make room in a full browser quota (tell the user: also
 *   when the write they were removed for failed after all); skipped: unreadable records left alone
 */

/** @typedef {{maxSessions: number, maxBytes: number}} Cap */

/**
 * A final as the page holds it.
 * @typedef {{text: string, startMs: number|null, endMs: number|null, words?: StoredWord[], estimated?: boolean, rough?: boolean}} FinalInput
 */

/** @typedef {(db: IDBDatabase, tx: IDBTransaction) => void} Migration */

/**
 * Step i upgrades a database from version i to i + 1; the database version is their count. Append, never edit:
 * a browser that has version k runs steps k, k + 1, ... in one upgrade transaction.
 * @type {readonly Migration[]}
 */
export const MIGRATIONS = Object.freeze([
  (db) => {
    const sessions = db.createObjectStore(SESSIONS, { keyPath: 'id' });
    sessions.createIndex('startedAt', 'startedAt');
    db.createObjectStore(FINALS, { keyPath: ['sessionId', 'seq'] });
  },
]);

const encoder = new TextEncoder();
/** @param {unknown} value */
const sizeOf = (value) => encoder.encode(JSON.stringify(value)).length;

/** @param {unknown} v @returns {v is number} */
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
// The furthest a Date reaches either side of 1970 (ms): past it, new Date(ms).toISOString() throws.
const MAX_DATE_MS = 8.64e15;
/** @param {unknown} v @returns {v is number} */
const isDate = (v) => isNumber(v) && Math.abs(v) <= MAX_DATE_MS;
/** @param {unknown} v @returns {v is number|null} */
const isTimeOrNull = (v) => v === null || isNumber(v);
/** @param {unknown} v @returns {v is Record<string, unknown>} */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** @param {unknown} err @returns {{name: string, detail: string}} */
function nameAndDetail(err) {
  const name = err instanceof Error || (isObject(err) && typeof err.name === 'string') ? String(/** @type {{name: unknown}} */ (err).name) : '';
  const detail = err instanceof Error || (isObject(err) && typeof err.message === 'string')
    ? String(/** @type {{message: unknown}} */ (err).message) : String(err);
  return { name, detail };
}

/** @param {string} why @returns {StoreError} */
const refused = (why) => ({ kind: 'unavailable', message: `This browser does not let the page save transcripts (${why}).` });

/** @param {unknown} err @returns {StoreError} */
export function toStoreError(err) {
  const { name, detail } = nameAndDetail(err);
  switch (name) {
    case 'QuotaExceededError':
      return { kind: 'quota', message: 'The browser has no more room for saved transcripts.' };
    case 'BlockedError':
      return { kind: 'blocked', message: 'Another tab with this page (an older version?) keeps the saved transcripts '
        + 'locked: close it, then reload this page.' };
    case 'VersionError':
      return { kind: 'version', message: 'A newer version of this page is open in another tab.' };
    case 'InvalidStateError':
      return { kind: 'closed', message: 'The transcript database was closed (upgraded in another tab?).' };
    case 'MissingSession':
      return { kind: 'missing', message: detail };
    case 'SecurityError':
    case 'UnknownError':
    case 'NotAllowedError':
      return refused(detail || name);
    default:
      return { kind: 'failed', message: `Saving the transcript failed: ${detail || name || 'unknown error'}.` };
  }
}

/**
 * What a failed indexedDB.open() means. Firefox's private windows (before version 115) fail it with
 * InvalidStateError: the browser refuses storage, no open database was closed. TimeoutError: it never answered.
 * @param {unknown} err
 * @returns {StoreError}
 */
function openError(err) {
  const { name, detail } = nameAndDetail(err);
  return name === 'InvalidStateError' || name === 'TimeoutError' ? refused(detail || name) : toStoreError(err);
}

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function settle(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Run `body` in one transaction; resolves with its value once the transaction has committed (for readwrite: the
 * data is on disk as far as `durability` promises). Only IndexedDB requests may be awaited inside `body`: waiting
 * on anything else lets the transaction commit early.
 * @template T
 * @param {IDBDatabase} db
 * @param {string[]} names
 * @param {IDBTransactionMode} mode
 * @param {(tx: IDBTransaction) => Promise<T>} body
 * @param {IDBTransactionDurability} [durability]
 * @returns {Promise<T>}
 */
async function transact(db, names, mode, body, durability) {
  const tx = durability ? db.transaction(names, mode, { durability }) : db.transaction(names, mode);
  /** @type {Promise<void>} */
  const done = new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException('The transaction was aborted.', 'AbortError'));
  });
  // Observed at once so an abort while `body` runs is never an unhandled rejection; awaited below.
  done.catch(() => {});
  let value;
  try {
    value = await body(tx);
  } catch (err) {
    try { tx.abort(); } catch { /* already finished */ }
    // A quota failure surfaces on the transaction, not on the request: prefer its error.
    throw tx.error ?? err;
  }
  await done;
  return value;
}

/** @param {typeof IDBKeyRange} ranges @param {string} sessionId */
const finalsRange = (ranges, sessionId) => ranges.bound([sessionId, 0], [sessionId, Infinity]);

/**
 * @param {unknown} raw
 * @returns {{ok: true, value: SessionRecord} | {ok: false, reason: string}}
 */
export function parseSession(raw) {
  if (!isObject(raw)) return { ok: false, reason: 'not an object' };
  if (raw.v !== RECORD_VERSION) return { ok: false, reason: `record version ${String(raw.v)}, expected ${RECORD_VERSION}` };
  const states = ['recording', 'stopped', 'interrupted'];
  if (typeof raw.id !== 'string' || !raw.id) return { ok: false, reason: 'no id' };
  if (!isDate(raw.startedAt) || !isDate(raw.updatedAt)) return { ok: false, reason: 'bad dates' };
  if (typeof raw.title !== 'string' || typeof raw.preview !== 'string') return { ok: false, reason: 'bad text fields' };
  if (!Array.isArray(raw.engines) || !raw.engines.every((e) => typeof e === 'string')) return { ok: false, reason: 'bad engines' };
  if (typeof raw.state !== 'string' || !states.includes(raw.state)) return { ok: false, reason: `bad state ${String(raw.state)}` };
  for (const key of ['durationMs', 'finalCount', 'nextSeq', 'bytes']) {
    const n = raw[key];
    if (!isNumber(n) || n < 0) return { ok: false, reason: `bad ${key}` };
  }
  /** @type {Pending | null} */
  let pending = null;
  if (raw.pending !== undefined) {
    const p = raw.pending;
    if (!(isObject(p) && typeof p.text === 'string' && isTimeOrNull(p.startMs))) return { ok: false, reason: 'bad pending words' };
    if (p.text.trim()) pending = { text: p.text, startMs: p.startMs };
  }
  return {
    ok: true,
    value: {
      v: RECORD_VERSION,
      id: raw.id,
      startedAt: raw.startedAt,
      updatedAt: raw.updatedAt,
      title: raw.title,
      engines: /** @type {string[]} */ ([...raw.engines]),
      state: /** @type {SessionState} */ (raw.state),
      durationMs: /** @type {number} */ (raw.durationMs),
      finalCount: /** @type {number} */ (raw.finalCount),
      nextSeq: /** @type {number} */ (raw.nextSeq),
      bytes: /** @type {number} */ (raw.bytes),
      preview: raw.preview,
      ...(pending ? { pending } : {}),
    },
  };
}

/** @param {unknown} w @returns {w is StoredWord} */
const isWord = (w) => isObject(w) && typeof w.text === 'string' && isNumber(w.startMs) && isNumber(w.endMs);

/**
 * @param {unknown} raw
 * @returns {{ok: true, value: FinalRecord} | {ok: false, reason: string}}
 */
export function parseFinal(raw) {
  if (!isObject(raw)) return { ok: false, reason: 'not an object' };
  if (raw.v !== RECORD_VERSION) return { ok: false, reason: `record version ${String(raw.v)}, expected ${RECORD_VERSION}` };
  if (typeof raw.sessionId !== 'string' || !isNumber(raw.seq)) return { ok: false, reason: 'bad key' };
  if (typeof raw.text !== 'string') return { ok: false, reason: 'no text' };
  if (!isTimeOrNull(raw.startMs) || !isTimeOrNull(raw.endMs)) return { ok: false, reason: 'bad times' };
  if (!Array.isArray(raw.words) || !raw.words.every(isWord)) return { ok: false, reason: 'bad words' };
  return {
    ok: true,
    value: {
      v: RECORD_VERSION,
      sessionId: raw.sessionId,
      seq: raw.seq,
      text: raw.text,
      startMs: raw.startMs,
      endMs: raw.endMs,
      words: raw.words.map((w) => ({ text: w.text, startMs: w.startMs, endMs: w.endMs })),
      estimated: raw.estimated === true,
      ...(raw.rough === true ? { rough: true } : {}),
    },
  };
}

/** @param {string} text */
const normalise = (text) => text.replace(/\s+/g, ' ').trim();

/**
 * @param {string} preview
 * @param {string} text
 */
function extendPreview(preview, text) {
  if (preview.length >= PREVIEW_CHARS) return preview;
  const joined = normalise(`${preview} ${text}`);
  if (joined.length <= PREVIEW_CHARS) return joined;
  // Cut between characters: a cut after the first half of a surrogate pair (an emoji) keeps the pair whole, one
  // UTF-16 unit over. A unit short instead would let the next final extend the preview past the character skipped.
  const last = joined.charCodeAt(PREVIEW_CHARS - 1);
  return joined.slice(0, last >= 0xd800 && last <= 0xdbff ? PREVIEW_CHARS + 1 : PREVIEW_CHARS);
}

/** Newest first; equal start times by id, so the order is total. @param {SessionRecord} a @param {SessionRecord} b */
const newestFirst = (a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * Whether a session may be dropped to make room: never `keep` (the session being written: its words are the ones
 * the user is waiting for), nor one still 'recording' (another tab is writing into it; one a crash left so is
 * marked 'interrupted' on the next load, and can go then).
 * @param {SessionRecord} session
 * @param {string|null} keep
 */
const droppable = (session, keep) => session.id !== keep && session.state !== 'recording';

/** A write that failed after a session was dropped to make room for it: the drop is reported with the failure. */
class FailedAfterDropping extends Error {
  /** @param {unknown} cause @param {SessionRecord[]} dropped */
  constructor(cause, dropped) {
    super('The write failed after sessions were dropped to make room for it.', { cause });
    this.dropped = dropped;
  }
}

let idCount = 0;
/**
 * Ids sort like their creation order within a page (sessions started in the same millisecond stay in order), and the
 * random tail keeps two tabs apart. No crypto.randomUUID: it exists only in secure contexts, IndexedDB everywhere.
 */
function defaultId() {
  idCount += 1;
  const time = Date.now().toString(36).padStart(9, '0');
  return `${time}-${idCount.toString(36).padStart(4, '0')}-${Math.random().toString(36).slice(2, 10)}`;
}

/** @param {Cap} cap @returns {Cap} */
function checkedCap(cap) {
  const maxSessions = Math.floor(cap.maxSessions);
  const maxBytes = Math.floor(cap.maxBytes);
  if (!(maxSessions >= 1) || !(maxBytes >= 1)) throw new RangeError(`The cap must allow at least one session and one byte: ${JSON.stringify(cap)}`);
  return { maxSessions, maxBytes };
}

/**
 * @typedef {object} OpenOptions
 * @property {IDBFactory | undefined | null} indexedDB  the page's `indexedDB` (undefined where the browser has none)
 * @property {typeof IDBKeyRange} [keyRange]  the page's `IDBKeyRange` (the global one unless given)
 * @property {string} [name]         database name (tests use their own)
 * @property {Cap} [cap]
 * @property {() => number} [now]    epoch ms
 * @property {() => string} [newId]
 * @property {readonly Migration[]} [migrations]  MIGRATIONS unless a test runs a future step
 * @property {number} [openTimeoutMs]  OPEN_TIMEOUT_MS unless given
 * @property {(fn: () => void, ms: number) => unknown} [setTimer]  for the open timeout (setTimeout unless a test
 *   drives time)
 * @property {(id: unknown) => void} [clearTimer]  clears what setTimer returned (clearTimeout unless given)
 */

/**
 * Open (creating or upgrading) the database.
 * @param {OpenOptions} options
 * @returns {Promise<Result<TranscriptStore>>}
 */
export async function openTranscriptStore(options) {
  const factory = options.indexedDB;
  if (!factory) {
    return { ok: false, error: { kind: 'unavailable', message: 'This browser has no database for saved transcripts.' } };
  }
  const migrations = options.migrations ?? MIGRATIONS;
  try {
    const request = factory.open(options.name ?? DB_NAME, migrations.length);
    request.onupgradeneeded = (event) => {
      const tx = /** @type {IDBTransaction} */ (request.transaction);
      for (let step = event.oldVersion; step < migrations.length; step++) migrations[step](request.result, tx);
    };
    const timeoutMs = options.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    const setTimer = options.setTimer ?? ((/** @type {() => void} */ fn, /** @type {number} */ ms) => setTimeout(fn, ms));
    const clearTimer = options.clearTimer
      ?? ((/** @type {unknown} */ id) => clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (id)));
    const db = await new Promise((resolve, reject) => {
      /**
       * Carry on without saving (the writes queued meanwhile are let go of, not kept for ever). Should this request
       * succeed later, that connection is closed at once: nobody holds it.
       * @param {DOMException} why
       */
      const giveUp = (why) => {
        clearTimer(timer);
        request.onsuccess = () => request.result.close();
        reject(why);
      };
      const timer = setTimer(() => {
        giveUp(new DOMException(`the database did not open within ${timeoutMs / 1000} s`, 'TimeoutError'));
      }, timeoutMs);
      request.onsuccess = () => {
        clearTimer(timer);
        resolve(request.result);
      };
      request.onerror = () => {
        clearTimer(timer);
        reject(request.error);
      };
      // Another tab holds an older connection open and did not close it when told (versionchange): an older page
      // without that handler, or a frozen one. Waiting would stall saving, the history and the page's readiness
      // until that tab goes, so the page carries on without saving and says why.
      request.onblocked = () => giveUp(new DOMException('blocked by another tab', 'BlockedError'));
    });
    return { ok: true, value: new TranscriptStore(db, options), dropped: [], skipped: [] };
  } catch (err) {
    return { ok: false, error: openError(err) };
  }
}

export class TranscriptStore {
  /**
   * Use openTranscriptStore().
   * @param {IDBDatabase} db
   * @param {OpenOptions} options
   */
  constructor(db, options) {
    this.db = db;
    this.ranges = options.keyRange ?? globalThis.IDBKeyRange;
    /** @type {Cap} */
    this.cap = checkedCap(options.cap ?? DEFAULT_CAP);
    this.now = options.now ?? (() => Date.now());
    this.newId = options.newId ?? defaultId;
    this.closed = false;
    /**
     * A session was dropped for a full quota and the write still did not fit. Browsers reclaim the space of deleted
     * records lazily, so a drop often frees nothing at once: dropping one more per write from then on would empty
     * the history within one recording. Until a write fits again a full quota only fails the write.
     */
    this.droppedInVain = false;
    /** @type {(() => void) | null} told when a newer page took the database away */
    this.onclose = null;
    // A newer page in another tab wants to upgrade: step aside (further calls report 'closed'), and say so now,
    // not at the next write, which may be much later.
    db.onversionchange = () => {
      this.close();
      this.onclose?.();
    };
  }

  /** @param {Cap} cap */
  setCap(cap) {
    this.cap = checkedCap(cap);
  }

  close() {
    this.closed = true;
    this.db.close();
  }

  /**
   * @template T
   * @param {() => Promise<{value: T, dropped?: SessionRecord[], skipped?: Skipped[]}>} op
   * @returns {Promise<Result<T>>}
   */
  async _result(op) {
    if (this.closed) return { ok: false, error: toStoreError(new DOMException('closed', 'InvalidStateError')) };
    try {
      const { value, dropped = [], skipped = [] } = await op();
      return { ok: true, value, dropped, skipped };
    } catch (err) {
      if (err instanceof FailedAfterDropping) {
        return { ok: false, error: toStoreError(err.cause), dropped: err.dropped };
      }
      return { ok: false, error: toStoreError(err) };
    }
  }

  /**
   * Drop whole sessions, oldest first, until the rest fit the cap, sparing those droppable() spares: with only
   * those left the store stays over the cap until one of them stops. Runs inside the caller's transaction.
   * @param {IDBTransaction} tx
   * @param {string|null} keep
   * @returns {Promise<{dropped: SessionRecord[], skipped: Skipped[]}>}
   */
  async _enforceCap(tx, keep) {
    const { sessions, skipped } = await this._readSessions(tx);
    let count = sessions.length;
    let bytes = sessions.reduce((sum, s) => sum + s.bytes, 0);
    /** @type {SessionRecord[]} */
    const dropped = [];
    const oldestFirst = [...sessions].sort(newestFirst).reverse();
    for (const s of oldestFirst) {
      if (count <= this.cap.maxSessions && bytes <= this.cap.maxBytes) break;
      if (!droppable(s, keep)) continue;
      await this._delete(tx, s.id);
      dropped.push(s);
      count -= 1;
      bytes -= s.bytes;
    }
    return { dropped, skipped };
  }

  /**
   * @param {IDBTransaction} tx
   * @returns {Promise<{sessions: SessionRecord[], skipped: Skipped[]}>}
   */
  async _readSessions(tx) {
    const raw = /** @type {unknown[]} */ (await settle(tx.objectStore(SESSIONS).getAll()));
    /** @type {SessionRecord[]} */
    const sessions = [];
    /** @type {Skipped[]} */
    const skipped = [];
    for (const r of raw) {
      const parsed = parseSession(r);
      if ('value' in parsed) sessions.push(parsed.value);
      else skipped.push({ id: isObject(r) && typeof r.id === 'string' ? r.id : '?', store: SESSIONS, reason: parsed.reason });
    }
    sessions.sort(newestFirst);
    return { sessions, skipped };
  }

  /** @param {IDBTransaction} tx @param {string} id */
  async _delete(tx, id) {
    await settle(tx.objectStore(FINALS).delete(finalsRange(this.ranges, id)));
    await settle(tx.objectStore(SESSIONS).delete(id));
  }

  /** @param {IDBTransaction} tx @param {string} id @returns {Promise<SessionRecord>} */
  async _getSession(tx, id) {
    const raw = await settle(tx.objectStore(SESSIONS).get(id));
    if (raw === undefined) throw Object.assign(new Error(`No saved session ${id}.`), { name: 'MissingSession' });
    const parsed = parseSession(raw);
    if ('reason' in parsed) throw Object.assign(new Error(`Saved session ${id} is unreadable (${parsed.reason}).`), { name: 'MissingSession' });
    return parsed.value;
  }

  /**
   * Run a write; when the browser's quota is full, drop the oldest session droppable() allows and try once more. At
   * most one session goes per write, none once a drop has not made room (droppedInVain), and the one dropped is
   * reported whether the second try works or not.
   * @template T
   * @param {string|null} keep
   * @param {(tx: IDBTransaction) => Promise<{value: T, dropped: SessionRecord[], skipped: Skipped[]}>} body
   * @param {IDBTransactionDurability} [durability]
   */
  async _write(keep, body, durability) {
    const attempt = () => transact(this.db, [SESSIONS, FINALS], 'readwrite', body, durability);
    try {
      const out = await attempt();
      // A write that fits: the space came back, and a later full quota may make room once more.
      this.droppedInVain = false;
      return out;
    } catch (err) {
      if (toStoreError(err).kind !== 'quota' || this.droppedInVain) throw err;
      const victim = await transact(this.db, [SESSIONS, FINALS], 'readwrite', async (tx) => {
        const { sessions } = await this._readSessions(tx);
        const oldest = sessions.filter((s) => droppable(s, keep)).pop();
        if (oldest) await this._delete(tx, oldest.id);
        return oldest;
      });
      if (!victim) throw err;
      try {
        const out = await attempt();
        return { ...out, dropped: [victim, ...out.dropped] };
      } catch (again) {
        if (toStoreError(again).kind === 'quota') this.droppedInVain = true;
        throw new FailedAfterDropping(again, [victim]);
      }
    }
  }

  /**
   * A new, empty session in the 'recording' state.
   * @param {{title: string, engine: string, startedAt?: number, id?: string}} meta  id: one from newId(), for a
   *   caller that must mark the session its own (take its lock) before the record exists
   * @returns {Promise<Result<SessionRecord>>}
   */
  startSession(meta) {
    return this._result(() => {
      const at = meta.startedAt ?? this.now();
      /** @type {SessionRecord} */
      const record = {
        v: RECORD_VERSION,
        id: meta.id ?? this.newId(),
        startedAt: at,
        updatedAt: at,
        title: meta.title,
        engines: meta.engine ? [meta.engine] : [],
        state: 'recording',
        durationMs: 0,
        finalCount: 0,
        nextSeq: 0,
        bytes: 0,
        preview: '',
      };
      record.bytes = sizeOf(record);
      return this._write(record.id, async (tx) => {
        await settle(tx.objectStore(SESSIONS).add(record));
        const { dropped, skipped } = await this._enforceCap(tx, record.id);
        return { value: record, dropped, skipped };
      });
    });
  }

  /**
   * Append one final to a session (and keep the session's length, preview and size current). Written with strict
   * durability: a final is the thing the user must never lose, and one flush per final is cheap.
   * @param {string} sessionId
   * @param {FinalInput} final
   * @param {{durationMs?: number, engine?: string}} [progress]  the transcript's length so far, and the engine
   *   that made the final (added to the session's engines: an engine is the transcript's once it gave it words)
   * @returns {Promise<Result<FinalRecord>>}
   */
  addFinal(sessionId, final, progress = {}) {
    return this._result(() => this._write(sessionId, async (tx) => {
      const session = await this._getSession(tx, sessionId);
      /** @type {FinalRecord} */
      const record = {
        v: RECORD_VERSION,
        sessionId,
        seq: session.nextSeq,
        text: String(final.text),
        startMs: isNumber(final.startMs) ? final.startMs : null,
        endMs: isNumber(final.endMs) ? final.endMs : null,
        words: (final.words ?? []).filter(isWord).map((w) => ({ text: w.text, startMs: w.startMs, endMs: w.endMs })),
        estimated: final.estimated === true,
        ...(final.rough === true ? { rough: true } : {}),
      };
      await settle(tx.objectStore(FINALS).add(record));
      const before = sizeOf(session);
      // The final supersedes the words that were pending; the next interim sets them again.
      delete session.pending;
      session.nextSeq += 1;
      session.finalCount += 1;
      session.updatedAt = this.now();
      session.preview = extendPreview(session.preview, record.text);
      if (progress.engine && !session.engines.includes(progress.engine)) session.engines.push(progress.engine);
      const ends = [session.durationMs, record.endMs ?? 0, ...record.words.map((w) => w.endMs)];
      session.durationMs = Math.max(...ends, isNumber(progress.durationMs) ? progress.durationMs : 0);
      session.bytes += sizeOf(record) + sizeOf(session) - before;
      await settle(tx.objectStore(SESSIONS).put(session));
      const { dropped, skipped } = await this._enforceCap(tx, sessionId);
      return { value: record, dropped, skipped };
    }, 'strict'));
  }

  /**
   * Change a session's state, length, title or engines (a new engine is appended to the list).
   * @param {string} sessionId
   * @param {{state?: SessionState, durationMs?: number, title?: string, engine?: string}} patch
   * @returns {Promise<Result<SessionRecord>>}
   */
  updateSession(sessionId, patch) {
    return this._result(() => this._write(sessionId, async (tx) => {
      const session = await this._getSession(tx, sessionId);
      const before = sizeOf(session);
      if (patch.state) session.state = patch.state;
      // A recording that stopped has no words in flight: what was pending became a final or was cancelled.
      if (patch.state === 'stopped') delete session.pending;
      if (isNumber(patch.durationMs)) session.durationMs = Math.max(session.durationMs, patch.durationMs);
      if (typeof patch.title === 'string') session.title = patch.title;
      if (patch.engine && !session.engines.includes(patch.engine)) session.engines.push(patch.engine);
      session.updatedAt = this.now();
      session.bytes += sizeOf(session) - before;
      await settle(tx.objectStore(SESSIONS).put(session));
      return { value: session, dropped: [], skipped: [] };
    }));
  }

  /**
   * Keep the words on screen that are not final yet (null: there are none). Relaxed durability: it is replaced
   * several times a second, so it is not flushed to disk each time; a reload or a crashed tab keeps it (the browser
   * commits it), only a crash of the whole browser or machine may lose that newest interim.
   * @param {string} sessionId
   * @param {Pending | null} pending
   * @param {{durationMs?: number}} [progress]  the transcript's length so far: words in flight long after the last
   *   final start past the length the finals gave, and a length short of them would squeeze them into its end
   * @returns {Promise<Result<SessionRecord>>}
   */
  setPending(sessionId, pending, progress = {}) {
    return this._result(() => this._write(sessionId, async (tx) => {
      const session = await this._getSession(tx, sessionId);
      const before = sizeOf(session);
      if (pending && pending.text.trim()) {
        session.pending = { text: String(pending.text), startMs: isNumber(pending.startMs) ? pending.startMs : null };
      } else {
        delete session.pending;
      }
      if (isNumber(progress.durationMs)) session.durationMs = Math.max(session.durationMs, progress.durationMs);
      session.updatedAt = this.now();
      session.bytes += sizeOf(session) - before;
      await settle(tx.objectStore(SESSIONS).put(session));
      return { value: session, dropped: [], skipped: [] };
    }, 'relaxed'));
  }

  /**
   * Every readable session, newest first; unreadable ones are listed in `skipped`.
   * @returns {Promise<Result<SessionRecord[]>>}
   */
  listSessions() {
    return this._result(() => transact(this.db, [SESSIONS], 'readonly', async (tx) => {
      const { sessions, skipped } = await this._readSessions(tx);
      return { value: sessions, skipped };
    }));
  }

  /**
   * One session with its finals in arrival order; unreadable finals are skipped and listed.
   * @param {string} sessionId
   * @returns {Promise<Result<{session: SessionRecord, finals: FinalRecord[]}>>}
   */
  getSession(sessionId) {
    return this._result(() => transact(this.db, [SESSIONS, FINALS], 'readonly', async (tx) => {
      const session = await this._getSession(tx, sessionId);
      const raw = /** @type {unknown[]} */ (await settle(tx.objectStore(FINALS).getAll(finalsRange(this.ranges, sessionId))));
      /** @type {FinalRecord[]} */
      const finals = [];
      /** @type {Skipped[]} */
      const skipped = [];
      raw.forEach((r, i) => {
        const parsed = parseFinal(r);
        if ('value' in parsed) finals.push(parsed.value);
        else skipped.push({ id: `${sessionId}#${isObject(r) && isNumber(r.seq) ? r.seq : i}`, store: FINALS, reason: parsed.reason });
      });
      return { value: { session, finals }, skipped };
    }));
  }

  /**
   * @param {string} sessionId
   * @returns {Promise<Result<boolean>>}  true when it existed
   */
  deleteSession(sessionId) {
    return this._result(() => transact(this.db, [SESSIONS, FINALS], 'readwrite', async (tx) => {
      const existed = (await settle(tx.objectStore(SESSIONS).count(sessionId))) > 0;
      await this._delete(tx, sessionId);
      return { value: existed };
    }));
  }

  /** @returns {Promise<Result<number>>}  how many sessions there were */
  deleteAll() {
    return this._result(() => transact(this.db, [SESSIONS, FINALS], 'readwrite', async (tx) => {
      const n = await settle(tx.objectStore(SESSIONS).count());
      await settle(tx.objectStore(SESSIONS).clear());
      await settle(tx.objectStore(FINALS).clear());
      return { value: n };
    }));
  }

  /**
   * Apply the cap now (after it was lowered), keeping `keep`.
   * @param {string|null} [keep]
   * @returns {Promise<Result<SessionRecord[]>>}  the sessions dropped
   */
  prune(keep = null) {
    return this._result(() => transact(this.db, [SESSIONS, FINALS], 'readwrite', async (tx) => {
      const out = await this._enforceCap(tx, keep);
      return { value: out.dropped, dropped: out.dropped, skipped: out.skipped };
    }));
  }
}
