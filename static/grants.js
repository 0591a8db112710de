// Where a session's grants come from. The session asks a `getGrant` function for every grant (the first and each
// reconnect's) and tells an `endGrant` function when one is finished with, so a page with its own backend and its
// own auth supplies both; appGrants() is the pair that talks to this app's server.

import { readRetryAfter } from './retry-after.js';

/** @typedef {import('./providers/client.js').Grant} Grant */

/**
 * What the session asks for. `reconnect`: a grant to replace a lost connection (same provider and model).
 * @typedef {{provider: string, tag?: string, reconnect: boolean}} GrantRequest
 */
/**
 * Resolves with a grant (see Grant: `ws_url`, `token`, `sample_rate`, `frame_samples`, `protocol`, …). `signal`
 * aborts when the session gives up on the request (its timeout, cancel()). A rejection with a numeric `status`
 * outside 0, 429, 502, 503, 504 (an HTTP refusal, say 401) ends the session; any other rejection is retried on a
 * reconnect.
 * @typedef {(request: GrantRequest, init: {signal: AbortSignal}) => Promise<Grant>} GetGrant
 */
/**
 * The grant is finished with (the session ended, or a reconnect replaced it): release what it holds upstream.
 * `beacon`: the page is going away (pagehide), so only navigator.sendBeacon-like calls get out.
 * @typedef {(grant: Grant, init: {beacon: boolean}) => void | Promise<unknown>} EndGrant
 */

export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {string} code */
  constructor(message, status, code) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Statuses for which another attempt with a fresh grant can help (not: not configured, bad request, forbidden). */
export const RETRYABLE_STATUS = Object.freeze(new Set([0, 429, 502, 503, 504]));

/** @param {unknown} err @returns {boolean} false: a refusal another attempt would meet again */
export function isRetryable(err) {
  const status = err && typeof err === 'object' && 'status' in err ? err.status : undefined;
  return typeof status !== 'number' || RETRYABLE_STATUS.has(status);
}

/**
 * POST JSON to the app server; the parsed answer, or an ApiError with the server's message.
 * @param {string} url
 * @param {object} [body]
 * @param {{timeoutMs?: number, signal?: AbortSignal}} [options]  timeoutMs: give up (status 0, retryable) after
 *   this long; 0: wait as long as fetch does
 * @returns {Promise<unknown>}
 */
export function postJson(url, body, { timeoutMs = 0, signal } = {}) {
  if (!(timeoutMs > 0)) return postJsonOnce(url, body, signal ?? null);
  // A fetch on a network that went away without saying so can hang for minutes: a reconnect (and a Stop waiting
  // for it) must not.
  const abort = typeof AbortController === 'function' ? new AbortController() : null;
  if (abort && signal) signal.addEventListener('abort', () => abort.abort(), { once: true });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {Promise<never>} */
  const timedOut = new Promise((_, reject) => {
    timer = setTimeout(() => {
      if (abort) abort.abort();
      reject(new ApiError(`The app server did not answer within ${Math.round(timeoutMs / 100) / 10} s.`, 0, 'timeout'));
    }, timeoutMs);
  });
  return Promise.race([postJsonOnce(url, body, abort ? abort.signal : null), timedOut]).finally(() => clearTimeout(timer));
}

/**
 * @param {string} url
 * @param {object | undefined} body
 * @param {AbortSignal | null} signal
 * @returns {Promise<unknown>}
 */
async function postJsonOnce(url, body, signal) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      credentials: 'same-origin',
      ...(signal ? { signal } : {}),
    });
  } catch {
    throw new ApiError('The app server cannot be reached. Is it still running?', 0, 'network');
  }
  /** @type {unknown} */
  let data = null;
  try { data = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const error = typeof data === 'object' && data !== null && 'error' in data ? data.error : null;
    const field = (/** @type {string} */ name) => {
      const v = typeof error === 'object' && error !== null && name in error ? /** @type {Record<string, unknown>} */ (error)[name] : null;
      return typeof v === 'string' && v ? v : null;
    };
    throw new ApiError(field('message') ?? `The server answered ${response.status}.`, response.status, field('code') ?? 'http');
  }
  return data;
}

/** @typedef {{setTimeout: (fn: () => void, ms: number) => unknown, clearTimeout: (id: unknown) => void}} Timers */

/** @type {Timers} the platform's timers */
export const GLOBAL_TIMERS = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (id)),
};

/**
 * An end the server refuses with 503 (it cannot reach its shared state right now) is sent again after the answer's
 * Retry-After (at most RETRY_AFTER_MAX_MS, static/retry-after.js), up to END_ATTEMPTS sends in all: an end lost leaves a billed task (Wiro's)
 * running until its deadline. The server also keeps such an end and retries it itself; ending twice is harmless.
 */
export const END_ATTEMPTS = 4;
// No Retry-After, or one unreadable: this long between sends (one given is obeyed up to RETRY_AFTER_MAX_MS).
const END_RETRY_DEFAULT_MS = 5000;

