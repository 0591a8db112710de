// The entry point of the browser's provider clients: createClient() picks the client for a session grant from
// POST /api/sessions. The shared vocabulary and lifecycle live in stream.js and are re-exported here.

import { checkGrant } from './stream.js';
import { TruebarClient } from './truebar.js';
import { WiroClient } from './wiro.js';

export * from './stream.js';

/** @typedef {import('./stream.js').Grant} Grant */
/** @typedef {import('./stream.js').ClientOptions} ClientOptions */
/** @typedef {import('./stream.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./stream.js').ClientState} ClientState */
/** @typedef {import('./stream.js').Word} Word */

/**
 * Build the client for a session grant, by `grant.protocol`.
 * @param {Grant} grant
 * @param {ClientOptions} [opts]
 * @returns {TruebarClient | WiroClient}
 */
export function createClient(grant, opts = {}) {
  checkGrant(grant);
  switch (grant.protocol) {
    case 'truebar':
      return new TruebarClient(grant, opts);
    case 'wiro':
      return new WiroClient(grant, opts);
    default:
      throw new TypeError(`Unknown streaming protocol ${JSON.stringify(grant.protocol)} in the grant.`);
  }
}
