// DOM rendering only: the transcript, the state line, the level meter, messages. No network, no audio.

/** @param {string} id @returns {HTMLElement} */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const STATE_TEXT = {
  idle: 'Idle',
  connecting: 'Connecting…',
  configuring: 'Configuring…',
  streaming: 'Listening',
  finishing: 'Finishing…',
  reconnecting: 'Reconnecting…',
  error: 'Error',
};

/** @param {keyof typeof STATE_TEXT} state @param {string} [detail] */
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

/** Finals are stable paragraphs with their start times; the current interim is one provisional line after them. */
export class TranscriptView {
  /** @param {HTMLElement} root @param {HTMLElement} announcer */
  constructor(root, announcer) {
    this.root = root;
    this.announcer = announcer;
    /** @type {HTMLParagraphElement | null} */
    this.interim = null;
  }

  clear() {
    this.root.replaceChildren();
    this.interim = null;
    this.announcer.textContent = '';
  }

  /** @param {string} text */
  setInterim(text) {
    $('placeholder')?.remove();
    if (!text) {
      this.interim?.remove();
      this.interim = null;
      return;
    }
    if (!this.interim) {
      this.interim = document.createElement('p');
      this.interim.className = 'interim';
      this.interim.setAttribute('aria-hidden', 'true');
      this.root.append(this.interim);
    }
    this.interim.textContent = text;
    this.scroll();
  }

  /** @param {{text: string, startMs: number | null}} segment */
  addFinal(segment) {
    $('placeholder')?.remove();
    this.interim?.remove();
    this.interim = null;
    if (!segment.text.trim()) return;
    const p = document.createElement('p');
    p.className = 'final';
    if (segment.startMs !== null && segment.startMs !== undefined) {
      const time = document.createElement('time');
      time.className = 'stamp';
      time.textContent = formatTime(segment.startMs);
      time.dateTime = `PT${(segment.startMs / 1000).toFixed(1)}S`;
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
    this.scroll();
  }

  scroll() {
    const nearBottom = this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 80;
    if (nearBottom) this.root.scrollTop = this.root.scrollHeight;
  }
}

/** @param {string} message */
export function showError(message) {
  const el = $('error');
  el.textContent = message;
  el.hidden = !message;
}

/** @param {string} message */
export function addWarning(message) {
  const list = $('warnings');
  const p = document.createElement('p');
  p.className = 'warning';
  p.textContent = message;
  list.append(p);
  while (list.childElementCount > 3) list.firstElementChild?.remove();
}

/** @param {number} linear peak or RMS in [0, 1] @returns {number} dBFS, floored at -90 */
export function toDbfs(linear) {
  return linear > 0 ? Math.max(-90, 20 * Math.log10(linear)) : -90;
}
