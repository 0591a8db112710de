// A window onto a Session's #private state for this repository's own tests (a replay buffer's figures, the live
// source, the provider client): private fields cannot be reached otherwise, and the tests check what they hold.
// Not part of the package: its `exports` map leaves this file out, so an adopting page cannot import it.

/**
 * @typedef {object} SessionInternals
 * @property {() => import('./replay.js').ReplayBuffer | null} buffer
 * @property {() => import('./session.js').CaptureLike | null} capture
 * @property {() => import('./providers/stream.js').SessionClient | null} client
 * @property {() => boolean} canSend
 * @property {(reason: string, kind?: import('./session.js').InterruptionKind) => Promise<void>} interrupt
 */

/** @type {WeakMap<object, SessionInternals>} */
export const internals = new WeakMap();
