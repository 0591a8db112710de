// The page: wires the controls to a Session and renders what it reports.
//
// One transcript can hold several recordings (Start again, or a file): each recording's times run on from where
// the previous one ended, so the transcript and its exports keep one ordered clock. "Clear" starts afresh.
import { startFileSource } from './audio/file-source.js';
import { browserName, formatDiagnostics, fromSession } from './diagnostics.js';
import { exportAs, toTxt } from './export.js';
import { LatencyTracker } from './latency.js';
import { Session } from './session.js';
import { HistoryPanel } from './transcripts/history.js';
import { TranscriptKeeper, describeDate } from './transcripts/keeper.js';
import { DEFAULT_CAP, openTranscriptStore, toStoreError } from './transcripts/store.js';
import {
  $, TranscriptView, addWarning, clearWarnings, flash, formatTime, showCost, showError, showLatency, showLevel,
  showLevelWarning, showProviderStatus, showState, toDbfs,
} from './ui.js';

/** @typedef {{text: string, startMs: number|null, endMs: number|null, words: {text: string, startMs: number, endMs: number}[],
 *   estimated?: boolean}} Segment */

// A level this long at digital zero means a muted or wrong device, not a pause in speech.
const NO_INPUT_MS = 3000;
// The clipping warning stays up this long after the last clipped block, so it can be read.
const CLIP_HOLD_MS = 2000;
const CLIP_PEAK = 0.999;
const DIAGNOSTICS_REFRESH_MS = 1000;
const STORAGE_KEY = 'live-stt.settings';
const CAP_KEY = 'live-stt.transcripts.cap';

const view = new TranscriptView($('transcript'), $('announcer'));

const controls = {
  provider: /** @type {HTMLSelectElement} */ ($('provider')),
  tag: /** @type {HTMLSelectElement} */ ($('tag')),
  mic: /** @type {HTMLSelectElement} */ ($('mic')),
  echo: /** @type {HTMLInputElement} */ ($('opt-echo')),
  noise: /** @type {HTMLInputElement} */ ($('opt-noise')),
  agc: /** @type {HTMLInputElement} */ ($('opt-agc')),
  start: /** @type {HTMLButtonElement} */ ($('start')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  cancel: /** @type {HTMLButtonElement} */ ($('cancel')),
  file: /** @type {HTMLInputElement} */ ($('file')),
  copy: /** @type {HTMLButtonElement} */ ($('copy-transcript')),
  clear: /** @type {HTMLButtonElement} */ ($('clear')),
  exports: /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('button[data-format]')]),
};

/**
 * One recording: a Session and what the page tracks about it.
 * @typedef {object} Run
 * @property {Session} session
 * @property {'mic'|'file'} mode
 * @property {string} label          shown in the state line
 * @property {number} offsetMs       where this recording starts on the transcript's clock
 * @property {LatencyTracker} latency
 * @property {string} clientState    the provider client's last state
 * @property {number | null} utteranceAtMs  audio clock at the current utterance's first interim
 * @property {boolean} over
 */

const page = {
  /** @type {Record<string, any>} */
  providers: {},
  /** @type {Run | null} */
  run: null,
  /** @type {Run | null} the last run, for diagnostics after it ended */
  lastRun: null,
  /** @type {Segment[]} finals on the transcript's clock */
  segments: [],
  /** End of the last finished recording on the transcript's clock. */
  endMs: 0,
  title: '',
  silentSince: 0,
  clippedAt: -Infinity,
  lastError: '',
  /** @type {ReturnType<typeof setInterval> | null} */
  diagnosticsTimer: null,
  /** The transcript on screen was restored from an interrupted session: the next Start begins a new one. */
  restored: false,
};

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err)) || 'Something went wrong.';

/** @param {Run} run */
const audioMs = (run) => {
  const ms = run.session.audioMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : 0;
};

/** @param {boolean} running */
function setRunning(running) {
  controls.start.disabled = running;
  controls.stop.disabled = !running;
  controls.cancel.disabled = !running;
  for (const el of [controls.provider, controls.tag, controls.mic, controls.echo, controls.noise, controls.agc, controls.file]) {
    el.disabled = running;
  }
  updateToolbar();
}

