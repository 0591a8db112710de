// Publishes the recording page's captions to a share (POST /api/captions/<id>/events with the publish token).
// Pure apart from the injected fetch and timers, so node tests drive it with fakes.
//
// Finals are numbered here (1, 2, …) and kept until the server has acknowledged them, so a lost answer means a
// retry, and the server drops what it already has: every final reaches the viewers once, in order. Interims are
// coalesced (only the latest is sent, and only while no final has overtaken it). At most one request is in flight,
// it carries at most BATCH_MAX events (the server's size limit), and requests start at least FLUSH_MS apart: at most
// 300 a minute, half the server's 600 per share, however fast the answers come back.
import { RETRY_AFTER_MAX_MS, readRetryAfter } from '../retry-after.js';
import { errorMessage, parsePublishResult, shareExpiry } from './wire.js';

// The least time between the starts of two requests: what comes meanwhile (interims, finals) goes in the next one.
export const FLUSH_MS = 200;
export const BATCH_MAX = 50;
export const RETRY_MIN_MS = 500;
export const RETRY_MAX_MS = 10000;
// A request with no whole answer by then is taken as lost and retried (the server drops finals it already has, by
// their seq). Without it a connection that never answers (half-open after a network change, a proxy holding it)
// kept the one request allowed in flight for ever: nothing more was sent and the page still said all was well. A
// publish answers in milliseconds; 10 s leaves room for a slow mobile link.
export const REQUEST_TIMEOUT_MS = 10000;
// A Retry-After is obeyed up to RETRY_AFTER_MAX_MS (static/retry-after.js): finals are kept meanwhile, so trying
// again each minute loses nothing.
export { RETRY_AFTER_MAX_MS };
// A page being left sends its last request with keepalive, whose bodies a browser caps at 64 KiB for all of the
// page's keepalive requests together (the session's own end call among them): the captions take half.
export const FAREWELL_MAX_BYTES = 32 * 1024;
// The server's limit on an event's text (server/wire.py CAPTION_TEXT_MAX), here in UTF-16 units.
export const TEXT_MAX = 2000;

/**
 * `text` cut to at most TEXT_MAX UTF-16 units, between characters: cut inside an emoji (a surrogate pair), the half
 * left would be no character at all, which the server can only replace.
 * @param {string} text
 */
export function clip(text) {
  if (text.length <= TEXT_MAX) return text;
  const last = text.charCodeAt(TEXT_MAX - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? TEXT_MAX - 1 : TEXT_MAX);
}

/**
 * @typedef {object} PublisherStatus
 * @property {'ok'|'retrying'|'ended'} state  ended: the share was revoked or expired, or the server refused what
 *   was sent (nothing more is sent)
 * @property {number} viewers
 * @property {number | null} expiresAt  Unix ms
 * @property {boolean} live
 * @property {string} [reason]  why it is retrying, or why it ended: 'revoked', 'expired' or 'refused'
 * @property {string} [detail]  the server's own words for a refusal
 */

// Answers that the same request would get again, however often it is sent: a publisher that retried them would
// hold every later final behind the refused batch forever while saying it is only retrying.
const REFUSALS = new Set([400, 401, 403, 413, 422]);

/**
 * @typedef {object} PublisherDeps
 * @property {(input: string, init: RequestInit) => Promise<Response>} fetch
 * @property {string} shareId
 * @property {string} token
 * @property {(status: PublisherStatus) => void} [onStatus]
 * @property {(fn: () => void, ms: number) => unknown} [setTimer]
 * @property {(id: unknown) => void} [clearTimer]
 * @property {() => number} [now]  ms: the clock the status's expiresAt is on, and the one a Retry-After date and the
 *   spacing of requests are read on (default Date.now, as the page reads it)
 */

const TIMED_OUT = Symbol('timed out');

/**
 * How long a Retry-After header asks to wait, in ms (`readRetryAfter`); 0 when absent or unreadable: the
 * publisher's backoff then decides.
 * @param {string | null} value @param {number} nowMs
 * @returns {number}
 */
export function retryAfterMs(value, nowMs) {
  return readRetryAfter(value, nowMs) ?? 0;
}

