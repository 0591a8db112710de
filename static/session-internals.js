// A window onto a Session's #private state for this repository's own tests (a replay buffer's figures, the live
// source, backpressure, and two faults to inject: an interrupted source, a dropped connection): private fields cannot
// be reached otherwise. Narrow on purpose: any script of this origin can import this file, so nothing here leads to
// the grant or the provider client (the grant's token rides in the client). Not part of the package: its `exports`
// map leaves this file out, so an adopting page cannot import it by the package's name.

/**
 * @typedef {object} SessionInternals
 * @property {() => import('./replay.js').ReplayBuffer | null} buffer
 * @property {() => import('./session.js').CaptureLike | null} capture
 * @property {() => boolean} canSend
 * @property {(reason: string, kind?: import('./session.js').InterruptionKind) => Promise<void>} interrupt
 * @property {(message: string) => void} dropConnection  the provider connection fails as a lost network does
 */

/** @type {WeakMap<object, SessionInternals>} */
export const internals = new WeakMap();