function updateToolbar() {
  const has = page.segments.length > 0;
  for (const b of controls.exports) b.disabled = !has;
  controls.copy.disabled = !has;
  controls.clear.disabled = !has || page.run !== null;
  historyPanel.render();
}

// ---- settings ----

function saveSettings() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({
      provider: controls.provider.value,
      tag: controls.tag.value,
      mic: controls.mic.value,
      echo: controls.echo.checked,
      noise: controls.noise.checked,
      agc: controls.agc.checked,
    }));
  } catch { /* storage may be disabled: settings just are not remembered */ }
}

/** @returns {Record<string, any>} */
function savedSettings() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}') || {};
  } catch {
    return {};
  }
}

async function loadProviders() {
  const response = await fetch('/api/providers', { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  const data = await response.json();
  page.providers = {};
  controls.provider.replaceChildren();
  for (const p of data.providers) {
    page.providers[p.name] = p;
    const option = new Option(p.configured ? p.label : `${p.label} — not configured`, p.name);
    option.disabled = !p.configured;
    controls.provider.append(option);
  }
  showProviderStatus(data.providers);
  const saved = savedSettings();
  const usable = (/** @type {string} */ name) => Boolean(page.providers[name] && page.providers[name].configured);
  if (usable(saved.provider)) controls.provider.value = saved.provider;
  else if (data.default) controls.provider.value = data.default;
  controls.echo.checked = Boolean(saved.echo);
  controls.noise.checked = Boolean(saved.noise);
  controls.agc.checked = Boolean(saved.agc);
  if (!Object.values(page.providers).some((p) => p.configured)) {
    showError('No speech engine is configured. Set the variables listed under "Speech engine" and restart the app.');
    controls.start.disabled = true;
    controls.file.disabled = true;
  }
  await onProviderChange(saved.tag);
}

/** @param {string} [preferredTag] */
async function onProviderChange(preferredTag) {
  const p = page.providers[controls.provider.value];
  const note = $('provider-note');
  const tagField = $('tag-field');
  tagField.hidden = true;
  if (!p) return;
  note.textContent = p.offline
    ? 'Runs on this machine: no account needed, no audio leaves it.'
    : `Audio goes to ${p.label}; the app's server holds the credentials and hands the page a short-lived token.`;
  if (p.name === 'truebar' && p.configured) {
    try {
      const r = await fetch('/api/providers/truebar/options', { credentials: 'same-origin' });
      const options = await r.json();
      if (!r.ok) throw new Error(options.error ? options.error.message : `the server answered ${r.status}`);
      controls.tag.replaceChildren(...options.tags.map((/** @type {string} */ t) => new Option(t, t)));
      controls.tag.value = options.tags.includes(preferredTag) ? preferredTag : options.default_tag;
      tagField.hidden = false;
    } catch (err) {
      addWarning(`Could not list the Truebar models (${messageOf(err)}); the server's default model is used.`);
    }
  }
}

async function loadMicrophones() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const current = controls.mic.value || savedSettings().mic || '';
  controls.mic.replaceChildren(new Option('System default', ''));
  let n = 0;
  let labelled = false;
  for (const d of devices) {
    if (d.kind !== 'audioinput' || !d.deviceId || d.deviceId === 'default') continue;
    n += 1;
    labelled ||= Boolean(d.label);
    // Labels are empty until the page has had microphone permission once.
    controls.mic.append(new Option(d.label || `Microphone ${n}`, d.deviceId));
  }
  const present = [...controls.mic.options].some((o) => o.value === current);
  controls.mic.value = present ? current : '';
  $('mic-note').textContent = labelled || n === 0
    ? (n === 0 ? 'No microphone is listed yet; the system default is used.' : '')
    : 'Names appear once the page may use the microphone (after the first Start).';
}

// ---- a recording ----

/** @param {Run} run @param {number} ms on the recording's clock */
const onTranscriptClock = (run, ms) => run.offsetMs + ms;

/**
 * Wiro sends no times: its client stamps text with the audio clock on arrival, which says nothing about when the
 * words were spoken. Its latency is measured from the level detector's speech start and end instead.
 * @param {Run} run @param {{startMs?: number|null, endMs?: number|null}} event
 */
function timesForLatency(run, event) {
  const grant = run.session.grant;
  return grant && grant.protocol === 'wiro' ? { startMs: null, endMs: null } : event;
}

/** @param {Run} run @param {any} event */
function onEvent(run, event) {
  if (run.over) return;
  const at = typeof event.atMs === 'number' ? event.atMs : audioMs(run);
  run.latency.onAudio(at);
  switch (event.type) {
    case 'state':
      run.clientState = event.state;
      if (event.state === 'configuring' || event.state === 'streaming' || event.state === 'finishing') {
        showState(event.state, event.state === 'streaming' ? run.label : undefined);
      } else if (event.state === 'connecting') {
        showState('connecting');
      }
      break;
    case 'partial':
      if (run.utteranceAtMs === null) run.utteranceAtMs = at;
      run.latency.onPartial(timesForLatency(run, event), at);
      showLatency(run.latency.stats());
      view.setInterim(event.text);
      break;
    case 'final': {
      run.latency.onFinal(timesForLatency(run, event), at);
      showLatency(run.latency.stats());
      const shift = (/** @type {number|null} */ t) => (typeof t === 'number' ? onTranscriptClock(run, t) : null);
      /** @type {Segment} */
      const segment = {
        text: event.text,
        startMs: shift(event.startMs),
        endMs: shift(event.endMs),
        words: (event.words || []).map((/** @type {any} */ w) => ({
          text: w.text, startMs: onTranscriptClock(run, w.startMs), endMs: onTranscriptClock(run, w.endMs),
        })),
        // Wiro gives no times: its client dates the text by the audio sent when it arrived, a guess to mark as one.
        estimated: run.session?.grant?.protocol === 'wiro',
      };
      // Without provider times the audio clock at the first interim is the best guess at where it started.
      const approx = run.utteranceAtMs === null ? null : onTranscriptClock(run, run.utteranceAtMs);
      run.utteranceAtMs = null;
      view.addFinal(segment, approx);
      if (segment.text.trim()) {
        page.segments.push(segment);
        const first = keeper.currentId === null;
        keeper.addFinal(segment, onTranscriptClock(run, audioMs(run))).then(() => {
          // The first final creates the saved session: list it.
          if (first) historyPanel.refresh();
        });
        updateToolbar();
      }
      break;
    }
    case 'warning':
      addWarning(event.message);
      break;
    case 'source':
      addWarning(event.message, event.recovered ? 'info' : 'warning');
      break;
    case 'reconnecting':
      run.clientState = 'reconnecting';
      showState('reconnecting', `attempt ${event.attempt}${event.delayMs >= 1000 ? ` in ${Math.round(event.delayMs / 1000)} s` : ''}; `
        + `${(event.bufferedMs / 1000).toFixed(1)} s of audio held`);
      break;
    case 'reconnected':
      addWarning(`Reconnected: ${(event.replayedMs / 1000).toFixed(1)} s of audio were sent again, so nothing was lost.`, 'info');
      break;
    case 'dropped':
      addWarning(`${(event.droppedMs / 1000).toFixed(1)} s of audio could not be kept while disconnected: `
        + 'the transcript has a gap there.');
      break;
    case 'error':
      page.lastError = event.message;
      showError(event.message);
      if (event.fatal) endRun(run, 'error');
      break;
    case 'cost':
      if (typeof event.cumulativeCost === 'number') showCost(event.cumulativeCost);
      break;
    default:
      break;
  }
}

/** @param {Run} run @param {{rms: number, peak: number, silent: boolean}} level */
function onLevel(run, level) {
  if (run.over) return;
  run.latency.onLevel(level.rms, audioMs(run));
  showLevel(toDbfs(level.rms));
  const now = performance.now();
  page.silentSince = level.silent ? (page.silentSince || now) : 0;
  if (level.peak >= CLIP_PEAK) page.clippedAt = now;
  if (now - page.clippedAt < CLIP_HOLD_MS) {
    showLevelWarning('The input is clipping: move back from the microphone or lower its gain.');
  } else if (run.mode === 'mic' && page.silentSince && now - page.silentSince > NO_INPUT_MS) {
    showLevelWarning('No input: the microphone delivers digital silence. Is it muted, or is another device selected?');
  } else {
    showLevelWarning('');
  }
}

/**
 * The run is over (stopped, cancelled or failed): the page is ready for the next one.
 * @param {Run} run @param {'idle'|'error'} state
 */
function endRun(run, state) {
  if (run.over) return;
  run.over = true;
  if (state === 'error') run.session.cancel();
  page.endMs = Math.max(page.endMs, onTranscriptClock(run, audioMs(run)));
  page.lastRun = run;
  if (page.run === run) page.run = null;
  keeper.endRun(page.endMs);
  historyPanel.refresh();
  view.setInterim('');
  showLevel(null);
  showLevelWarning('');
  page.silentSince = 0;
  showState(state);
  setRunning(false);
  refreshDiagnostics();
}

/** @param {{file?: File}} [source] */
async function start(source = {}) {
  if (page.run || (controls.start.disabled && !source.file)) return;
  const provider = controls.provider.value;
  if (!page.providers[provider] || !page.providers[provider].configured) {
    showError('Pick a configured speech engine first.');
    return;
  }
  showError('');
  clearWarnings();
  page.lastError = '';
  saveSettings();
  if (page.restored) {
    // The restored transcript stays in the history; this recording is a session of its own.
    keeper.detach();
    resetTranscript();
  }
  const file = source.file;
  const label = file ? `transcribing ${file.name}` : (page.providers[provider].label || provider);
  /** @type {Run} */
  const run = {
    session: /** @type {any} */ (null),
    mode: file ? 'file' : 'mic',
    label,
    offsetMs: page.endMs,
    latency: new LatencyTracker(),
    clientState: 'idle',
    utteranceAtMs: null,
    over: false,
  };
  if (page.segments.length) view.addBreak(file ? `${file.name}, from ${formatTime(run.offsetMs)}` : `New recording, from ${formatTime(run.offsetMs)}`);
  if (!page.title) page.title = file ? file.name.replace(/\.[^.]+$/, '') : `transcript-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}`;
  showLatency(run.latency.stats());
  showCost(null);
  page.run = run;
  keeper.startRun({ title: page.title, engine: provider });
  setRunning(true);
  showState('connecting', file ? `decoding ${file.name}` : undefined);
  run.session = new Session({
    provider,
    tag: $('tag-field').hidden ? undefined : controls.tag.value,
    deviceId: controls.mic.value || undefined,
    echoCancellation: controls.echo.checked,
    noiseSuppression: controls.noise.checked,
    autoGainControl: controls.agc.checked,
    createSource: file ? (o) => startFileSource(file, {
      ...o,
      // Wiro has no end-of-utterance signal but the pause between increments (wall-clock time): pace at 1x.
      realtime: provider === 'wiro',
      canSend: () => run.clientState === 'streaming',
      onEnded: () => { if (page.run === run) stop(); },
      onError: (err) => { onEvent(run, { type: 'error', message: err.message, fatal: true }); },
    }) : undefined,
    onEvent: (event) => onEvent(run, event),
    onLevel: (level) => onLevel(run, level),
    onInterrupted: (reason) => addWarning(reason),
  });
  try {
    await run.session.start();
    if (!run.over) showState('streaming', run.label);
    if (!file) loadMicrophones().catch(() => {});
  } catch (err) {
    if (run.over) return;
    page.lastError = messageOf(err);
    showError(page.lastError);
    endRun(run, 'error');
  }
}

async function stop() {
  const run = page.run;
  if (!run || run.over || controls.stop.disabled) return;
  controls.stop.disabled = true;
  showState('finishing');
  try {
    await run.session.stop();
    endRun(run, 'idle');
  } catch (err) {
    page.lastError = messageOf(err);
    showError(page.lastError);
    endRun(run, 'error');
  }
}

function cancel() {
  const run = page.run;
  if (!run || run.over) return;
  run.session.cancel();
  endRun(run, 'idle');
  addWarning('Cancelled: the words still being recognised were discarded.', 'info');
}

/** Empty the page's transcript (its stored copy is the caller's business). */
function resetTranscript() {
  page.segments = [];
  page.endMs = 0;
  page.title = '';
  page.restored = false;
  $('restored').hidden = true;
  view.clear();
  showCost(null);
  updateToolbar();
}

function clearTranscript() {
  if (page.run) return;
  // Clear means gone: the saved copy goes too.
  keeper.discard();
  resetTranscript();
  historyPanel.refresh();
  flash('toolbar-status', 'Cleared.');
}

// ---- export, clipboard, diagnostics ----

function exportMeta() {
  const running = page.run ? onTranscriptClock(page.run, audioMs(page.run)) : 0;
  const lastEnd = page.segments.reduce((m, s) => Math.max(m, s.endMs ?? 0), 0);
  return {
    title: page.title,
    durationMs: Math.max(page.endMs, running, lastEnd),
    provider: controls.provider.value,
    exportedAt: new Date().toISOString(),
  };
}

/** @param {import('./export.js').ExportFormat} format */
function download(format) {
  saveFile(exportAs(format, page.segments, exportMeta()));
}

/** Hand a file to the browser's downloads. @param {{filename: string, mime: string, text: string}} file */
function saveFile({ filename, mime, text }) {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoked later: Firefox starts the download after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 30000);
  flash('toolbar-status', `Saved ${filename}.`);
}

