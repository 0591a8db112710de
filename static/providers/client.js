// The entry point of the browser's provider clients: createClient() picks the client for a session grant from
// POST /api/sessions. The shared vocabulary and lifecycle live in stream.js and are re-exported here.

import { checkGrant } from './grant.js';
import { TruebarClient } from './truebar.js';
import { WiroClient } from './wiro.js';

export * from './stream.js';

/** @typedef {import('./stream.js').Grant} Grant */
/** @typedef {import('./stream.js').ClientOptions} ClientOptions */
/** @typedef {import('./stream.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./stream.js').ClientState} ClientState */
/** @typedef {import('./stream.js').Word} Word */
/** @typedef {import('./stream.js').Capabilities} Capabilities */

/** @type {Record<string, typeof TruebarClient | typeof WiroClient>} */
const PROTOCOLS = { truebar: TruebarClient, wiro: WiroClient };

// The provider names the app server uses, with the protocol each speaks and what the provider adds to it. The
// only place the page's code names a provider: everything else asks capabilitiesFor().
/** @type {Record<string, {protocol: string, tagsListing: boolean}>} */
const PROVIDERS = {
  truebar: { protocol: 'truebar', tagsListing: true },
  wiro: { protocol: 'wiro', tagsListing: false },
  // The embedded engine speaks the Truebar protocol; its one model is not worth a picker.
  local: { protocol: 'truebar', tagsListing: false },
};

/**
 * What a provider can do, by its name or by a grant (whose protocol decides for a provider not listed here).
 * @param {string | {provider?: string, protocol?: string}} of
 * @returns {Capabilities}
 */
export function capabilitiesFor(of) {
  const name = typeof of === 'string' ? of : of.provider ?? '';
  const known = PROVIDERS[name];
  const protocol = known ? known.protocol : typeof of === 'string' ? '' : of.protocol ?? '';
  const client = PROTOCOLS[protocol] ?? TruebarClient;
  return Object.freeze({ ...client.capabilities, tagsListing: known ? known.tagsListing : false });
}

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
