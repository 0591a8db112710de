// What a session's bug report holds (Session.diagnostics()), as plain values from the facts the session passes in:
// pure, so the arithmetic (frames expected from the source's clock, the resampling ratio) is tested without audio.
// Never the grant's token or URL.

/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./session-types.js').CaptureLike} CaptureLike */
/** @typedef {import('./session-state.js').SessionState} SessionState */

/**
 * @param {{grant: Grant | null, capture: CaptureLike | null, clockStart: {capture: CaptureLike, time: number} | null,
 *   startedAt: number, now: number, replay: {buffer: {totalSamples: number}, bufferedMs: number, droppedMs: number} | null,
 *   clientFramesSent: number, socketState: string, sessionState: SessionState, reconnects: number,
 *   expiresAt?: number | null}} facts
 *   clockStart: the source's clock when the session started; startedAt, now: the wall clock (ms); expiresAt: when
 *   the current client counts its grant running out (ms, its clock: the grant's expires_in from when it got it),
 *   null without a client (the grant's expires_at is shown then, the server's clock)
 */
export function sessionDiagnostics({ grant, capture, clockStart, startedAt, now, replay, clientFramesSent, socketState, sessionState, reconnects, expiresAt = null }) {
  const settings = (capture && capture.deviceSettings) || {};
  const contextRate = capture && capture.contextRate ? capture.contextRate : null;
  const rate = grant ? grant.sample_rate : null;
  const frameSamples = grant ? grant.frame_samples : 0;
  const ctx = capture && capture.context;
  // The source's clock when it is the one this session started with; after a microphone was replaced, the wall
  // clock (the time without a microphone counts as expected frames not sent, which is what happened).
  const elapsedS = ctx && clockStart && clockStart.capture === capture && typeof ctx.currentTime === 'number'
    ? ctx.currentTime - clockStart.time
    : (now - startedAt) / 1000;
  return {
    provider: grant ? grant.provider : undefined,
    protocol: grant ? grant.protocol : undefined,
    browser: typeof navigator !== 'undefined' ? navigator.userAgent : '',
    deviceLabel: (capture && capture.deviceLabel) || '',
    deviceRate: settings.sampleRate ?? null,
    contextRate,
    providerRate: rate,
    ratio: contextRate && rate ? `${contextRate} → ${rate} (×${(rate / contextRate).toFixed(4)})` : null,
    framesSent: replay && frameSamples ? Math.floor(replay.buffer.totalSamples / frameSamples) : 0,
    framesExpected: frameSamples && rate && startedAt ? Math.floor((elapsedS * rate) / frameSamples) : 0,
    clientFramesSent,
    socketState,
    sessionState,
    reconnects,
    tokenExpiresAt: tokenExpiry(grant, expiresAt),
    bufferedMs: replay ? replay.bufferedMs : 0,
    droppedMs: replay ? replay.droppedMs : 0,
  };
}

/**
 * When the token runs out, as ISO text: as the client counts it (on this browser's clock, which the report's "in N s"
 * is read against), else the grant's own expires_at (the server's clock).
 * @param {Grant | null} grant @param {number | null} expiresAt
 */
function tokenExpiry(grant, expiresAt) {
  if (typeof expiresAt === 'number' && Number.isFinite(expiresAt)) return new Date(expiresAt).toISOString();
  return grant && typeof grant.expires_at === 'number' ? new Date(grant.expires_at * 1000).toISOString() : null;
}
