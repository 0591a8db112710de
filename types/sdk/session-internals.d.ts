/**
 * @typedef {object} SessionInternals
 * @property {() => import('./replay.js').ReplayBuffer | null} buffer
 * @property {() => import('./session.js').CaptureLike | null} capture
 * @property {() => import('./providers/stream.js').SessionClient | null} client
 * @property {() => boolean} canSend
 * @property {(reason: string, kind?: import('./session.js').InterruptionKind) => Promise<void>} interrupt
 */
/** @type {WeakMap<object, SessionInternals>} */
export const internals: WeakMap<object, SessionInternals>;
export type SessionInternals = {
    buffer: () => import("./replay.js").ReplayBuffer | null;
    capture: () => import("./session.js").CaptureLike | null;
    client: () => import("./providers/stream.js").SessionClient | null;
    canSend: () => boolean;
    interrupt: (reason: string, kind?: import("./session.js").InterruptionKind) => Promise<void>;
};
