// The page: wires the controls to a Session and renders what it reports.
import { Session } from './session.js';
import { $, TranscriptView, addWarning, showError, showState, toDbfs } from './ui.js';

const view = new TranscriptView($('transcript'), $('announcer'));
/** @type {Session | null} */
let session = null;
/** @type {Record<string, any>} */
let providers = {};
let silentSince = 0;

const controls = {
  provider: /** @type {HTMLSelectElement} */ ($('provider')),
  tag: /** @type {HTMLSelectElement} */ ($('tag')),
  mic: /** @type {HTMLSelectElement} */ ($('mic')),
  start: /** @type {HTMLButtonElement} */ ($('start')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  cancel: /** @type {HTMLButtonElement} */ ($('cancel')),
};

/** @param {boolean} running */
function setRunning(running) {
  controls.start.disabled = running;
  controls.stop.disabled = !running;
  controls.cancel.disabled = !running;
  controls.provider.disabled = running;
  controls.tag.disabled = running;
  controls.mic.disabled = running;
}

async function loadProviders() {
  const response = await fetch('/api/providers');
  const data = await response.json();
  providers = {};
  controls.provider.replaceChildren();
  for (const p of data.providers) {
    providers[p.name] = p;
    const option = document.createElement('option');
    option.value = p.name;
    option.textContent = p.configured ? p.label : `${p.label} — not configured`;
    option.disabled = !p.configured;
    controls.provider.append(option);
  }
  if (data.default) controls.provider.value = data.default;
  await onProviderChange();
}

async function onProviderChange() {
  const p = providers[controls.provider.value];
  const note = $('provider-note');
  if (!p) return;
  const unconfigured = Object.values(providers).filter((x) => !x.configured)
    .map((x) => `${x.label}: set ${x.missing.join(', ')}`);
  note.textContent = (p.offline ? 'Runs on this machine: no account, nothing leaves it. ' : '')
    + (unconfigured.length ? `Not configured — ${unconfigured.join('; ')}.` : '');
  const tagField = $('tag-field');
  tagField.hidden = true;
  if (p.name === 'truebar' && p.configured) {
    try {
      const r = await fetch('/api/providers/truebar/options');
      const options = await r.json();
      if (!r.ok) throw new Error(options.error ? options.error.message : 'no tags');
      controls.tag.replaceChildren(...options.tags.map((/** @type {string} */ t) => new Option(t, t)));
      controls.tag.value = options.default_tag;
      tagField.hidden = false;
    } catch (err) {
      addWarning(`Could not list Truebar models: ${err instanceof Error ? err.message : err}`);
    }
  }
}

async function loadMicrophones() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const current = controls.mic.value;
  controls.mic.replaceChildren(new Option('System default', ''));
  let n = 0;
  for (const d of devices) {
    if (d.kind !== 'audioinput' || !d.deviceId || d.deviceId === 'default') continue;
    n += 1;
    // Labels are empty until the page has had microphone permission once.
    controls.mic.append(new Option(d.label || `Microphone ${n}`, d.deviceId));
  }
  controls.mic.value = [...controls.mic.options].some((o) => o.value === current) ? current : '';
}

/** @param {import('./providers/client.js').ProviderEvent} event */
function onEvent(event) {
  switch (event.type) {
    case 'state':
      if (event.state === 'configuring' || event.state === 'streaming' || event.state === 'finishing') showState(event.state);
      break;
    case 'partial':
      view.setInterim(event.text);
      break;
    case 'final':
      view.addFinal(event);
      break;
    case 'warning':
      addWarning(event.message);
      break;
    case 'error':
      showError(event.message);
      if (event.fatal) {
        showState('error');
        if (session) session.cancel();
        session = null;
        setRunning(false);
      }
      break;
    case 'cost': {
      const cost = $('cost');
      cost.hidden = false;
      cost.textContent = `Cost so far: $${(event.cumulativeCost ?? 0).toFixed(4)}`;
      break;
    }
    default:
      break;
  }
}

/** @param {{rms: number, peak: number, silent: boolean}} level */
function onLevel(level) {
  const db = toDbfs(level.rms);
  /** @type {HTMLMeterElement} */ ($('level')).value = db;
  $('level-text').textContent = `${db.toFixed(0)} dBFS`;
  const warning = $('level-warning');
  const now = performance.now();
  if (level.silent) {
    silentSince = silentSince || now;
  } else {
    silentSince = 0;
  }
  if (level.peak >= 0.999) {
    warning.textContent = 'The input is clipping: move back from the microphone or lower its gain.';
    warning.hidden = false;
  } else if (silentSince && now - silentSince > 3000) {
    warning.textContent = 'No input: the microphone delivers digital silence. Is it muted or the wrong device?';
    warning.hidden = false;
  } else {
    warning.hidden = true;
  }
}

async function start() {
  if (session) return;
  showError('');
  setRunning(true);
  showState('connecting');
  view.setInterim('');
  const s = new Session({
    provider: controls.provider.value,
    tag: $('tag-field').hidden ? undefined : controls.tag.value,
    deviceId: controls.mic.value || undefined,
    echoCancellation: /** @type {HTMLInputElement} */ ($('opt-echo')).checked,
    noiseSuppression: /** @type {HTMLInputElement} */ ($('opt-noise')).checked,
    autoGainControl: /** @type {HTMLInputElement} */ ($('opt-agc')).checked,
    onEvent,
    onLevel,
    onInterrupted: (reason) => addWarning(reason),
  });
  session = s;
  try {
    await s.start();
    if (session === s) showState('streaming');
    loadMicrophones().catch(() => {});
  } catch (err) {
    if (session === s) session = null;
    setRunning(false);
    showState('error');
    showError(err instanceof Error ? err.message : String(err));
  }
}

async function stop() {
  const s = session;
  if (!s) return;
  controls.stop.disabled = true;
  showState('finishing');
  try {
    await s.stop();
    showState('idle');
  } catch (err) {
    showState('error');
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    if (session === s) session = null;
    setRunning(false);
  }
}

function cancel() {
  const s = session;
  if (!s) return;
  s.cancel();
  session = null;
  view.setInterim('');
  setRunning(false);
  showState('idle');
}

controls.provider.addEventListener('change', () => { onProviderChange().catch(() => {}); });
controls.start.addEventListener('click', () => { start(); });
controls.stop.addEventListener('click', () => { stop(); });
controls.cancel.addEventListener('click', cancel);
document.addEventListener('keydown', (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey) return;
  const key = event.key.toLowerCase();
  const action = { s: start, t: stop, c: cancel }[key];
  if (action) {
    event.preventDefault();
    action();
  }
});
window.addEventListener('pagehide', () => { if (session) session.endUpstream(true); });
if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', () => { loadMicrophones().catch(() => {}); });
}

loadProviders()
  .then(() => loadMicrophones())
  .catch((err) => showError(`Could not load the app's settings: ${err instanceof Error ? err.message : err}`))
  .finally(() => { $('app').dataset.ready = 'true'; });
