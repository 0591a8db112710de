// What a user pastes into a bug report: where the audio came from, what the page did with it, and how the
// connection fared. Never the token or the WebSocket URL (the Truebar token rides in its query).
//
// Pure module (no DOM): the page passes in the Session's diagnostics() and what it knows itself.

/**
 * @typedef {object} Diagnostics
 * @property {string} [provider]
 * @property {string} [protocol]
 * @property {string} [browser]
 * @property {string} [deviceLabel]
 * @property {number|null} [deviceRate]    Hz the microphone (or file) delivers
 * @property {number|null} [contextRate]   Hz of the AudioContext the worklet runs in (the resampler's input)
 * @property {number|null} [providerRate]  Hz the provider expects (the resampler's output)
 * @property {number|string|null} [ratio]  providerRate / contextRate
 * @property {number|null} [framesSent]      frames captured (all are sent or held for replay)
 * @property {number|null} [clientFramesSent]  frames the current socket has sent
 * @property {number|null} [framesExpected]  from the source's clock: what should have been captured by now
 * @property {string} [socketState]
 * @property {string} [sessionState]
 * @property {number} [reconnects]
 * @property {number|string|null} [tokenExpiresAt]  seconds since the epoch (or ISO text); the session's is on this
 *   browser's clock, counted from the grant's expires_in
 * @property {number|null} [bufferedMs]    audio held for replay after a reconnect
 * @property {number|null} [droppedMs]     audio lost beyond the replay bound
 */

/** @param {unknown} v @returns {v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/**
 * The session's own report; {} before there is a session or when it cannot say yet.
 * @param {{diagnostics?: () => Diagnostics} | null} session
 * @returns {Diagnostics}
 */
export function fromSession(session) {
  if (!session || typeof session.diagnostics !== 'function') return {};
  try {
    return { ...session.diagnostics() };
  } catch {
    return {};
  }
}

/** @param {number|string|null|undefined} at @param {number} nowMs */
function expiry(at, nowMs) {
  if (at === null || at === undefined || at === '') return '–';
  const ms = typeof at === 'number' ? at * 1000 : Date.parse(at);
  if (!Number.isFinite(ms)) return String(at);
  const left = Math.round((ms - nowMs) / 1000);
  const when = new Date(ms).toISOString();
  return left >= 0 ? `${when} (in ${left} s)` : `${when} (expired ${-left} s ago)`;
}

/** @param {unknown} v @param {string} [unit] */
function show(v, unit = '') {
  if (v === null || v === undefined || v === '') return '–';
  if (isNum(v)) return `${Number.isInteger(v) ? v : v.toFixed(v < 10 ? 5 : 1)}${unit}`;
  return String(v);
}

/** @param {{p50: number|null, p95: number|null, count: number}} m */
function metric(m) {
  return m && m.count ? `p50 ${Math.round(/** @type {number} */ (m.p50))} ms, p95 ${Math.round(/** @type {number} */ (m.p95))} ms (n=${m.count})` : '–';
}

/**
 * The copyable text block: one "name: value" line each, stable names so reports can be compared.
 * @param {Diagnostics} d
 * @param {{state?: string, nowMs?: number, latency?: {firstInterim: import('./latency.js').Metric, finalLag: import('./latency.js').Metric},
 *          lastError?: string, audioMs?: number|null, page?: string}} [extra]
 * @returns {string}
 */
export function formatDiagnostics(d, extra = {}) {
  const nowMs = extra.nowMs ?? Date.now();
  const sent = d.framesSent;
  const expected = d.framesExpected;
  let frames = `${show(sent)} captured / ${show(expected)} expected`;
  if (isNum(sent) && isNum(expected) && expected > 0) frames += ` (${((100 * sent) / expected).toFixed(1)} %)`;
  if (isNum(d.clientFramesSent)) frames += `; ${d.clientFramesSent} sent on the current connection`;
  const lines = [
    ['Time', new Date(nowMs).toISOString()],
    ['Page', extra.page ?? '–'],
    ['Browser', d.browser ?? '–'],
    ['State', extra.state ?? '–'],
    ['Provider', d.provider ? `${d.provider}${d.protocol && d.protocol !== d.provider ? ` (${d.protocol} protocol)` : ''}` : '–'],
    ['Input device', d.deviceLabel || '–'],
    ['Device rate', show(d.deviceRate, ' Hz')],
    ['Context rate', show(d.contextRate, ' Hz')],
    ['Provider rate', show(d.providerRate, ' Hz')],
    ['Resampler ratio', show(d.ratio)],
    ['Audio clock', isNum(extra.audioMs) ? `${(extra.audioMs / 1000).toFixed(1)} s` : '–'],
    ['Frames', frames],
    ['Socket', show(d.socketState)],
    ['Session', show(d.sessionState)],
    ['Reconnects', show(d.reconnects ?? 0)],
    ['Replay buffer', show(d.bufferedMs, ' ms')],
    ['Audio lost', show(d.droppedMs ?? 0, ' ms')],
    ['Token expires', expiry(d.tokenExpiresAt, nowMs)],
    ['First interim', extra.latency ? metric(extra.latency.firstInterim) : '–'],
    ['End of speech to final', extra.latency ? metric(extra.latency.finalLag) : '–'],
    ['Last error', extra.lastError || '–'],
  ];
  return lines.map(([k, v]) => `${k}: ${v}`).join('\n');
}

/**
 * A short description of the browser: its user-agent brands when the page can read them, else the UA string.
 * @param {Navigator} nav
 */
export function browserName(nav) {
  const data = /** @type {Navigator & {userAgentData?: {brands?: {brand: string, version: string}[]}}} */ (nav).userAgentData;
  const brands = data ? data.brands : undefined;
  if (Array.isArray(brands) && brands.length) {
    const named = brands.filter((b) => !/not.?a.?brand/i.test(b.brand)).map((b) => `${b.brand} ${b.version}`);
    if (named.length) return `${named.join(', ')}; ${nav.userAgent}`;
  }
  return nav.userAgent;
}
