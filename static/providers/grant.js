// The session grant from POST /api/sessions, and the helpers that keep its token out of every URL and message
// a person sees.
import { isRate } from '../audio/pcm.js';

/**
 * The session grant from POST /api/sessions. `token` is a credential: it never appears in an event or a
 * message.
 * @typedef {object} Grant
 * @property {string} provider        'truebar' | 'wiro' | 'local' (for messages)
 * @property {'truebar'|'wiro'} protocol
 * @property {string} ws_url
 * @property {string} token
 * @property {number} sample_rate     Hz of the PCM the provider expects: whole, in 1..MAX_RATE (pcm.js's resampler)
 * @property {number} frame_samples   samples per audio frame the page sends
 * @property {string} [tag]           Truebar ASR stage tag
 * @property {string} [task_id]       Wiro task id
 * @property {string} [session_id]    the app server's handle, for POST /api/sessions/{provider}/{session_id}/end
 * @property {boolean} [offline]      the embedded engine: no audio leaves the machine
 * @property {number} [expires_at]      seconds since the epoch (the server's clock)
 * @property {number} [expires_in]      seconds of life left when the grant was minted: what the client goes by,
 *   counted from when it got the grant, as the browser's clock may be minutes off the server's (without it, the
 *   client compares expires_at with its own clock)
 */

/** @type {Record<string, string>} */
const PROVIDER_LABELS = { truebar: 'Truebar', wiro: 'Wiro', local: 'local' };

/**
 * Throws a TypeError naming the first missing or malformed grant field (never echoing values: one is the
 * token).
 * @param {Grant} grant
 */
export function checkGrant(grant) {
  if (grant === null || typeof grant !== 'object') throw new TypeError('The session grant is not an object.');
  /** @type {[keyof Grant, (v: unknown) => boolean][]} */
  const checks = [
    ['ws_url', (v) => typeof v === 'string' && /^wss?:\/\//i.test(v)],
    ['token', (v) => typeof v === 'string' && v.length > 0],
    // One pcm.js's resampler takes: refused only in the worklet, the grant would fail the session once it streamed.
    ['sample_rate', isRate],
    ['frame_samples', (v) => typeof v === 'number' && Number.isInteger(v) && v > 0],
  ];
  for (const [name, ok] of checks) {
    if (!ok(grant[name])) throw new TypeError(`The session grant has no valid "${name}".`);
  }
}

/**
 * A person-readable provider name for messages.
 * @param {Grant} grant
 */
export function providerLabel(grant) {
  return PROVIDER_LABELS[grant.provider] ?? PROVIDER_LABELS[grant.protocol] ?? String(grant.provider);
}

/**
 * `url` with one query parameter set, keeping the ones it already has.
 * @param {string} url
 * @param {string} name
 * @param {string} value
 */
export function withQueryParam(url, name, value) {
  const out = new URL(url);
  out.searchParams.set(name, value);
  return out.toString();
}

/**
 * The URL without its query and fragment, safe to show: the query may carry the access token.
 * @param {string} url
 */
export function displayUrl(url) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Replace every occurrence of a secret in text that came from elsewhere (a server message, an exception).
 * @param {string} text
 * @param {string | undefined} secret
 */
export function redact(text, secret) {
  return secret ? text.split(secret).join('[token]') : text;
}

/**
 * "code 1006" or "code 1008: reason".
 * @param {number} code
 * @param {string} reason
 */
export function closeSummary(code, reason) {
  return reason ? `code ${code}: ${reason}` : `code ${code}`;
}
