// DOM rendering only: the transcript, the state line, the level meter, the latency readout, messages. No network,
// no audio.

/** @param {string} id @returns {HTMLElement} */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

export const STATE_TEXT = Object.freeze({
  idle: 'Idle',
  connecting: 'Connecting…',
  configuring: 'Configuring…',
  streaming: 'Listening',
  finishing: 'Finishing…',
  reconnecting: 'Reconnecting…',
  error: 'Error',
});

/** @typedef {keyof typeof STATE_TEXT} PageState */

/** @param {PageState} state @param {string} [detail] */
export function showState(state, detail) {
  const el = $('state');
  el.dataset.state = state;
  $('state-text').textContent = detail ? `${STATE_TEXT[state]} — ${detail}` : STATE_TEXT[state];
}

/** @param {number} ms */
export function formatTime(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m % 60)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

/** @param {unknown} v @returns {v is number} */
const isTime = (v) => typeof v === 'number' && Number.isFinite(v);

/** Finals are stable paragraphs with their start times; the current interim is one provisional line after them. */
export class TranscriptView {
  /** @param {HTMLElement} root @param {HTMLElement} announcer */
  constructor(root, announcer) {
    this.root = root;
    this.announcer = announcer;
    /** @type {HTMLParagraphElement | null} */
    this.interim = null;
    this.placeholder = root.querySelector('.placeholder');
  }

  clear() {
    this.root.replaceChildren(...(this.placeholder ? [this.placeholder] : []));
    this.interim = null;
    this.announcer.textContent = '';
  }

  _dropPlaceholder() {
    this.placeholder?.remove();
  }

  /** @param {string} text */
  setInterim(text) {
    if (!text) {
      this.interim?.remove();
      this.interim = null;
      return;
    }
    this._dropPlaceholder();
    if (!this.interim) {
      this.interim = document.createElement('p');
      this.interim.className = 'interim';
      // Provisional: seen, not announced (the live region gets finals only).
      this.interim.setAttribute('aria-hidden', 'true');
      this.interim.title = 'Still being recognised: may change';
      this.root.append(this.interim);
    }
    this.interim.textContent = text;
    this.scroll();
  }

  /** A quiet divider where a new recording (or file) starts in the same transcript. @param {string} label */
  addBreak(label) {
    this._dropPlaceholder();
    const p = document.createElement('p');
    p.className = 'break';
    p.textContent = label;
    this.root.append(p);
  }

  /**
   * @param {{text: string, startMs: number | null, estimated?: boolean}} segment  startMs on the transcript's
   *   clock; `estimated` when the provider gives no times and the client guessed them from arrival (Wiro)
   * @param {number | null} [approxStartMs]  shown with "≈" when the provider gives no times (Wiro)
   */
  addFinal(segment, approxStartMs = null) {
    const wasNearBottom = this.nearBottom();
    this.interim?.remove();
    this.interim = null;
    if (!segment.text.trim()) return;
    this._dropPlaceholder();
    const p = document.createElement('p');
    p.className = 'final';
    const start = isTime(segment.startMs) ? segment.startMs : approxStartMs;
    if (isTime(start)) {
      const time = document.createElement('time');
      time.className = 'stamp';
      const approx = Boolean(segment.estimated) || !isTime(segment.startMs);
      time.textContent = `${approx ? '≈' : ''}${formatTime(start)}`;
      time.dateTime = `PT${(start / 1000).toFixed(1)}S`;
      if (approx) time.title = 'Approximate: this engine gives no times';
      p.append(time, ' ');
    }
    const span = document.createElement('span');
    span.className = 'text';
    span.textContent = segment.text;
    p.append(span);
    this.root.append(p);
    // Only finals are announced: interims would make a screen reader chatter.
    const line = document.createElement('p');
    line.textContent = segment.text;
    this.announcer.append(line);
    while (this.announcer.childElementCount > 5) this.announcer.firstElementChild?.remove();
    if (wasNearBottom) this.root.scrollTop = this.root.scrollHeight;
  }

