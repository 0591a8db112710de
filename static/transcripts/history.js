// The history panel: saved transcripts listed (date, engine, length, first words), one opened read-only, exported
// in every format the page has, deleted one by one or all at once.
//
// A page module: it renders into the elements of templates/index.html it is given and talks to the store only
// through the keeper (so a delete never overtakes a queued write). summarise() is pure and tested under Node.
import { FORMATS, exportAs } from '../export.js';
import { formatTime } from '../page/format.js';
import { unfinishedSegment } from '../page/rough.js';
import { describeDate } from './keeper.js';

/** @typedef {import('./store.js').SessionRecord} SessionRecord */
/** @typedef {import('./store.js').FinalRecord} FinalRecord */
/** @typedef {import('./keeper.js').TranscriptKeeper} TranscriptKeeper */
/** @typedef {import('../export.js').ExportFormat} ExportFormat */

const STATE_LABEL = Object.freeze({ recording: 'recording', stopped: '', interrupted: 'interrupted' });

/**
 * What one row says.
 * @param {SessionRecord} s
 * @returns {{date: string, engines: string, length: string, words: string, state: string}}
 */
export function summarise(s) {
  return {
    date: describeDate(s.startedAt),
    engines: s.engines.join(', ') || 'unknown engine',
    length: formatTime(s.durationMs),
    words: s.preview || '(no words)',
    state: STATE_LABEL[s.state],
  };
}

/**
 * A saved session's transcript as the page shows it: its finals, then the words that were not final yet when its
 * recording was cut off (an interrupted session's `pending`), as a rough line.
 * @param {SessionRecord} session
 * @param {FinalRecord[]} finals
 */
export function savedSegments(session, finals) {
  const segments = finals.map((f) => ({
    text: f.text, startMs: f.startMs, endMs: f.endMs, words: f.words, estimated: f.estimated, rough: f.rough,
  }));
  return session.pending ? [...segments, unfinishedSegment(session.pending.text, session.pending.startMs)] : segments;
}

/**
 * The export of a saved session: the same metadata the page writes for its live transcript.
 * @param {ExportFormat} format
 * @param {SessionRecord} session
 * @param {FinalRecord[]} finals
 * @param {string} [exportedAt]
 */
export function exportSaved(format, session, finals, exportedAt = new Date().toISOString()) {
  return exportAs(format, savedSegments(session, finals), {
    title: session.title,
    durationMs: session.durationMs,
    provider: session.engines[session.engines.length - 1] ?? '',
    exportedAt,
  });
}

/**
 * @typedef {object} HistoryOptions
 * @property {Document} doc
 * @property {TranscriptKeeper} keeper
 * @property {(file: {filename: string, mime: string, text: string}) => void} save  hands a file to the browser
 * @property {(pageCopy: boolean) => void} onDeleted  after a delete; `pageCopy`: the page's own transcript was
 *   among the sessions deleted (the page clears it from the screen, as Clear does)
 * @property {() => boolean} isRecording  while true, the page's own transcript cannot be deleted from here
 * @property {(message: string) => void} status  a short polite announcement
 * @property {Cap} cap  the limits shown in the "Storage limits" fields
 * @property {(cap: Cap) => void} onCapChange  the user changed them (valid values only)
 */

/** @typedef {import('./store.js').Cap} Cap */

export const MB = 1024 * 1024;