/** @param {string} text @returns {Promise<boolean>} */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No permission or no async clipboard (an insecure origin): the selection route still works in most browsers.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

async function copyTranscript() {
  const text = toTxt(page.segments, { timestamps: true, durationMs: exportMeta().durationMs });
  const ok = await copyText(text);
  flash('toolbar-status', ok ? 'Transcript copied to the clipboard.' : 'Could not copy: select the transcript and press Ctrl+C.');
}

function diagnosticsText() {
  const run = page.run || page.lastRun;
  const d = fromSession(run ? run.session : null);
  if (!d.browser) d.browser = browserName(navigator);
  return formatDiagnostics(d, {
    state: $('state').dataset.state,
    page: location.origin,
    audioMs: run ? audioMs(run) : null,
    latency: run ? run.latency.stats() : undefined,
    lastError: page.lastError,
  });
}

function refreshDiagnostics() {
  const details = /** @type {HTMLDetailsElement} */ ($('diagnostics'));
  if (details.open) $('diagnostics-text').textContent = diagnosticsText();
}

function onDiagnosticsToggle() {
  const details = /** @type {HTMLDetailsElement} */ ($('diagnostics'));
  if (page.diagnosticsTimer) clearInterval(page.diagnosticsTimer);
  page.diagnosticsTimer = null;
  if (details.open) {
    refreshDiagnostics();
    page.diagnosticsTimer = setInterval(refreshDiagnostics, DIAGNOSTICS_REFRESH_MS);
  }
}

