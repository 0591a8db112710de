// "Share captions" on the page: a read-only link to this page's recordings (a room screen, a stream overlay, a
// second device). Off until the user presses it; the share lives for the next recordings until one ends plus the
// server's grace period (30 min by default, never more than a few hours in all), and "Stop sharing" revokes it at
// once. The publish token stays in this page's memory (never in storage, never in a URL): a reload ends publishing
// and the link then lapses by itself.
import { CaptionPublisher, refusal } from '../captions/publisher.js';
import { parseShareGrant, parseShareStatus, shareExpiry } from '../captions/wire.js';
import { byId, flash } from './view.js';

/** @typedef {import('./controller.js').RunController} RunController */
/** @typedef {import('../captions/publisher.js').PublisherStatus} PublisherStatus */
/** @typedef {import('../captions/wire.js').ShareGrant} ShareGrant */

/**
 * @param {number | null} expiresAtMs @param {boolean} live @param {number} nowMs
 * @returns {string}
 */
export function describeExpiry(expiresAtMs, live, nowMs) {
  if (expiresAtMs === null) return '';
  const minutes = Math.max(0, Math.round((expiresAtMs - nowMs) / 60000));
  const span = minutes >= 90 ? `${Math.round(minutes / 60)} h` : `${minutes} min`;
  return live ? `ends at the latest in ${span}` : `ends in ${span} unless a recording starts`;
}

/**
 * @param {{win: Window & typeof globalThis, controller: RunController}} deps
 */
