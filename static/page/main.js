// The page: wires the controls to a RunController and renders through the DOM view. Nothing runs on import:
// app.js calls mountPage() once the module graph is loaded.
//
// Where things happen, for what builds on the page: a recording starts and ends, each final arrives, and the
// transcript is cleared, in RunController (listen({onRunStart, onFinal, onRunEnd, onClear})); mountPage() returns
// that controller. Saved transcripts (IndexedDB, the history panel) hook in there: page/saved.js.
import { openAudioContext } from '../audio/capture.js';
import { startFileSource } from '../audio/file-source.js';
import { browserName, formatDiagnostics, fromSession } from '../diagnostics.js';
import { exportAs, toTxt } from '../export.js';
import { LatencyTracker } from '../latency.js';
import { Session } from '../session.js';
import { RunController, messageOf, startFromGesture } from './controller.js';
import { loadProviderList, loadTags } from './providers.js';
import { mountSaved } from './saved.js';
import { mountShare } from './share.js';
import { loadFolded, loadSettings, saveFolded, saveSettings } from './settings.js';
import { createView, flash, getControls, showProviderStatus } from './view.js';

/** @typedef {import('./providers.js').ProviderInfo} ProviderInfo */
/** @typedef {import('../export.js').ExportFormat} ExportFormat */

const DIAGNOSTICS_REFRESH_MS = 1000;

/**
 * Set the page up. Call once, after the DOM is parsed (a module script is deferred, so at its top level).
 * @param {Window & typeof globalThis} [win]
 * @returns {RunController}
 */
