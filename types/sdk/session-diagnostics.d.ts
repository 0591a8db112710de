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
export function sessionDiagnostics({ grant, capture, clockStart, startedAt, now, replay, clientFramesSent, socketState, sessionState, reconnects, expiresAt }: {
    grant: Grant | null;
    capture: CaptureLike | null;
    clockStart: {
        capture: CaptureLike;
        time: number;
    } | null;
    startedAt: number;
    now: number;
    replay: {
        buffer: {
            totalSamples: number;
        };
        bufferedMs: number;
        droppedMs: number;
    } | null;
    clientFramesSent: number;
    socketState: string;
    sessionState: SessionState;
    reconnects: number;
    expiresAt?: number | null;
}): {
    provider: string | undefined;
    protocol: "truebar" | "wiro" | undefined;
    browser: string;
    deviceLabel: string;
    deviceRate: number | null;
    contextRate: number | null;
    providerRate: number | null;
    ratio: string | null;
    framesSent: number;
    framesExpected: number;
    clientFramesSent: number;
    socketState: string;
    sessionState: import("./session-state.js").SessionState;
    reconnects: number;
    tokenExpiresAt: string | null;
    bufferedMs: number;
    droppedMs: number;
};
export type Grant = import("./providers/client.js").Grant;
export type CaptureLike = import("./session-types.js").CaptureLike;
export type SessionState = import("./session-state.js").SessionState;