async function copyDiagnostics() {
  const text = diagnosticsText();
  $('diagnostics-text').textContent = text;
  const ok = await copyText(text);
  flash('diagnostics-status', ok ? 'Diagnostics copied to the clipboard.' : 'Could not copy: select the text above and press Ctrl+C.');
}

// ---- saved transcripts ----

/** @returns {import('./transcripts/store.js').Cap} */
function savedCap() {
  try {
    const cap = JSON.parse(localStorage.getItem(CAP_KEY) || 'null');
    if (cap && Number.isInteger(cap.maxSessions) && cap.maxSessions >= 1 && Number.isInteger(cap.maxBytes) && cap.maxBytes >= 1) {
      return { maxSessions: cap.maxSessions, maxBytes: cap.maxBytes };
    }
  } catch { /* unreadable: the defaults */ }
  return DEFAULT_CAP;
}

const keeper = new TranscriptKeeper({
  open: async () => {
    let factory;
    let ranges;
    try {
      factory = window.indexedDB;
      ranges = window.IDBKeyRange;
    } catch (err) {
      // Reading `indexedDB` itself throws where the browser forbids storage (Firefox with cookies blocked).
      return { ok: false, error: toStoreError(err) };
    }
    return openTranscriptStore({ indexedDB: factory, keyRange: ranges, cap: savedCap() });
  },
  notify: (notice) => {
    addWarning(notice.message, notice.kind === 'dropped' ? 'info' : 'warning');
    if (notice.kind === 'dropped') historyPanel.refresh();
  },
  locks: navigator.locks ?? null,
});