  nearBottom() {
    return this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 80;
  }

  /** Follow new text only while the reader is at the bottom: scrolling up to re-read is not interrupted. */
  scroll() {
    if (this.nearBottom()) this.root.scrollTop = this.root.scrollHeight;
  }
}

/** @param {string} message */
export function showError(message) {
  const el = $('error');
  el.textContent = message;
  el.hidden = !message;
}

/** @param {string} message @param {'warning'|'info'} [kind] */
export function addWarning(message, kind = 'warning') {
  const list = $('warnings');
  const p = document.createElement('p');
  p.className = kind;
  p.textContent = message;
  list.append(p);
  while (list.childElementCount > 3) list.firstElementChild?.remove();
}

export function clearWarnings() {
  $('warnings').replaceChildren();
}

/** @param {number} linear peak or RMS in [0, 1] @returns {number} dBFS, floored at -90 */
export function toDbfs(linear) {
  return linear > 0 ? Math.max(-90, 20 * Math.log10(linear)) : -90;
}

/** @param {number | null} db  null: no input (idle) */
export function showLevel(db) {
  const meter = /** @type {HTMLMeterElement} */ ($('level'));
  meter.value = db ?? -90;
  $('level-text').textContent = db === null ? '– dBFS' : `${db <= -90 ? '−∞' : db.toFixed(0).replace('-', '−')} dBFS`;
}

/** @param {string} message  empty hides the warning */
export function showLevelWarning(message) {
  const el = $('level-warning');
  el.textContent = message;
  el.hidden = !message;
}

/**
 * One latency line: "p50 420 ms · p95 610 ms · n 3". The numbers are also data attributes for tools and tests.
 * @param {HTMLElement} el
 * @param {{count: number, p50: number|null, p95: number|null, last: number|null}} m
 */
function showMetric(el, m) {
  if (!m.count || m.p50 === null || m.p95 === null) {
    el.textContent = '–';
    delete el.dataset.p50;
    delete el.dataset.p95;
    el.dataset.count = '0';
    return;
  }
  el.textContent = `p50 ${Math.round(m.p50)} ms · p95 ${Math.round(m.p95)} ms · n ${m.count}`;
  el.dataset.p50 = String(Math.round(m.p50));
  el.dataset.p95 = String(Math.round(m.p95));
  el.dataset.count = String(m.count);
}

/** @param {{firstInterim: any, finalLag: any}} stats */
export function showLatency(stats) {
  showMetric($('latency-first'), stats.firstInterim);
  showMetric($('latency-final'), stats.finalLag);
}

/** @param {number | null} usd  null hides it */
export function showCost(usd) {
  const el = $('cost');
  el.hidden = usd === null;
  if (usd !== null) el.textContent = `Cost so far: $${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

/** @type {WeakMap<HTMLElement, ReturnType<typeof setTimeout>>} */
const flashTimers = new WeakMap();

/** A short status next to a button ("Copied."), cleared after a few seconds. @param {string} id @param {string} text */
export function flash(id, text) {
  const el = $(id);
  el.textContent = text;
  const old = flashTimers.get(el);
  if (old) clearTimeout(old);
  flashTimers.set(el, setTimeout(() => { el.textContent = ''; }, 5000));
}

/**
 * The engine list under the picker: which are ready and, for the others, what to set.
 * @param {{name: string, label: string, configured: boolean, missing: string[], detail?: string, offline?: boolean}[]} providers
 */
export function showProviderStatus(providers) {
  const list = $('provider-status');
  list.replaceChildren(...providers.map((p) => {
    const li = document.createElement('li');
    li.dataset.provider = p.name;
    li.dataset.configured = String(p.configured);
    const name = document.createElement('strong');
    name.textContent = p.label;
    const what = p.configured
      ? (p.offline ? 'ready, runs on this machine' : 'ready')
      : `not configured: set ${p.missing.join(', ') || 'its settings'}${p.detail ? ` (${p.detail})` : ''}`;
    li.append(name, ` — ${what}`);
    return li;
  }));
}