export function mountPage(win = window) {
  const doc = win.document;
  const controls = getControls(doc);
  const view = createView(doc, controls);
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  const storage = (() => { try { return win.localStorage; } catch { return null; } })();
  const controller = new RunController({
    view,
    createSession: (options) => new Session(options),
    startFileSource,
  });
  /** @type {Record<string, ProviderInfo>} */
  let providers = {};
  /** @type {ReturnType<typeof setInterval> | null} */
  let diagnosticsTimer = null;

  // The settings fold away on narrow screens (CSS shows the toggle only there); the choice is remembered.
  const settingsPanel = $('settings');
  const settingsToggle = $('settings-toggle');
  /** @param {boolean} folded */
  const fold = (folded) => {
    settingsPanel.dataset.folded = String(folded);
    settingsToggle.setAttribute('aria-expanded', String(!folded));
    const label = settingsToggle.querySelector('.settings-toggle-label');
    if (label) label.textContent = folded ? 'Show' : 'Hide';
  };
  /** What is chosen, on the folded panel's one line, so it need not be opened to be checked. */
  const summarise = () => {
    const engine = controls.provider.selectedOptions[0];
    const mic = controls.mic.selectedOptions[0];
    $('settings-summary').textContent = [engine ? (providers[engine.value]?.label ?? engine.text) : '', mic ? mic.text : '']
      .filter(Boolean).join(' · ');
  };
  fold(loadFolded(storage));
  settingsToggle.addEventListener('click', () => {
    const folded = settingsPanel.dataset.folded !== 'true';
    fold(folded);
    saveFolded(storage, folded);
  });

  const remember = () => saveSettings(storage, {
    provider: controls.provider.value,
    tag: controls.tag.value,
    mic: controls.mic.value,
    echo: controls.echo.checked,
    noise: controls.noise.checked,
    agc: controls.agc.checked,
  });

  async function loadProviders() {
    const list = await loadProviderList(win.fetch.bind(win));
    providers = {};
    controls.provider.replaceChildren();
    for (const p of list.providers) {
      providers[p.name] = p;
      const option = new Option(p.configured ? p.label : `${p.label} — not configured`, p.name);
      option.disabled = !p.configured;
      controls.provider.append(option);
    }
    showProviderStatus($('provider-status'), list.providers);
    const saved = loadSettings(storage);
    const usable = (/** @type {string | undefined} */ name) => Boolean(name && providers[name] && providers[name].configured);
    if (usable(saved.provider)) controls.provider.value = /** @type {string} */ (saved.provider);
    else if (list.default) controls.provider.value = list.default;
    controls.echo.checked = Boolean(saved.echo);
    controls.noise.checked = Boolean(saved.noise);
    controls.agc.checked = Boolean(saved.agc);
    if (!list.providers.some((p) => p.configured)) {
      fold(false);
      view.showError('No speech engine is configured. Set the variables listed under "Speech engine" and restart the app.');
      controls.start.disabled = true;
      controls.file.disabled = true;
    }
    summarise();
    await onProviderChange(saved.tag);
  }

  /** @param {string} [preferredTag] */
  async function onProviderChange(preferredTag) {
    const p = providers[controls.provider.value];
    controls.tagField.hidden = true;
    if (!p) return;
    controls.providerNote.textContent = p.offline
      ? 'Runs on this machine: no account needed, no audio leaves it.'
      : `Audio goes to ${p.label}; the app's server holds the credentials and hands the page a short-lived token.`;
    if (!p.configured) return;
    try {
      const tags = await loadTags(win.fetch.bind(win), p.name);
      if (!tags || controls.provider.value !== p.name) return;
      controls.tag.replaceChildren(...tags.tags.map((t) => new Option(t, t)));
      controls.tag.value = preferredTag && tags.tags.includes(preferredTag) ? preferredTag : tags.defaultTag;
      controls.tagField.hidden = false;
    } catch (err) {
      view.addWarning(`Could not list the ${p.label} models (${messageOf(err)}); the server's default model is used.`);
    }
  }

  async function loadMicrophones() {
    const media = win.navigator.mediaDevices;
    if (!media || !media.enumerateDevices) return;
    const devices = await media.enumerateDevices();
    const current = controls.mic.value || loadSettings(storage).mic || '';
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
    summarise();
    controls.micNote.textContent = labelled || n === 0
      ? (n === 0 ? 'No microphone is listed yet; the system default is used.' : '')
      : 'Names appear once the page may use the microphone (after the first Start).';
  }

  /**
   * Called straight from the click or key press: startFromGesture opens the audio context before any await.
   * @param {File} [file]
   */
  function start(file) {
    if (controller.running || (controls.start.disabled && !file)) return;
    const provider = controls.provider.value;
    const info = providers[provider];
    if (!info || !info.configured) {
      view.showError('Pick a configured speech engine first.');
      return;
    }
    remember();
    const run = startFromGesture(controller, {
      provider,
      providerLabel: info.label || provider,
      tag: controls.tagField.hidden ? undefined : controls.tag.value,
      deviceId: controls.mic.value || undefined,
      echoCancellation: controls.echo.checked,
      noiseSuppression: controls.noise.checked,
      autoGainControl: controls.agc.checked,
      file,
    }, () => openAudioContext());
    if (!file) run.then(() => loadMicrophones()).catch(() => {});
  }

  function stop() {
    if (controls.stop.disabled) return;
    // Stop is disabled while the last words come (up to 30 s): a focus left on it sits on a dead button, or drops
    // to the page. The state line takes it, and a screen reader reads what the page is waiting for.
    if (doc.activeElement === controls.stop) controls.state.focus({ preventScroll: true });
    controls.stop.disabled = true;
    controller.stop();
  }

  /** @param {ExportFormat} format */
  function download(format) {
    saveFile(exportAs(format, controller.segments, controller.exportMeta()));
  }

  /** Hand a file to the browser's downloads. @param {{filename: string, mime: string, text: string}} file */
  function saveFile({ filename, mime, text }) {
    const url = URL.createObjectURL(new Blob([text], { type: mime }));
    const a = doc.createElement('a');
    a.href = url;
    a.download = filename;
    a.hidden = true;
    doc.body.append(a);
    a.click();
    a.remove();
    // Revoked later: Firefox starts the download after click() returns.
    setTimeout(() => URL.revokeObjectURL(url), 30000);
    flash($('toolbar-status'), `Saved ${filename}.`);
  }

  /** @param {string} text @returns {Promise<boolean>} */
  async function copyText(text) {
    try {
      await win.navigator.clipboard.writeText(text);
      return true;
    } catch {
      // No permission or no async clipboard (an insecure origin): the selection route still works in most browsers.
      const area = doc.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'offscreen';
      doc.body.append(area);
      area.select();
      let ok = false;
      try { ok = doc.execCommand('copy'); } catch { ok = false; }
      area.remove();
      return ok;
    }
  }

  async function copyTranscript() {
    const meta = controller.exportMeta();
    const ok = await copyText(toTxt(controller.segments, { timestamps: true, durationMs: meta.durationMs }));
    flash($('toolbar-status'), ok ? 'Transcript copied to the clipboard.' : 'Could not copy: select the transcript and press Ctrl+C.');
  }

  function diagnosticsText() {
    const run = controller.run || controller.lastRun;
    const d = fromSession(run ? run.session : null);
    if (!d.browser) d.browser = browserName(win.navigator);
    return formatDiagnostics(d, {
      state: controls.state.dataset.state,
      page: win.location.origin,
      audioMs: run ? controller.audioMs(run) : null,
      latency: run ? run.latency.stats() : undefined,
      lastError: controller.lastError,
    });
  }

  function refreshDiagnostics() {
    if (controls.diagnostics.open) controls.diagnosticsText.textContent = diagnosticsText();
  }

  controller.listen({ onRunEnd: () => refreshDiagnostics() });
  const saved = mountSaved({ win, controller, view, save: saveFile, storage });
  mountShare({ win, controller });

  controls.provider.addEventListener('change', () => { remember(); summarise(); onProviderChange().catch(() => {}); });
  controls.mic.addEventListener('change', summarise);
  for (const el of [controls.tag, controls.mic, controls.echo, controls.noise, controls.agc]) {
    el.addEventListener('change', remember);
  }
  controls.start.addEventListener('click', () => start());
  controls.stop.addEventListener('click', stop);
  controls.cancel.addEventListener('click', () => controller.cancel());
  controls.file.addEventListener('change', () => {
    const file = controls.file.files && controls.file.files[0];
    // Cleared at once, so choosing the same file again starts another run.
    controls.file.value = '';
    if (file) start(file);
  });
  for (const button of controls.exports) {
    button.addEventListener('click', () => download(/** @type {ExportFormat} */ (button.dataset.format)));
  }
  controls.copy.addEventListener('click', () => { copyTranscript(); });
  controls.clear.addEventListener('click', () => {
    if (controller.clear()) flash($('toolbar-status'), 'Cleared.');
  });
  controls.diagnostics.addEventListener('toggle', () => {
    if (diagnosticsTimer) clearInterval(diagnosticsTimer);
    diagnosticsTimer = null;
    if (controls.diagnostics.open) {
      refreshDiagnostics();
      diagnosticsTimer = setInterval(refreshDiagnostics, DIAGNOSTICS_REFRESH_MS);
    }
  });
  controls.copyDiagnostics.addEventListener('click', async () => {
    const text = diagnosticsText();
    controls.diagnosticsText.textContent = text;
    const ok = await copyText(text);
    flash($('diagnostics-status'), ok ? 'Diagnostics copied to the clipboard.' : 'Could not copy: select the text above and press Ctrl+C.');
  });

  doc.addEventListener('keydown', (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
    // event.code, not event.key: on macOS Alt+S types "ß".
    /** @type {Record<string, () => void>} */
    const actions = { KeyS: () => start(), KeyT: stop, KeyC: () => controller.cancel() };
    const action = actions[event.code];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  win.addEventListener('pagehide', () => { if (controller.run) controller.run.session.endGrant({ beacon: true }); });
  win.addEventListener('beforeunload', (event) => {
    // Leaving mid-recording loses the words still in flight: ask first.
    if (controller.running) event.preventDefault();
  });
  const media = win.navigator.mediaDevices;
  if (media && media.addEventListener) {
    media.addEventListener('devicechange', () => { loadMicrophones().catch(() => {}); });
  }

  /** Start (and a file) come to life once the engines are known and every handler above is attached. */
  function enableStart() {
    if (controller.running || !Object.values(providers).some((p) => p.configured)) return;
    controls.start.disabled = false;
    controls.file.disabled = false;
  }

  view.showLatency(new LatencyTracker().stats());
  loadProviders()
    .then(() => {
      enableStart();
      return loadMicrophones();
    })
    .catch((err) => view.showError(`Could not load the app's settings (${messageOf(err)}). Reload the page; if it persists, check that the server is running.`))
    .then(() => saved.load())
    .finally(() => {
      controller.updateToolbar();
      controls.app.dataset.ready = 'true';
    });
  return controller;
}
