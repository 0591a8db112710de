// What a Retry-After header asks: read once for every caller that obeys one (the captions publisher, the app's end
// calls).

/** The longest a Retry-After is obeyed, ms: the app's own limits never ask for more than their minute, and a
 * proxy's maintenance page asking for hours would otherwise stall its caller for as long after it ends. */
export const RETRY_AFTER_MAX_MS = 60000;

/**
 * How long a Retry-After header asks to wait, in ms: either of its forms (RFC 9110), seconds or an HTTP-date (a
 * proxy's or a maintenance page's), the date counted from `nowMs`; at most RETRY_AFTER_MAX_MS. null when absent or
 * unreadable (the caller's own wait then decides): read as a number, a date is NaN, and a NaN delay is no delay.
 * @param {string | null} value @param {number} nowMs
 * @returns {number | null}
 */
export function readRetryAfter(value, nowMs) {
  const text = (value ?? '').trim();
  const at = /^\d+$/.test(text) ? nowMs + Number(text) * 1000 : text ? Date.parse(text) : NaN;
  return Number.isFinite(at) ? Math.min(RETRY_AFTER_MAX_MS, Math.max(0, at - nowMs)) : null;
}
