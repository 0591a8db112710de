/**
 * @typedef {object} SessionInternals
 * @property {() => import('./replay.js').ReplayBuffer | null} buffer
 * @property {() => import('./session.js').CaptureLike | null} capture
 * @property {() => boolean} canSend
 * @property {(reason: string, kind?: import('./session.js').InterruptionKind) => Promise<void>} interrupt
 * @property {(message: string) => void} dropConnection  the provider connection fails as a lost network does
 */
/** @type {WeakMap<object, SessionInternals>} */
export const internals: WeakMap<object, SessionInternals>;
export type SessionInternals = {
    buffer: () => import("./replay.js").ReplayBuffer | null;
    capture: () => import("./session.js").CaptureLike | null;
    canSend: () => boolean;
    interrupt: (reason: string, kind?: import("./session.js").InterruptionKind) => Promise<void>;
    /**
     * the provider connection fails as a lost network does
     */
    dropConnection: (message: string) => void;
};