export class CaptionPublisher {
  /** @param {PublisherDeps} deps */
  constructor(deps) {
    this.deps = deps;
    this.seq = 0;
    /** @type {{seq: number, text: string}[]} finals not yet acknowledged */
    this.pending = [];
    /** @type {{text: string, afterSeq: number} | null} the latest interim, unless a final came after it */
    this.partialText = null;
    /** @type {boolean | null} a recording started (true) or ended (false), not yet sent */
    this.liveChange = null;
    this.inFlight = false;
    /** @type {unknown} */
    this.timer = null;
    this.retryMs = 0;
    /** @type {number | null} when (now()) the last request started */
    this.lastStart = null;
    /** @type {{abort: AbortController, deadline: unknown} | null} the request in flight, for stop() to end */
    this.request = null;
    this.stopped = false;
    /** @type {PublisherStatus} */
    this.status = { state: 'ok', viewers: 0, expiresAt: null, live: false };
  }

  /** @param {string} text */
  final(text) {
    if (this.stopped) return;
    this.seq += 1;
    this.pending.push({ seq: this.seq, text: clip(text) });
    this.partialText = null;
    this.schedule();
  }

  /** @param {string} text */
  partial(text) {
    if (this.stopped) return;
    this.partialText = { text: clip(text), afterSeq: this.seq };
    this.schedule();
  }

  /** @param {boolean} live a recording started or ended */
  live(live) {
    if (this.stopped) return;
    this.liveChange = live;
    this.schedule(0);
  }

  /** No more sending (the user stopped sharing, or the share ended). */
  stop() {
    this.stopped = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    // The request in flight is no longer wanted: without this its connection and its deadline stayed open for up to
    // REQUEST_TIMEOUT_MS. Its rejection goes unreported (report() is silent once stopped).
    if (this.request) {
      this.clearTimer(this.request.deadline);
      this.request.abort.abort();
    }
  }

  /**
   * The body of the last request of a page being left, which the caller sends with keepalive (no answer is read):
   * the finals not yet acknowledged, oldest first, as many as the server takes in a batch and FAREWELL_MAX_BYTES
   * holds, and the recording's end. Without them a tab closed while finals waited for their batch or for a retry
   * lost them, and its viewers were never told (the server numbers only the finals it gets). A request in flight
   * may carry some of them too: the server drops those it has. The finals stay pending, so a page shown again
   * from the back/forward cache sends whatever did not land.
   * @returns {{events: {type: 'final', text: string, seq: number}[], live: false}}
   */
  farewell() {
    /** @type {{type: 'final', text: string, seq: number}[]} */
    const events = [];
    const encoder = new TextEncoder();
    let bytes = 64; // the envelope: {"events":[],"live":false}
    for (const f of this.pending.slice(0, BATCH_MAX)) {
      const event = { type: /** @type {const} */ ('final'), text: f.text, seq: f.seq };
      bytes += encoder.encode(JSON.stringify(event)).length + 1;
      if (bytes > FAREWELL_MAX_BYTES) break;
      events.push(event);
    }
    return { events, live: false };
  }

  /** ms on the injected clock */
  now() {
    return (this.deps.now ?? Date.now)();
  }

  /** The injected timer (default setTimeout). @param {() => void} fn @param {number} ms @returns {unknown} */
  setTimer(fn, ms) {
    return (this.deps.setTimer ?? setTimeout)(fn, ms);
  }

