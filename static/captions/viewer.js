// The captions viewer (/captions/<id>): a room screen, an OBS browser source, a phone. Finals are appended to a
// polite live region (each read once); the line being recognised is shown after them but hidden from screen
// readers, which would otherwise read every guess. EventSource resumes with Last-Event-ID by itself after a drop;
// finals missed for good (the server no longer kept them) are marked with a line that says so.
import { CaptionLines, endNotice, parseOverlay } from './overlay.js';
import { parseCaptionEvent, parseShareStatus } from './wire.js';

/** @typedef {import('./wire.js').CaptionEvent} CaptionEvent */
/** @typedef {import('./wire.js').CaptionEventType} CaptionEventType */

const FULL_RETRY_MS = 15000;

/** @param {Document} doc @param {Window & typeof globalThis} win */
export function mountViewer(doc, win) {
  const body = doc.body;
  const shareId = body.dataset.share || '';
  const options = parseOverlay(win.location.search);
  const lines = /** @type {HTMLElement} */ (doc.getElementById('lines'));
  const interim = /** @type {HTMLElement} */ (doc.getElementById('interim'));
  const notice = /** @type {HTMLElement} */ (doc.getElementById('notice'));
  interim.setAttribute('dir', 'auto');
  body.dataset.bg = options.bg;
  body.dataset.theme = options.theme;
  body.dataset.align = options.align;
  body.dataset.lines = String(options.lines);
  // CSSOM, not a style attribute: the CSP allows no inline styles.
  body.style.setProperty('--caption-size', `${options.size}px`);
  const state = new CaptionLines(options.lines);
  /** @type {EventSource | null} */
  let source = null;
  let ended = false;
  // Whether the server has given this viewer its place in the finals (the first state event; 0 before any final): a
  // stream that opened and dropped before it gave none, and the viewer is still new.
  let placed = false;

  /** @param {string} text */
  const say = (text) => {
    notice.textContent = text;
    notice.hidden = !text;
  };

  // Keep the latest words in view, unless the reader scrolled back to read something (then leave them there until
  // they scroll to the end again). Our own scrolling lands at the end, so it keeps the view pinned.
  let pinned = true;
  lines.addEventListener('scroll', () => {
    pinned = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
  });
  const follow = () => {
    if (pinned || options.lines > 0) lines.scrollTop = lines.scrollHeight;
  };

  /** @param {{added: import('./overlay.js').CaptionLine[], dropped: number}} change */
  const showLines = ({ added, dropped }) => {
    if (!added.length) return;
    for (const line of added) {
      const p = doc.createElement('p');
      p.className = line.gap ? 'line gap' : 'line';
      // Each line takes its direction from its own words: an Arabic or Hebrew sentence among English ones is
      // aligned and ordered right to left, whatever the page's.
      p.setAttribute('dir', 'auto');
      p.textContent = line.text;
      lines.append(p);
    }
    // After appending: with lines=N the lines dropped may include some just added (a gap note and its final).
    for (let i = 0; i < dropped && lines.firstElementChild; i += 1) lines.firstElementChild.remove();
    follow();
  };

  /** @param {number} seq @param {string} text */
  const onFinal = (seq, text) => {
    const change = state.addFinal(seq, text);
    interim.textContent = '';
    showLines(change);
  };

  /** @param {'revoked'|'expired'|'gone'|'full'} reason */
  const finish = (reason) => {
    if (source) source.close();
    source = null;
    interim.textContent = '';
    if (reason === 'full') {
      say(endNotice('full'));
      win.setTimeout(connect, FULL_RETRY_MS);
      return;
    }
    ended = true;
    body.dataset.status = reason === 'revoked' ? 'revoked' : 'gone';
    say(endNotice(reason));
  };

  // Events that are not their type's shape (not JSON, a field missing or of another type): ignored, so a bad one
  // changes nothing on screen and throws nothing in a listener; counted, and logged the first time.
  let malformed = 0;
  /**
   * @template {CaptionEventType} T
   * @param {T} type @param {Event} event
   * @returns {Extract<CaptionEvent, {type: T}> | null}
   */
  const read = (type, event) => {
    const parsed = parseCaptionEvent(type, /** @type {MessageEvent<unknown>} */ (event).data);
    if (parsed) return parsed;
    malformed += 1;
    if (malformed === 1) console.warn(`captions: a malformed '${type}' event was ignored (further ones are counted, not logged)`);
    return null;
  };

  /** The stream refused us (its status is not readable from EventSource): ask the share's status why. */
  const explain = async () => {
    try {
      const r = await win.fetch(`/api/captions/${encodeURIComponent(shareId)}`, { cache: 'no-store' });
      if (r.status === 404) return finish('gone');
      // An answer that is not a share's status (a proxy's page) says nothing about the share: an outage.
      const status = r.ok ? parseShareStatus(await r.json()) : null;
      if (status?.status === 'revoked') return finish('revoked');
      // Only a share with every place taken is "full": a refusal for anything else (the server's shared state
      // unavailable, a proxy's 502) is an outage, tried again alike.
      if (status?.status === 'active' && status.viewers >= status.max_viewers) return finish('full');
    } catch { /* no answer: an outage too */ }
    say(endNotice('offline'));
    win.setTimeout(connect, FULL_RETRY_MS);
  };

  function connect() {
    if (ended || source) return;
    // A new stream (after a refusal, EventSource gives up and sends no Last-Event-ID again) says where this viewer
    // was, so it is not sent the whole kept log again (and a gap is named if the log no longer reaches back), also
    // when it came before the first final.
    const after = placed ? `?after=${state.lastSeq}` : '';
    const es = new win.EventSource(`/api/captions/${encodeURIComponent(shareId)}/stream${after}`);
    source = es;
    es.addEventListener('open', () => {
      if (!notice.textContent || notice.textContent === endNotice('offline')) say(state.finals.length ? '' : endNotice('waiting'));
      body.dataset.connected = 'true';
    });
    es.addEventListener('final', (event) => {
      const data = read('final', event);
      if (!data) return;
      // A backlog read while the speaker is paused leaves the "paused" notice up.
      if (notice.textContent && body.dataset.live !== 'false') say('');
      onFinal(data.seq, data.text);
    });
    es.addEventListener('partial', (event) => {
      const data = read('partial', event);
      // Between recordings no line is being said: an interim then is a cancelled recording's (an older server
      // keeps it), and shown it would replace the "Paused" notice with words the speaker discarded.
      if (!data || body.dataset.live === 'false') return;
      if (notice.textContent) say('');
      state.setInterim(data.text);
      interim.textContent = state.interim;
      follow();
    });
    es.addEventListener('gap', (event) => {
      const data = read('gap', event);
      if (!data) return;
      showLines(state.addGap(data.from, data.to));
    });
    es.addEventListener('state', (event) => {
      const data = read('state', event);
      if (!data) return;
      placed = true;
      body.dataset.live = String(data.live);
      if (!data.live) {
        interim.textContent = '';
        say(endNotice('paused'));
      } else {
        say(state.finals.length ? '' : endNotice('waiting'));
      }
    });
    es.addEventListener('end', (event) => {
      const data = read('end', event);
      if (!data) return;
      finish(data.reason);
    });
    es.addEventListener('error', () => {
      body.dataset.connected = 'false';
      if (es.readyState === EventSource.CLOSED) {
        source = null;
        explain();
      } else {
        say(endNotice('offline'));
      }
    });
  }

  if (shareId && body.dataset.status === 'active') connect();
  return { state, get malformed() { return malformed; } };
}