/**
 * The grant source of this app's own server: POST {base}/api/sessions mints, POST
 * {base}/api/sessions/{provider}/{session_id}/end releases. The mint endpoint takes only requests from the app's
 * own page (or from servers): a page on another origin mints through its own backend instead.
 * @param {string} [base]  the app's origin; default: the page's own ('' keeps the URLs relative)
 * @param {{timers?: Timers}} [options]  timers: what waits between an end's retries (tests pass fake ones)
 * @returns {{getGrant: GetGrant, endGrant: EndGrant}}
 */
export function appGrants(base = '', { timers = GLOBAL_TIMERS } = {}) {
  return {
    async getGrant({ provider, tag }, { signal }) {
      return /** @type {Grant} */ (await postJson(`${base}/api/sessions`, tag ? { provider, tag } : { provider }, { signal }));
    },
    endGrant(grant, { beacon }) {
      if (!grant.session_id) return;
      const url = `${base}/api/sessions/${encodeURIComponent(grant.provider)}/${encodeURIComponent(grant.session_id)}/end`;
      if (beacon && typeof navigator !== 'undefined' && navigator.sendBeacon) {
        // The page is going away: one try (a beacon's answer cannot be read); the server retries what it kept.
        navigator.sendBeacon(url);
        return;
      }
      return endWithRetries(url, timers);
    },
  };
}

/**
 * POST an end; a 503 is sent again (END_ATTEMPTS). Resolves when done or given up on, never rejects: ending is best
 * effort and must not stop the session's own end.
 * @param {string} url
 * @param {Timers} timers
 * @returns {Promise<void>}
 */
async function endWithRetries(url, timers) {
  for (let attempt = 1; ; attempt += 1) {
    let response;
    try {
      response = await fetch(url, { method: 'POST', credentials: 'same-origin', keepalive: true });
    } catch {
      return;
    }
    if (response.status !== 503 || attempt >= END_ATTEMPTS) return;
    const waitMs = readRetryAfter(response.headers?.get('Retry-After') ?? null, Date.now()) ?? END_RETRY_DEFAULT_MS;
    await new Promise((resolve) => { timers.setTimeout(() => resolve(undefined), waitMs); });
  }
}

/**
 * The session's side of a grant source: each request bounded in time (a fetch on a network that went away without
 * saying so can hang for minutes, and a reconnect, or a Stop waiting for it, must not), every request abortable at
 * once (cancel()), and each grant ended exactly once whichever way the session ends.
 */
export class GrantKeeper {
  /** @type {GetGrant} */
  #getGrant;
  /** @type {EndGrant} */
  #endGrant;
  #timeoutMs;
  /** @type {Timers} */
  #timers;
  /** @type {Set<AbortController>} */
  #requests = new Set();
  /** @type {WeakSet<Grant>} */
  #ended = new WeakSet();

  /**
   * @param {{getGrant?: GetGrant, endGrant?: EndGrant, timeoutMs?: number, timers?: Timers}} options  without
   *   getGrant, this app's endpoints (appGrants()); a caller with its own getGrant and no endGrant ends nothing
   *   (this app's /end would not know its grants)
   */
  constructor({ getGrant, endGrant, timeoutMs = 20000, timers = GLOBAL_TIMERS }) {
    const app = appGrants();
    this.#getGrant = getGrant ?? app.getGrant;
    this.#endGrant = endGrant ?? (getGrant ? () => {} : app.endGrant);
    this.#timeoutMs = timeoutMs;
    this.#timers = timers;
  }

  /**
   * A grant, or an ApiError 'timeout' (status 0: retryable) after timeoutMs, when the source's signal aborts too.
   * @param {GrantRequest} request
   * @returns {Promise<Grant>}
   */
  async request(request) {
    const abort = new AbortController();
    this.#requests.add(abort);
    const timers = this.#timers;
    /** @type {unknown} */
    let timer;
    /** @type {Promise<never>} */
    const timedOut = new Promise((_, reject) => {
      timer = timers.setTimeout(() => {
        abort.abort();
        reject(new ApiError(`The grant source did not answer within ${Math.round(this.#timeoutMs / 100) / 10} s.`, 0, 'timeout'));
      }, this.#timeoutMs);
    });
    try {
      return await Promise.race([this.#getGrant(request, { signal: abort.signal }), timedOut]);
    } finally {
      timers.clearTimeout(timer);
      this.#requests.delete(abort);
    }
  }

  /** Abort every request under way (their getGrant sees its signal abort). */
  abortAll() {
    for (const request of this.#requests) request.abort();
  }

  /**
   * The grant is finished with: tell the source, once per grant. A source that throws is logged, not thrown: ending
   * is best effort and must not stop the session's own end.
   * @param {Grant | null} grant
   * @param {boolean} [beacon]
   */
  end(grant, beacon = false) {
    if (!grant || this.#ended.has(grant)) return;
    this.#ended.add(grant);
    try {
      // An async endGrant (a page's own backend, down) rejects rather than throws: logged alike, never unhandled.
      Promise.resolve(this.#endGrant(grant, { beacon })).catch((err) => console.error('endGrant failed', err));
    } catch (err) {
      console.error('endGrant failed', err);
    }
  }
}