export function mountShare({ win, controller }) {
  const doc = win.document;
  const startButton = /** @type {HTMLButtonElement} */ (byId(doc, 'share-start'));
  const panel = byId(doc, 'share-live');
  const link = /** @type {HTMLInputElement} */ (byId(doc, 'share-link'));
  const open = /** @type {HTMLAnchorElement} */ (byId(doc, 'share-open'));
  const status = byId(doc, 'share-status');
  const copyStatus = byId(doc, 'share-copy-status');
  /** @type {CaptionPublisher | null} */
  let publisher = null;
  /** @type {ShareGrant | null} */
  let grant = null;

  /** @param {PublisherStatus} s */
  const show = (s) => {
    if (s.state === 'ended') {
      const refused = grant;
      status.textContent = s.reason === 'revoked' ? 'Sharing stopped.'
        : s.reason === 'refused' ? `Sharing stopped: the server refused the captions (${s.detail}). The transcript here is whole; share again for a new link.`
          : 'The link has expired; viewers were told.';
      end();
      // Publishing stopped here: the share ends on the server too, so its viewers are told rather than left
      // watching a link that stays live, and silent, until its deadline.
      if (s.reason === 'refused' && refused) revoke(refused).catch(() => {});
      return;
    }
    const viewers = `${s.viewers} ${s.viewers === 1 ? 'viewer' : 'viewers'}`;
    const retry = s.state === 'retrying' ? ' · connection trouble, retrying (no words are lost)' : '';
    status.textContent = [viewers, describeExpiry(s.expiresAt, s.live, Date.now())].filter(Boolean).join(' · ') + retry;
  };

  // The viewer count while nothing is published (a teacher watching the room screen connect before class).
  const STATUS_POLL_MS = 5000;
  /** @type {ReturnType<typeof setInterval> | null} */
  let poll = null;
  const refresh = async () => {
    const g = grant;
    const p = publisher;
    if (!g || !p || controller.running) return;
    try {
      const r = await win.fetch(`/api/captions/${encodeURIComponent(g.share_id)}`, { cache: 'no-store' });
      if (grant !== g) return;
      if (r.status === 404) { p.report({ state: 'ended', reason: 'expired' }); return; }
      const s = parseShareStatus(await r.json());
      if (!s) return; // not the share's status (a proxy's page): the next poll, or the next publish, says more
      if (s.status === 'revoked') { p.report({ state: 'ended', reason: 'revoked' }); return; }
      // Counted from now (expires_in), not read off the server's clock: the browser's may be an hour off it.
      p.report({ viewers: s.viewers, expiresAt: shareExpiry(s, Date.now()), live: s.live });
    } catch { /* the next poll, or the next publish, says more */ }
  };

  // The status line is outside the panel: why a share ended stays on screen (and is read out) when the panel with
  // the link goes, and the link goes with it, so no ended link is left to copy or open.
  const end = () => {
    if (poll !== null) clearInterval(poll);
    poll = null;
    publisher?.stop();
    publisher = null;
    grant = null;
    panel.hidden = true;
    link.value = '';
    open.href = '#';
    startButton.hidden = false;
    startButton.disabled = false;
  };

  async function share() {
    startButton.disabled = true;
    try {
      const r = await win.fetch('/api/captions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}', cache: 'no-store',
      });
      if (!r.ok) throw new Error(await refusal(r));
      const made = parseShareGrant(await r.json().catch(() => null));
      if (!made) throw new Error('the server\'s answer is not a share');
      grant = made;
    } catch (err) {
      startButton.disabled = false;
      status.textContent = `Could not make a link: ${err instanceof Error ? err.message : String(err)}`;
      return;
    }
    // In the task the answer arrived in: its expires_in counts from now, on this browser's clock.
    const expiresAt = shareExpiry(grant, Date.now());
    const url = new URL(grant.viewer_url, win.location.href).href;
    link.value = url;
    open.href = url;
    // Only the current share's publisher speaks for the panel: an answer to a stopped share's last request (a 410,
    // a refusal) arriving after Share was pressed again would otherwise end, and revoke, the new share.
    const current = new CaptionPublisher({
      fetch: win.fetch.bind(win),
      shareId: grant.share_id,
      token: grant.publish_token,
      onStatus: (s) => { if (publisher === current) show(s); },
      // The window's timers, wrapped (a browser's throw called on another `this`): a test's window brings its own.
      setTimer: (fn, ms) => win.setTimeout(fn, ms),
      clearTimer: (id) => win.clearTimeout(/** @type {number} */ (id)),
    });
    publisher = current;
    if (controller.running) publisher.live(true);
    show({ ...publisher.status, expiresAt, live: controller.running });
    startButton.hidden = true;
    panel.hidden = false;
    poll = setInterval(() => { refresh(); }, STATUS_POLL_MS);
    link.focus();
    link.select();
  }

  /** End the share on the server (its viewers are told). @param {ShareGrant} g */
  function revoke(g) {
    return win.fetch(`/api/captions/${encodeURIComponent(g.share_id)}`, {
      method: 'DELETE', headers: { Authorization: `Bearer ${g.publish_token}` }, cache: 'no-store',
    });
  }

  async function stopSharing() {
    const g = grant;
    end();
    if (!g) return;
    status.textContent = 'Sharing stopped.';
    const unheard = 'Sharing stopped here; the server could not be told, so the link lapses by itself.';
    try {
      const r = await revoke(g);
      // Gone (404) or stopped before (410) is stopped; anything else (a 503 while its store is down) is not.
      if (!r.ok && r.status !== 404 && r.status !== 410) status.textContent = unheard;
    } catch {
      status.textContent = unheard;
    }
  }

  controller.listen({
    onRunStart: () => publisher?.live(true),
    onPartial: (text) => publisher?.partial(text),
    onFinal: (segment) => publisher?.final(segment.text),
    onRunEnd: () => publisher?.live(false),
  });
  startButton.addEventListener('click', () => { share(); });
  byId(doc, 'share-stop').addEventListener('click', () => { stopSharing(); });
  byId(doc, 'share-copy').addEventListener('click', async () => {
    let ok = false;
    try { await win.navigator.clipboard.writeText(link.value); ok = true; } catch { link.select(); }
    flash(copyStatus, ok ? 'Link copied.' : 'Select the link and press Ctrl+C.');
  });
  // Leaving mid-recording: send the finals not yet sent and tell the server the recording ended, so the link lapses
  // after the grace period instead of at its deadline (fetch with keepalive can carry the token header; sendBeacon
  // cannot).
  win.addEventListener('pagehide', () => {
    if (!grant || !publisher) return;
    win.fetch(`/api/captions/${encodeURIComponent(grant.share_id)}/events`, {
      method: 'POST', keepalive: true,
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${grant.publish_token}` },
      body: JSON.stringify(publisher.farewell()),
    }).catch(() => {});
  });
  return { share, stopSharing, get publisher() { return publisher; } };
}
