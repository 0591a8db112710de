// The page's DOM: the controls, and the PageView the run controller renders through (the transcript, the state
// line, the level meter, the latency readout, messages). Nothing here touches the DOM until it is called.
import { formatTime } from './format.js';
import { ROUGH_EXPLANATION } from './rough.js';

/** @typedef {import('./controller.js').PageView} PageView */
/** @typedef {import('./controller.js').PageState} PageState */
/** @typedef {import('./controller.js').Segment} Segment */
/** @typedef {import('../latency.js').Metric} Metric */

export const STATE_TEXT = Object.freeze({
  idle: 'Idle',
  starting: 'Starting…',
  connecting: 'Connecting…',
  streaming: 'Listening',
  finishing: 'Finishing…',
  reconnecting: 'Reconnecting…',
  error: 'Error',
});

/**
 * An element the page template must have.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {Document} doc
 * @param {string} id
 * @returns {T}
 */
export function byId(doc, id) {
  const el = doc.getElementById(id);
  if (!el) throw new Error(`The page has no #${id}.`);
  return /** @type {T} */ (el);
}

/** @param {Document} doc */
export function getControls(doc) {
  return {
    provider: /** @type {HTMLSelectElement} */ (byId(doc, 'provider')),
    tag: /** @type {HTMLSelectElement} */ (byId(doc, 'tag')),
    tagField: byId(doc, 'tag-field'),
    providerNote: byId(doc, 'provider-note'),
    mic: /** @type {HTMLSelectElement} */ (byId(doc, 'mic')),
    micNote: byId(doc, 'mic-note'),
    echo: /** @type {HTMLInputElement} */ (byId(doc, 'opt-echo')),
    noise: /** @type {HTMLInputElement} */ (byId(doc, 'opt-noise')),
    agc: /** @type {HTMLInputElement} */ (byId(doc, 'opt-agc')),
    start: /** @type {HTMLButtonElement} */ (byId(doc, 'start')),
    stop: /** @type {HTMLButtonElement} */ (byId(doc, 'stop')),
    cancel: /** @type {HTMLButtonElement} */ (byId(doc, 'cancel')),
    file: /** @type {HTMLInputElement} */ (byId(doc, 'file')),
    copy: /** @type {HTMLButtonElement} */ (byId(doc, 'copy-transcript')),
    clear: /** @type {HTMLButtonElement} */ (byId(doc, 'clear')),
    exports: /** @type {HTMLButtonElement[]} */ ([...doc.querySelectorAll('button[data-format]')]),
    diagnostics: /** @type {HTMLDetailsElement} */ (byId(doc, 'diagnostics')),
    diagnosticsText: byId(doc, 'diagnostics-text'),
    copyDiagnostics: /** @type {HTMLButtonElement} */ (byId(doc, 'copy-diagnostics')),
    app: byId(doc, 'app'),
    state: byId(doc, 'state'),
  };
}

/** @typedef {ReturnType<typeof getControls>} Controls */

/** @param {unknown} v @returns {v is number} */
const isTime = (v) => typeof v === 'number' && Number.isFinite(v);

/** Finals are stable paragraphs with their start times; the current interim is one provisional line after them. */
export class TranscriptView {
  /** @param {HTMLElement} root @param {HTMLElement} announcer */
  constructor(root, announcer) {
    this.root = root;
    this.announcer = announcer;
    this.doc = root.ownerDocument;
    /** @type {HTMLParagraphElement | null} */
    this.interim = null;
    this.placeholder = root.querySelector('.placeholder');
    // One explanation for every rough mark, opened from any of them (a banner per final would be noise).
    this.roughNote = this.doc.getElementById('rough-note');
    if (this.roughNote) this.roughNote.textContent = ROUGH_EXPLANATION;
    root.addEventListener('click', (event) => {
      const mark = event.target instanceof Element ? event.target.closest('.rough-mark') : null;
      if (mark) this.toggleRoughNote();
    });
  }

  /** Show or hide the explanation of the rough marks; every mark says whether it is open. @param {boolean} [open] */
  toggleRoughNote(open) {
    const note = this.roughNote;
    if (!note) return;
    note.hidden = open === undefined ? !note.hidden : !open;
    for (const mark of this.root.querySelectorAll('.rough-mark')) mark.setAttribute('aria-expanded', String(!note.hidden));
  }