const historyPanel = new HistoryPanel({
  keeper,
  save: saveFile,
  onDeleted: (pageCopy) => {
    // The page's own transcript was among them: it goes from the page too, as with Clear.
    if (pageCopy && !page.run) resetTranscript();
  },
  isRecording: () => page.run !== null,
  status: (message) => flash('history-status', message),
  cap: savedCap(),
  onCapChange: (cap) => {
    try { localStorage.setItem(CAP_KEY, JSON.stringify(cap)); } catch { /* not remembered, still applied */ }
    keeper.setCap(cap).then(() => historyPanel.refresh());
  },
});

/** Put back the transcript of a page that was reloaded or crashed while recording, marked as interrupted. */
async function restoreInterrupted() {
  const restored = await keeper.recoverInterrupted();
  if (!restored || page.run || page.segments.length) return;
  const { session, finals } = restored;
  page.restored = true;
  page.title = session.title;
  page.endMs = session.durationMs;
  for (const f of finals) {
    /** @type {Segment} */
    const segment = { text: f.text, startMs: f.startMs, endMs: f.endMs, words: f.words, estimated: f.estimated };
    view.addFinal(segment, null);
    page.segments.push(segment);
  }
  const note = $('restored');
  note.textContent = `Restored: this recording from ${describeDate(session.startedAt)} was interrupted (the page was `
    + `reloaded or closed while listening). ${finals.length} final${finals.length === 1 ? '' : 's'} kept. `
    + 'Start begins a new recording; this one stays under Saved transcripts.';
  note.hidden = false;
  updateToolbar();
}

