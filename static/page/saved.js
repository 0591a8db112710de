// Saved transcripts on the page: the run controller's transcript kept in the browser's database as it grows, a
// recording cut off by a reload or crash put back (marked interrupted), and the history panel. Nothing runs on
// import: mountPage() calls mountSaved().
import { HistoryPanel, savedSegments } from '../transcripts/history.js';
import { TranscriptKeeper, describeDate } from '../transcripts/keeper.js';
import { DEFAULT_CAP, openTranscriptStore, toStoreError } from '../transcripts/store.js';
import { byId, flash } from './view.js';

/** @typedef {import('./controller.js').RunController} RunController */
/** @typedef {import('./controller.js').PageView} PageView */
/** @typedef {import('./controller.js').Segment} Segment */
/** @typedef {import('../transcripts/store.js').Cap} Cap */
/** @typedef {import('../transcripts/keeper.js').Notice} Notice */

export const CAP_KEY = 'live-stt.transcripts.cap';

/**
 * The warning key of a storage failure's notice, so showing it again replaces it instead of adding a copy.
 * @param {Notice} notice
 */
const noticeKey = (notice) => (notice.kind === 'error' ? `storage-${notice.error.kind}` : undefined);

/**
 * The storage limits the user set (the defaults when none, or when what is stored does not parse).
 * @param {Storage | null} storage
 * @returns {Cap}
 */
export function loadCap(storage) {
  try {
    /** @type {unknown} */
    const cap = JSON.parse(storage?.getItem(CAP_KEY) || 'null');
    if (typeof cap === 'object' && cap !== null && 'maxSessions' in cap && 'maxBytes' in cap) {
      const { maxSessions, maxBytes } = cap;
      if (Number.isInteger(maxSessions) && Number.isInteger(maxBytes)
        && /** @type {number} */ (maxSessions) >= 1 && /** @type {number} */ (maxBytes) >= 1) {
        return { maxSessions: /** @type {number} */ (maxSessions), maxBytes: /** @type {number} */ (maxBytes) };
      }
    }
  } catch { /* unreadable: the defaults */ }
  return DEFAULT_CAP;
}

/**
 * @typedef {object} SavedDeps
 * @property {Window & typeof globalThis} win
 * @property {RunController} controller
 * @property {PageView} view
 * @property {(file: {filename: string, mime: string, text: string}) => void} save  hands a file to the browser
 * @property {Storage | null} storage  where the storage limits are remembered
 */

/**
 * Wire saving, restoring and the history panel to the page.
 * @param {SavedDeps} deps
 */
export function mountSaved({ win, controller, view, save, storage }) {
  const doc = win.document;
  const banner = byId(doc, 'restored');
  const keeper = new TranscriptKeeper({
    open: async () => {
      let factory;
      let ranges;
      try {
        factory = win.indexedDB;
        ranges = win.IDBKeyRange;
      } catch (err) {
        // Reading `indexedDB` itself throws where the browser forbids storage (Firefox with cookies blocked).
        return { ok: false, error: toStoreError(err) };
      }
      return openTranscriptStore({ indexedDB: factory, keyRange: ranges, cap: loadCap(storage) });
    },
    notify: (notice) => {
      view.addWarning(notice.message, notice.kind === 'dropped' ? 'info' : 'warning', noticeKey(notice));
      if (notice.kind === 'dropped') panel.refresh();
    },
    locks: win.navigator.locks ?? null,
  });
  const panel = new HistoryPanel({
    doc,
    keeper,
    save,
    // The page's own transcript was among them: it goes from the page too, as with Clear.
    onDeleted: (pageCopy) => { if (pageCopy) controller.clear(); },
    isRecording: () => controller.running,
    status: (message) => flash(byId(doc, 'history-status'), message),
    cap: loadCap(storage),
    onCapChange: (cap) => {
      try { storage?.setItem(CAP_KEY, JSON.stringify(cap)); } catch { /* not remembered, still applied */ }
      keeper.setCap(cap).then(() => panel.refresh());
    },
  });

  keeper.ready.then((ok) => {
    if (!ok) byId(doc, 'history-empty').textContent = 'Transcripts cannot be saved in this browser (see the notice above).';
  });

  const hideBanner = () => {
    banner.hidden = true;
    banner.textContent = '';
  };

  /** @type {unknown} the run whose first final has been listed */
  let listedRun = null;
  controller.listen({
    onRunStart(run) {
      if (!banner.hidden) {
        // The restored transcript stays saved as it is; this recording starts a session of its own.
        hideBanner();
        keeper.detach();
      }
      listedRun = null;
      // Start cleared the warnings; a storage failure that still holds is not told again by the keeper.
      for (const notice of keeper.standingNotices) view.addWarning(notice.message, 'warning', noticeKey(notice));
      // A later recording marks the saved session recording again: shown once written, not at the run's end.
      keeper.startRun({ title: controller.title, engine: run.session.provider }).then(() => panel.refresh());
      panel.render();
    },
    onFinal(segment, run) {
      // Each recording's first final is listed as soon as it is saved (it creates the session, or brings a stopped
      // one back with its new length); later finals wait for the run's end, so the list is not rebuilt per final.
      const first = listedRun !== run;
      listedRun = run;
      keeper.addFinal(segment, controller.onTranscriptClock(run, controller.audioMs(run))).then(() => {
        if (first) panel.refresh();
      });
    },
    onPartial(text, run) {
      // The words on screen not final yet: a reload before their final (say, while Stop waits for it) keeps them.
      // With the audio clock, as a final has: words heard after the last final lengthen the saved transcript.
      const heardMs = controller.onTranscriptClock(run, controller.audioMs(run));
      keeper.setPending({ text, startMs: controller.utteranceStart(run) }, heardMs);
    },
    onRunEnd() {
      keeper.endRun(controller.endMs);
      panel.refresh();
    },
    onClear() {
      // Clear means gone: the saved copy goes too.
      keeper.discard();
      hideBanner();
      panel.refresh();
    },
  });

  /** Put back the transcript of a page that was reloaded or crashed while recording, marked as interrupted. */
  async function restore() {
    const restored = await keeper.recoverInterrupted();
    if (!restored) return;
    const { session, finals } = restored;
    /** @type {Segment[]} */
    // The finals, and the words that were on screen but not final when the page went, as the rough line they were.
    const segments = savedSegments(session, finals);
    const pending = session.pending;
    if (!controller.restore({ segments, endMs: session.durationMs, title: session.title, engines: session.engines })) {
      // Something is already on the page: the interrupted recording stays in the history only.
      await keeper.detach();
      return;
    }
    banner.textContent = `Restored: this recording from ${describeDate(session.startedAt)} was interrupted (the page `
      + `was reloaded or closed while listening). ${finals.length} final${finals.length === 1 ? '' : 's'} kept`
      + `${pending ? ', and the last words, which were not final yet (marked rough)' : ''}. `
      + 'Start begins a new recording; this one stays under Saved transcripts.';
    banner.hidden = false;
  }

  return {
    keeper,
    panel,
    /** Restore an interrupted recording, then list the saved transcripts. */
    async load() {
      try {
        await restore();
      } catch (err) {
        view.addWarning(`Could not restore the saved transcript (${err instanceof Error ? err.message : String(err)}).`);
      }
      await panel.refresh();
    },
  };
}