  clear() {
    this.root.replaceChildren(...(this.placeholder ? [this.placeholder] : []));
    this.toggleRoughNote(false);
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
      this.interim = this.doc.createElement('p');
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
    const p = this.doc.createElement('p');
    p.className = 'break';
    p.textContent = label;
    this.root.append(p);
  }

  /**
   * @param {{text: string, startMs: number | null, estimated?: boolean, rough?: boolean}} segment  startMs on the
   *   transcript's clock; `estimated` when the provider gives no times and the client guessed them from arrival
   *   (Wiro); `rough` when the engine gave it without its better pass (a quiet mark that explains itself)
   * @param {number | null} [approxStartMs]  shown with "≈" when the provider gives no times (Wiro)
   */
  addFinal(segment, approxStartMs = null) {
    const wasNearBottom = this.nearBottom();
    this.interim?.remove();
    this.interim = null;
    if (!segment.text.trim()) return;
    this._dropPlaceholder();
    const p = this.doc.createElement('p');
    p.className = 'final';
    const start = isTime(segment.startMs) ? segment.startMs : approxStartMs;
    if (isTime(start)) {
      const time = this.doc.createElement('time');
      time.className = 'stamp';
      const approx = Boolean(segment.estimated) || !isTime(segment.startMs);
      time.textContent = `${approx ? '≈' : ''}${formatTime(start)}`;
      time.dateTime = `PT${(start / 1000).toFixed(1)}S`;
      if (approx) time.title = 'Approximate: this engine gives no times';
      p.append(time, ' ');
    }
    const span = this.doc.createElement('span');
    span.className = 'text';
    span.textContent = segment.text;
    p.append(span);
    if (segment.rough) {
      p.classList.add('rough');
      const mark = this.doc.createElement('button');
      mark.type = 'button';
      mark.className = 'rough-mark';
      mark.textContent = 'rough';
      // Read as "rough, button": what it opens says why.
      mark.setAttribute('aria-controls', 'rough-note');
      mark.setAttribute('aria-expanded', String(Boolean(this.roughNote && !this.roughNote.hidden)));
      mark.title = 'These words may be less accurate: why?';
      p.append(' ', mark);
    }
    this.root.append(p);
    // Only finals are announced: interims would make a screen reader chatter.
    const line = this.doc.createElement('p');
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


/**
 * One latency line: "p50 420 ms · p95 610 ms · n 3". The numbers are also data attributes for tools and tests.
 * @param {HTMLElement} el
 * @param {Metric} m
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

/** @type {WeakMap<HTMLElement, ReturnType<typeof setTimeout>>} */
const flashTimers = new WeakMap();

/**
 * A short status next to a button ("Copied."), cleared after a few seconds.
 * @param {HTMLElement} el
 * @param {string} text
 */
export function flash(el, text) {
  el.textContent = text;
  const old = flashTimers.get(el);
  if (old) clearTimeout(old);
  flashTimers.set(el, setTimeout(() => { el.textContent = ''; }, 5000));
}

/**
 * The engine list under the picker: which are ready and, for the others, what to set.
 * @param {HTMLElement} list
 * @param {{name: string, label: string, configured: boolean, missing: string[], detail?: string, offline?: boolean}[]} providers
 */
export function showProviderStatus(list, providers) {
  const doc = list.ownerDocument;
  list.replaceChildren(...providers.map((p) => {
    const li = doc.createElement('li');
    li.dataset.provider = p.name;
    li.dataset.configured = String(p.configured);
    const name = doc.createElement('strong');
    name.textContent = p.label;
    li.append(name, ` — ${providerLine(p)}`);
    return li;
  }));
}

/**
 * What the engine list says of one engine, each thing once: the server's detail for an unconfigured engine usually
 * restates the variables to set ("Set TRUEBAR_USERNAME and TRUEBAR_PASSWORD on the server."), so it is added only
 * when it names none of them.
 * @param {{configured: boolean, missing: string[], detail?: string, offline?: boolean}} p
 * @returns {string}
 */
export function providerLine(p) {
  if (p.configured) return p.offline ? 'ready, runs on this machine' : 'ready';
  const names = p.missing.length > 1 ? `${p.missing.slice(0, -1).join(', ')} and ${p.missing.at(-1)}` : p.missing[0];
  const what = names ? `not configured: set ${names} on the server` : 'not configured';
  const detail = (p.detail ?? '').trim().replace(/\.$/, '');
  const restates = p.missing.some((m) => detail.includes(m));
  return detail && !restates ? `${what} (${detail})` : what;
}

/**
 * The PageView over the page's DOM.
 * @param {Document} doc
 * @param {Controls} controls
 * @returns {PageView & {transcript: TranscriptView}}
 */
export function createView(doc, controls) {
  const $ = (/** @type {string} */ id) => byId(doc, id);
  const transcript = new TranscriptView($('transcript'), $('announcer'));
  const idlePlaceholder = transcript.placeholder?.textContent ?? '';
  const setRunning = (/** @type {boolean} */ running) => {
    // "Press Start" under a running recording reads as if nothing had started.
    if (transcript.placeholder) {
      transcript.placeholder.textContent = running ? 'Listening: the words appear here as they are recognised.' : idlePlaceholder;
    }
    const settings = [controls.provider, controls.tag, controls.mic, controls.echo, controls.noise, controls.agc, controls.file];
    // A control disabled under the keyboard's focus drops it (to the page's start, in most browsers): a keyboard or
    // screen reader user who pressed Start would be left on a dead button with no cue that Stop is the live one.
    const focused = doc.activeElement;
    // At the end, only a focus this page put on what it disables (Stop moves it to the state line): a run that ends
    // by itself (an error, a file's end) must not pull a reader's screen reader to Start.
    const losing = running ? [controls.start, ...settings] : [controls.stop, controls.cancel, controls.state];
    const lost = losing.some((el) => el === focused) || (running && (focused === null || focused === doc.body));
    controls.start.disabled = running;
    controls.stop.disabled = !running;
    controls.cancel.disabled = !running;
    for (const el of settings) el.disabled = running;
    // Without scrolling: a reader scrolled down the transcript stays where they read.
    if (lost) (running ? controls.stop : controls.start).focus({ preventScroll: true });
  };
  /** @type {string | null} the state and detail last read out, their numbers left out */
  let announced = null;
  return {
    transcript,
    showState(state, detail) {
      controls.state.dataset.state = state;
      const text = detail ? `${STATE_TEXT[state]} — ${detail}` : STATE_TEXT[state];
      $('state-text').textContent = text;
      // Read out when the state or what it says changes, not when only its numbers do: a waiting state's line is
      // drawn again every second with its count, and a live region over it read the whole line out again each
      // time, for up to half a minute.
      const said = `${state}: ${(detail ?? '').replace(/[\d.]+/g, '#')}`;
      if (said !== announced) {
        announced = said;
        $('state-announce').textContent = text;
      }
    },
    setRunning,
    updateToolbar(hasText, running) {
      for (const b of controls.exports) b.disabled = !hasText;
      controls.copy.disabled = !hasText;
      controls.clear.disabled = !hasText || running;
    },
    setInterim: (text) => transcript.setInterim(text),
    addFinal: (segment, approx) => transcript.addFinal(segment, approx),
    addBreak: (label) => transcript.addBreak(label),
    clearTranscript: () => transcript.clear(),
    showError(message) {
      const el = $('error');
      el.textContent = message;
      el.hidden = !message;
    },
    addWarning(message, kind = 'warning', key) {
      const list = $('warnings');
      const same = key ? [...list.children].find((el) => /** @type {HTMLElement} */ (el).dataset.key === key) : undefined;
      if (same) {
        same.className = kind;
        same.textContent = message;
        return;
      }
      const p = doc.createElement('p');
      p.className = kind;
      if (key) p.dataset.key = key;
      p.textContent = message;
      list.append(p);
      while (list.childElementCount > 3) list.firstElementChild?.remove();
    },
    clearWarnings() {
      $('warnings').replaceChildren();
    },
    showLevel(db) {
      const meter = /** @type {HTMLMeterElement} */ ($('level'));
      meter.value = db ?? -90;
      $('level-text').textContent = db === null ? '– dBFS' : `${db <= -90 ? '−∞' : db.toFixed(0).replace('-', '−')} dBFS`;
    },
    showLevelWarning(message) {
      const el = $('level-warning');
      el.textContent = message;
      el.hidden = !message;
    },
    showLatency(stats) {
      showMetric($('latency-first'), stats.firstInterim);
      showMetric($('latency-final'), stats.finalLag);
    },
    showWaiting(message) {
      const el = $('waiting');
      el.textContent = message;
      el.hidden = !message;
    },
    showCost(usd) {
      const el = $('cost');
      el.hidden = usd === null;
      if (usd !== null) el.textContent = `Cost so far: $${usd.toFixed(usd < 1 ? 4 : 2)}`;
    },
  };
}