// ---- wiring ----

controls.provider.addEventListener('change', () => { saveSettings(); onProviderChange().catch(() => {}); });
for (const el of [controls.tag, controls.mic, controls.echo, controls.noise, controls.agc]) {
  el.addEventListener('change', saveSettings);
}
controls.start.addEventListener('click', () => { start(); });
controls.stop.addEventListener('click', () => { stop(); });
controls.cancel.addEventListener('click', cancel);
controls.file.addEventListener('change', () => {
  const file = controls.file.files && controls.file.files[0];
  // Cleared at once, so choosing the same file again starts another run.
  controls.file.value = '';
  if (file) start({ file });
});
for (const button of controls.exports) {
  button.addEventListener('click', () => {
    download(/** @type {import('./export.js').ExportFormat} */ (button.dataset.format));
  });
}
controls.copy.addEventListener('click', () => { copyTranscript(); });
controls.clear.addEventListener('click', clearTranscript);
$('diagnostics').addEventListener('toggle', onDiagnosticsToggle);
$('copy-diagnostics').addEventListener('click', () => { copyDiagnostics(); });

document.addEventListener('keydown', (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  // event.code, not event.key: on macOS Alt+S types "ß".
  const action = { KeyS: () => start(), KeyT: () => stop(), KeyC: cancel }[event.code];
  if (action) {
    event.preventDefault();
    action();
  }
});
window.addEventListener('pagehide', () => { if (page.run) page.run.session.endUpstream(true); });
window.addEventListener('beforeunload', (event) => {
  // Leaving mid-recording loses the words still in flight: ask first.
  if (page.run) event.preventDefault();
});
if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', () => { loadMicrophones().catch(() => {}); });
}

showLatency(new LatencyTracker().stats());
loadProviders()
  .then(() => loadMicrophones())
  .catch((err) => showError(`Could not load the app's settings (${messageOf(err)}). Reload the page; if it persists, check that the server is running.`))
  .then(() => restoreInterrupted())
  .catch((err) => addWarning(`Could not restore the saved transcript (${messageOf(err)}).`))
  .then(() => historyPanel.refresh())
  .finally(() => {
    updateToolbar();
    $('app').dataset.ready = 'true';
  });
