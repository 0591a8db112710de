// The shared part of the browser's provider clients, one module per responsibility; this re-exports them all.
//   protocol.js        the event vocabulary, states, options and capabilities (types and constants)
//   grant.js           the session grant and the helpers that keep its token out of sight
//   wire.js            PCM16 little-endian bytes
//   frame-queue.js     audio held until a session is ready
//   stream-session.js  the lifecycle both protocols share, and SessionClient
export * from './frame-queue.js';
export * from './grant.js';
export * from './protocol.js';
export * from './stream-session.js';
export * from './wire.js';

/** @typedef {import('./grant.js').Grant} Grant */
/** @typedef {import('./protocol.js').ClientOptions} ClientOptions */
/** @typedef {import('./protocol.js').ClientState} ClientState */
/** @typedef {import('./protocol.js').ErrorCause} ErrorCause */
/** @typedef {import('./protocol.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./protocol.js').ProtocolCapabilities} ProtocolCapabilities */
/** @typedef {import('./protocol.js').Capabilities} Capabilities */
/** @typedef {import('./protocol.js').Word} Word */
/** @typedef {import('./protocol.js').Timers} Timers */
/** @typedef {import('./stream-session.js').SessionProtocol} SessionProtocol */