export class HistoryPanel {
  /** @param {HistoryOptions} options */
  constructor(options) {
    this.options = options;
    this.doc = options.doc;
    /** @type {Cap} */
    this.cap = options.cap;
    this.list = /** @type {HTMLUListElement} */ (this._el('history-list'));
    this.empty = this._el('history-empty');
    this.deleteAll = /** @type {HTMLButtonElement} */ (this._el('history-delete-all'));
    this.confirm = this._el('history-confirm');
    this.view = this._el('history-view');
    this.viewTitle = this._el('history-view-title');
    this.viewMeta = this._el('history-view-meta');
    this.viewText = this._el('history-view-text');
    /** @type {SessionRecord[]} */
    this.sessions = [];
    /** @type {{session: SessionRecord, finals: FinalRecord[]} | null} */
    this.opened = null;

    this.maxSessions = /** @type {HTMLInputElement} */ (this._el('history-max-sessions'));
    this.maxMb = /** @type {HTMLInputElement} */ (this._el('history-max-mb'));
    this._showCap(options.cap);
    for (const input of [this.maxSessions, this.maxMb]) {
      input.addEventListener('change', () => this._capChanged());
      // Firefox sends no change event for Enter in a number field outside a form.
      input.addEventListener('keydown', (event) => { if (event.key === 'Enter') this._capChanged(); });
    }

    this.deleteAll.addEventListener('click', () => this._askDeleteAll());
    this._el('history-confirm-yes').addEventListener('click', () => { this._deleteAll(); });
    this._el('history-confirm-no').addEventListener('click', () => this._closeConfirm());
    this._el('history-view-close').addEventListener('click', () => this.close());
    this._el('history-view-delete').addEventListener('click', () => {
      if (this.opened) this._delete(this.opened.session.id);
    });
    for (const button of this.view.querySelectorAll('button[data-history-format]')) {
      const format = /** @type {ExportFormat} */ (/** @type {HTMLElement} */ (button).dataset.historyFormat);
      button.addEventListener('click', () => this._export(format));
    }
    this.view.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.close();
      }
    });
    this.confirm.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this._closeConfirm();
      }
    });
  }

  /** An element the page template must have. @param {string} id @returns {HTMLElement} */
  _el(id) {
    const el = this.doc.getElementById(id);
    if (!el) throw new Error(`The page has no #${id}.`);
    return el;
  }

  /** @param {Cap} cap */
  _showCap(cap) {
    this.cap = cap;
    this.maxSessions.value = String(cap.maxSessions);
    this.maxMb.value = String(Math.max(1, Math.round(cap.maxBytes / MB)));
  }

  _capChanged() {
    const sessions = Number(this.maxSessions.value);
    const mb = Number(this.maxMb.value);
    if (!Number.isInteger(sessions) || sessions < 1 || !Number.isInteger(mb) || mb < 1) {
      this._showCap(this.cap);
      this.options.status('Limits must be whole numbers of at least 1: kept the previous ones.');
      return;
    }
    // The byte limit is kept as given in bytes when it was not a whole number of MB and the MB field is unchanged.
    const maxBytes = mb === Math.max(1, Math.round(this.cap.maxBytes / MB)) ? this.cap.maxBytes : mb * MB;
    if (sessions === this.cap.maxSessions && maxBytes === this.cap.maxBytes) return;
    this.cap = { maxSessions: sessions, maxBytes };
    this.options.onCapChange(this.cap);
    this.options.status(`Keeping at most ${sessions} transcript${sessions === 1 ? '' : 's'} and ${mb} MB.`);
  }

  /** Re-read the list from the store. */
  async refresh() {
    const sessions = await this.options.keeper.query((store) => store.listSessions());
    this.sessions = sessions ?? [];
    this.render();
  }

  render() {
    const current = this.options.keeper.currentId;
    const recording = this.options.isRecording();
    this.list.replaceChildren(...this.sessions.map((s) => this._row(s, s.id === current, recording)));
    this.empty.hidden = this.sessions.length > 0;
    this.deleteAll.disabled = this.sessions.length === 0 || recording;
    if (this.deleteAll.disabled) this._closeConfirm();
    if (this.opened && !this.sessions.some((s) => s.id === this.opened?.session.id)) this.close();
    const del = /** @type {HTMLButtonElement} */ (this._el('history-view-delete'));
    del.disabled = Boolean(this.opened && this.opened.session.id === current && recording);
  }

  /**
   * @param {SessionRecord} s
   * @param {boolean} current  the page's own transcript
   * @param {boolean} recording
   */
  _row(s, current, recording) {
    const info = summarise(s);
    const li = this.doc.createElement('li');
    li.dataset.sessionId = s.id;
    li.dataset.state = s.state;
    const open = this.doc.createElement('button');
    open.type = 'button';
    open.className = 'history-open';
    open.setAttribute('aria-controls', 'history-view');
    open.setAttribute('aria-expanded', String(this.opened?.session.id === s.id));
    const head = this.doc.createElement('span');
    head.className = 'history-line';
    const time = this.doc.createElement('time');
    time.dateTime = new Date(s.startedAt).toISOString();
    time.textContent = info.date;
    head.append(time, ` · ${info.engines} · ${info.length}`);
    const tags = [info.state, current ? 'on this page' : ''].filter(Boolean);
    for (const tag of tags) {
      const badge = this.doc.createElement('span');
      badge.className = `badge badge-${tag.replace(/\s+/g, '-')}`;
      badge.textContent = tag;
      head.append(' ', badge);
    }
    const words = this.doc.createElement('span');
    words.className = 'history-words';
    words.textContent = info.words;
    open.append(head, words);
    open.addEventListener('click', () => { this.open(s.id); });
    const del = this.doc.createElement('button');
    del.type = 'button';
    del.className = 'history-delete';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete the transcript of ${info.date}`);
    del.disabled = current && recording;
    if (del.disabled) del.title = 'Being recorded: stop first, or use Clear';
    del.addEventListener('click', () => { this._delete(s.id); });
    li.append(open, del);
    return li;
  }

  /** Open one saved session read-only. @param {string} id */
  async open(id) {
    const got = await this.options.keeper.query((store) => store.getSession(id));
    if (!got) {
      await this.refresh();
      return;
    }
    this.opened = got;
    const info = summarise(got.session);
    this.view.dataset.sessionId = id;
    this.viewTitle.textContent = `Saved transcript, ${info.date}`;
    this.viewMeta.textContent = `${info.engines} · ${info.length} · ${got.finals.length} `
      + `final${got.finals.length === 1 ? '' : 's'}${info.state ? ` · ${info.state}` : ''}`;
    const segments = savedSegments(got.session, got.finals);
    this.viewText.replaceChildren(...segments.map((f) => {
      const p = this.doc.createElement('p');
      p.className = 'final';
      if (f.startMs !== null) {
        const time = this.doc.createElement('time');
        time.className = 'stamp';
        time.textContent = `${f.estimated ? '≈' : ''}${formatTime(f.startMs)}`;
        time.dateTime = `PT${(f.startMs / 1000).toFixed(1)}S`;
        p.append(time, ' ');
      }
      const span = this.doc.createElement('span');
      span.className = 'text';
      span.textContent = f.text;
      p.append(span);
      if (f.rough) {
        // Read-only here: the mark with its explanation as a tooltip (the live page has the full note).
        p.classList.add('rough');
        const mark = this.doc.createElement('span');
        mark.className = 'rough-mark';
        mark.textContent = 'rough';
        mark.title = 'Written by the quick first listen: a word or two may be wrong.';
        p.append(' ', mark);
      }
      return p;
    }));
    for (const button of this.view.querySelectorAll('button[data-history-format]')) {
      /** @type {HTMLButtonElement} */ (button).disabled = segments.length === 0;
    }
    this.view.hidden = false;
    this.render();
    // Brought into view as a whole where it fits (else from its top): focus alone scrolls only as far as the
    // title, leaving the transcript it opened below the fold.
    this.view.scrollIntoView({ block: 'nearest' });
    this.viewTitle.focus({ preventScroll: true });
  }

  close() {
    if (this.view.hidden) return;
    const id = this.opened?.session.id;
    this.opened = null;
    this.view.hidden = true;
    delete this.view.dataset.sessionId;
    this.viewText.replaceChildren();
    const item = [...this.list.children].find((li) => /** @type {HTMLElement} */ (li).dataset.sessionId === id);
    const row = /** @type {HTMLElement | null | undefined} */ (item?.querySelector('.history-open'));
    (row ?? this._el('history-title')).focus();
  }

  /** @param {ExportFormat} format */
  _export(format) {
    if (!this.opened || !Object.hasOwn(FORMATS, format)) return;
    const file = exportSaved(format, this.opened.session, this.opened.finals);
    this.options.save(file);
    this.options.status(`Saved ${file.filename}.`);
  }

  /** @param {string} id */
  async _delete(id) {
    const pageCopy = id === this.options.keeper.currentId;
    const ok = await this.options.keeper.delete([id]);
    if (this.opened?.session.id === id) this.close();
    this.options.status(ok ? 'Deleted.' : 'Could not delete it.');
    if (ok) this.options.onDeleted(pageCopy);
    await this.refresh();
    if (!this.list.contains(this.doc.activeElement)) {
      const first = /** @type {HTMLElement | null} */ (this.list.querySelector('.history-open'));
      (first ?? this._el('history-title')).focus();
    }
  }

  _askDeleteAll() {
    this.confirm.hidden = false;
    this._el('history-confirm-no').focus();
  }

  _closeConfirm() {
    if (this.confirm.hidden) return;
    const hadFocus = this.confirm.contains(this.doc.activeElement);
    this.confirm.hidden = true;
    if (hadFocus) (this.deleteAll.disabled ? this._el('history-title') : this.deleteAll).focus();
  }

  async _deleteAll() {
    const n = this.sessions.length;
    // Also when the page's first final is not written yet: the delete takes that one too.
    const pageCopy = this.options.keeper.holdsTranscript;
    const ok = await this.options.keeper.delete('all');
    this.close();
    this._closeConfirm();
    this.options.status(ok ? `Deleted ${n} saved transcript${n === 1 ? '' : 's'}.` : 'Could not delete them.');
    if (ok) this.options.onDeleted(pageCopy);
    await this.refresh();
    this._el('history-title').focus();
  }
}
