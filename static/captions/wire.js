// The captions API's JSON as the page reads it, checked. JSON.parse and Response.json() give `any`, which strict
// tsc never questions; here each answer is taken as `unknown` and becomes its typed shape, or null when it is not
// that shape (a proxy's error page, a server of another version, a bug), which each caller handles as such.
// server/wire.py (ShareGrant, ShareStatus, PublishResult) and server/captions.py (_sse) write them. Only the fields
// the page reads are required; others are ignored. Pure: no DOM, no fetch (viewer.js, publisher.js, page/share.js
// and the node tests share it).

/** @param {unknown} v @returns {v is Record<string, unknown>} */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A whole number of at least `low` (JSON has no integer type: 3.0 is 3).
 * @param {unknown} v @param {number} low @returns {v is number}
 */
const isCount = (v, low) => typeof v === 'number' && Number.isSafeInteger(v) && v >= low;

/** Unix seconds (a float). @param {unknown} v @returns {v is number} */
const isTime = (v) => typeof v === 'number' && Number.isFinite(v);

/** Seconds left (a float, 0 or more). @param {unknown} v @returns {v is number} */
const isLeft = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * An answer's optional `expires_in`: absent is fine (an older server), present it must be seconds left.
 * @param {Record<string, unknown>} data @returns {{expires_in?: number} | null}
 */
function secondsLeft(data) {
  if (data.expires_in === undefined) return {};
  return isLeft(data.expires_in) ? { expires_in: data.expires_in } : null;
}

/**
 * When a share runs out, in ms on the clock of `receivedAt`: the answer's `expires_in` counted from when it arrived,
 * so a browser clock an hour off the server's changes nothing; an answer without it (an older server) is taken at
 * its `expires_at`, the server's clock read as ours.
 * @param {{expires_at: number, expires_in?: number}} answer
 * @param {number} receivedAt  ms: when the answer arrived (Date.now() then)
 * @returns {number}
 */
export function shareExpiry(answer, receivedAt) {
  return answer.expires_in !== undefined && Number.isFinite(receivedAt)
    ? receivedAt + answer.expires_in * 1000
    : answer.expires_at * 1000;
}

/** @param {unknown} v @returns {v is string} */
const isText = (v) => typeof v === 'string' && v !== '';

/**
 * @typedef {object} ShareStatus  GET /api/captions/{share_id}
 * @property {'active'|'revoked'} status
 * @property {boolean} live  a recording is being published now
 * @property {number} expires_at  Unix seconds
 * @property {number} [expires_in]  seconds the share had left when the answer was made (what the page goes by:
 *   the browser's clock may be off the server's)
 * @property {number} viewers
 * @property {number} max_viewers
 */

/**
 * @param {unknown} data
 * @returns {ShareStatus | null}
 */
export function parseShareStatus(data) {
  if (!isObject(data)) return null;
  const { status, live, expires_at: expiresAt, viewers, max_viewers: maxViewers } = data;
  if (status !== 'active' && status !== 'revoked') return null;
  if (typeof live !== 'boolean' || !isTime(expiresAt) || !isCount(viewers, 0) || !isCount(maxViewers, 1)) return null;
  const left = secondsLeft(data);
  if (!left) return null;
  return { status, live, expires_at: expiresAt, ...left, viewers, max_viewers: maxViewers };
}

/**
 * @typedef {object} ShareGrant  POST /api/captions: a new share (the publish token is held by this page alone)
 * @property {string} share_id
 * @property {string} viewer_url  the viewer page's path on this app
 * @property {string} publish_token
 * @property {number} expires_at  Unix seconds
 * @property {number} [expires_in]  seconds the share had left when the answer was made (what the page goes by:
 *   the browser's clock may be off the server's)
 */

/**
 * @param {unknown} data
 * @returns {ShareGrant | null}
 */
export function parseShareGrant(data) {
  if (!isObject(data)) return null;
  const { share_id: shareId, viewer_url: viewerUrl, publish_token: token, expires_at: expiresAt } = data;
  const left = secondsLeft(data);
  if (!isText(shareId) || !isText(viewerUrl) || !isText(token) || !isTime(expiresAt) || !left) return null;
  return { share_id: shareId, viewer_url: viewerUrl, publish_token: token, expires_at: expiresAt, ...left };
}

/**
 * @typedef {object} PublishResult  POST /api/captions/{share_id}/events, answered 200
 * @property {number} viewers
 * @property {number} expires_at  Unix seconds
 * @property {number} [expires_in]  seconds the share had left when the answer was made (what the page goes by:
 *   the browser's clock may be off the server's)
 * @property {boolean} live
 */

/**
 * @param {unknown} data
 * @returns {PublishResult | null}
 */
export function parsePublishResult(data) {
  if (!isObject(data)) return null;
  const { viewers, expires_at: expiresAt, live } = data;
  const left = secondsLeft(data);
  if (!isCount(viewers, 0) || !isTime(expiresAt) || typeof live !== 'boolean' || !left) return null;
  return { viewers, expires_at: expiresAt, ...left, live };
}

/**
 * The message of the app's error answer ({"error": {"code", "message"}}), or '' when `data` is not one.
 * @param {unknown} data
 * @returns {string}
 */
export function errorMessage(data) {
  if (!isObject(data) || !isObject(data.error)) return '';
  const { message } = data.error;
  return typeof message === 'string' ? message : '';
}

/**
 * One event of a viewer's stream (GET /api/captions/{share_id}/stream).
 * @typedef {{type: 'final', seq: number, text: string}
 *   | {type: 'partial', text: string}
 *   | {type: 'state', live: boolean}
 *   | {type: 'gap', from: number, to: number}
 *   | {type: 'end', reason: 'revoked' | 'expired'}} CaptionEvent
 */

/** @typedef {CaptionEvent['type']} CaptionEventType */

/**
 * An SSE event of the viewer's stream, from its `event:` name and its `data:` text; null when the text is not JSON
 * or not that event's shape. A final needs a whole `seq` of at least 1 (the server's numbering, never NaN). An `end`
 * with a reason other than 'revoked' (the server also sends 'expired') is taken as expired: the share is over either
 * way.
 * @template {CaptionEventType} T
 * @param {T} type
 * @param {unknown} text  MessageEvent.data: a string from an EventSource, anything from elsewhere
 * @returns {Extract<CaptionEvent, {type: T}> | null}  an event of that type
 */
export function parseCaptionEvent(type, text) {
  if (typeof text !== 'string') return null;
  /** @type {unknown} */
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  // Each case below builds the event of its own `type`, which tsc cannot follow through a type parameter.
  return /** @type {Extract<CaptionEvent, {type: T}> | null} */ (isObject(data) ? eventOf(type, data) : null);
}

/**
 * @param {CaptionEventType} type @param {Record<string, unknown>} data
 * @returns {CaptionEvent | null}
 */
function eventOf(type, data) {
  switch (type) {
    case 'final':
      return isCount(data.seq, 1) && typeof data.text === 'string' ? { type, seq: data.seq, text: data.text } : null;
    case 'partial':
      return typeof data.text === 'string' ? { type, text: data.text } : null;
    case 'state':
      return typeof data.live === 'boolean' ? { type, live: data.live } : null;
    case 'gap':
      // server/wire.py CaptionGap: the finals `from` to `to` the server no longer keeps for this viewer.
      return isCount(data.from, 1) && isCount(data.to, data.from) ? { type, from: data.from, to: data.to } : null;
    case 'end':
      return typeof data.reason === 'string' ? { type, reason: data.reason === 'revoked' ? 'revoked' : 'expired' } : null;
    default:
      return null;
  }
}