  /** @param {unknown} id  from setTimer() */
  clearTimer(id) {
    if (this.deps.clearTimer) this.deps.clearTimer(id);
    else clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (id));
  }

  /** @param {number} [ms] */
  schedule(ms = FLUSH_MS) {
    if (this.stopped || this.inFlight || this.timer !== null) return;
    // Answers that come back fast would otherwise start a request per interim, past the server's rate limit (then
    // every final waits out its 429).
    const spacing = this.lastStart === null ? 0 : this.lastStart + FLUSH_MS - this.now();
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.flush();
    }, this.retryMs || Math.max(ms, spacing));
  }

  /** What the next request carries. */
  batch() {
    const finals = this.pending.slice(0, BATCH_MAX - 1);
    /** @type {{type: 'final'|'partial', text: string, seq?: number}[]} */
    const events = finals.map((f) => ({ type: 'final', text: f.text, seq: f.seq }));
    const partial = this.partialText;
    const allFinals = finals.length === this.pending.length;
    if (partial && allFinals && partial.afterSeq === this.seq) events.push({ type: 'partial', text: partial.text });
    return { events, partial: allFinals ? partial : null, live: this.liveChange };
  }

  async flush() {
    if (this.stopped || this.inFlight) return;
    const { events, partial, live } = this.batch();
    if (!events.length && live === null) return;
    this.inFlight = true;
    this.lastStart = this.now();
    /** @type {Record<string, unknown>} */
    const body = { events };
    if (live !== null) body.live = live;
    let retryAfter = 0;
    const abort = new AbortController();
    /** @type {Promise<typeof TIMED_OUT>} */
    const timedOut = new Promise((resolve) => {
      // Given up either way, its deadline passed or stop() aborted it: a fetch that ignores its signal is not
      // waited on.
      abort.signal.addEventListener('abort', () => resolve(TIMED_OUT), { once: true });
    });
    const request = { abort, deadline: this.setTimer(() => abort.abort(), REQUEST_TIMEOUT_MS) };
    this.request = request;
    /**
     * `step`, unless the request's time runs out or it is aborted first (then it is abandoned).
     * @template T @param {Promise<T>} step @returns {Promise<T>}
     */
    const inTime = async (step) => {
      const first = await Promise.race([step, timedOut]);
      if (first === TIMED_OUT) throw new Error(`no answer in ${REQUEST_TIMEOUT_MS / 1000} s`);
      return /** @type {T} */ (first);
    };
    /** @type {Partial<PublisherStatus>} */
    let change;
    try {
      const r = await inTime(this.deps.fetch(`/api/captions/${encodeURIComponent(this.deps.shareId)}/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.deps.token}` },
        body: JSON.stringify(body),
        cache: 'no-store',
        signal: abort.signal,
      }));
      if (r.status === 404 || r.status === 410) {
        change = { state: 'ended', reason: r.status === 410 ? 'revoked' : 'expired' };
      } else if (REFUSALS.has(r.status)) {
        // A refusal is final even when its reason is slow to come: only the words are missing then.
        change = { state: 'ended', reason: 'refused', detail: await inTime(refusal(r)).catch(() => `HTTP ${r.status}`) };
      } else {
        if (!r.ok) {
          retryAfter = retryAfterMs(r.headers.get('Retry-After'), this.now());
          throw new Error(`HTTP ${r.status}`);
        }
        // A 2xx that is not the app's answer (a captive portal's page, a proxy's) may not have reached the app: the
        // batch is sent again like a lost answer, and the server drops what it already has.
        const answer = parsePublishResult(await inTime(r.json().catch(() => null)));
        if (!answer) throw new Error(`HTTP ${r.status}, not the app's answer`);
        change = {
          state: 'ok', reason: undefined, viewers: answer.viewers, expiresAt: shareExpiry(answer, this.now()), live: answer.live,
        };
      }
    } catch (err) {
      // Kept (finals are never dropped here): retried with backoff, then resent as one batch with what came since.
      change = { state: 'retrying', reason: err instanceof Error ? err.message : String(err) };
    } finally {
      this.clearTimer(request.deadline);
      this.request = null;
    }
    this.inFlight = false;
    // Stopped meanwhile (the user stopped sharing, perhaps shared again): this answer is no longer this page's news.
    if (this.stopped) return;
    if (change.state === 'ended') {
      this.report(change);
      this.stop();
      return;
    }
    if (change.state === 'ok') {
      const sentUpTo = events.reduce((m, e) => (e.type === 'final' && e.seq ? Math.max(m, e.seq) : m), 0);
      this.pending = this.pending.filter((f) => f.seq > sentUpTo);
      if (partial && this.partialText === partial) this.partialText = null;
      if (live !== null && this.liveChange === live) this.liveChange = null;
      this.retryMs = 0;
    } else {
      this.retryMs = Math.max(retryAfter, Math.min(RETRY_MAX_MS, this.retryMs ? this.retryMs * 2 : RETRY_MIN_MS));
    }
    this.report(change);
    if (this.pending.length || this.partialText || this.liveChange !== null) this.schedule(0);
  }

  /**
   * Tell the page (through onStatus); nothing once stopped, so a stopped publisher's late news cannot reach a
   * newer share's panel.
   * @param {Partial<PublisherStatus>} change
   */
  report(change) {
    if (this.stopped) return;
    this.status = { ...this.status, ...change };
    this.deps.onStatus?.(this.status);
  }
}

/**
 * The server's message for a refused request ({"error": {"message"}}), or its status.
 * @param {Response} r
 */
export async function refusal(r) {
  return errorMessage(await r.json().catch(() => null)) || `HTTP ${r.status}`;
}
