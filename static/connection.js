// The session's provider connection: the grant it runs on, the client audio goes to, and each reconnect attempt
// (a backoff wait, a fresh grant, a new client). It executes the reducer's connection effects ('outage', 'wait',
// 'wake', 'release') and decides nothing: an attempt's outcome goes back to the reducer as its input. The grant's
// token is a credential: this object lives in a Session's #private field and hands the grant to no one but the
// provider client.
import { GLOBAL_TIMERS, isRetryable } from './grants.js';
import { capabilitiesFor, createClient as createProviderClient } from './providers/client.js';

/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/client.js').Capabilities} Capabilities */
/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */
/** @typedef {import('./providers/client.js').ClientOptions} ClientOptions */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./grants.js').GrantRequest} GrantRequest */
/** @typedef {import('./grants.js').Timers} Timers */
/**
 * What the connection needs of a grant source (a GrantKeeper).
 * @typedef {{request: (request: GrantRequest) => Promise<Grant>, end: (grant: Grant | null, beacon?: boolean) => void,
 *   abortAll: () => void}} GrantSource
 */
/**
 * How an attempt ended, as the reducer's input (the driver adds the facts: jitter, bufferedMs).
 * @typedef {{type: 'attempt-ready'} | {type: 'attempt-failed', message: string, code?: string, retryable: boolean}} AttemptOutcome
 */

/** @param {unknown} err @returns {string | undefined} the code a CaptureError or ApiError carries */
export function codeOf(err) {
  const code = err && typeof err === 'object' && 'code' in err ? err.code : undefined;
  return typeof code === 'string' && code ? code : undefined;
}

/** @param {unknown} err @returns {{message: string, code?: string}} a failure as the reducer's inputs carry it */
export function failure(err) {
  const code = codeOf(err);
  return { message: err instanceof Error ? err.message : String(err), ...(code ? { code } : {}) };
}

/**
 * The source already runs at the first grant's rate and frame size: a later grant (a fresh one at the start, a
 * reconnect's) for other audio cannot take it.
 * @param {Grant} first  the grant the source was opened for
 * @param {Grant} grant  the later one
 * @returns {string | null} why `grant` cannot be used, or null when it can
 */
export function audioMismatch(first, grant) {
  if (grant.sample_rate === first.sample_rate && grant.frame_samples === first.frame_samples) return null;
  return `The fresh grant is for ${grant.sample_rate} Hz audio in frames of ${grant.frame_samples}; `
    + `the audio source was opened for ${first.sample_rate} Hz in frames of ${first.frame_samples}.`;
}

export class Connection {
  /** @type {GrantSource} */
  #grants;
  /** @type {{provider: string, tag?: string}} */
  #asked;
  /** @type {(grant: Grant, onEvent: (event: ProviderEvent) => void) => Client} */
  #create;
  /** @type {(event: ProviderEvent) => void} */
  #onEvent;
  /** @type {Timers} */
  #timers;
  /** @type {() => boolean} */
  #over;
  /** @type {Grant | null} */
  #grant = null;
  /** @type {Capabilities | null} */
  #capabilities = null;
  /** @type {Client | null} the client audio goes to */
  #client = null;
  /** @type {Client | null} a reconnect attempt's client, until it is ready */
  #attempt = null;
  /** @type {Grant | null} the grant of the connection lost, for the replacement's request */
  #lostGrant = null;
  /** @type {{promise: Promise<void>, resolve: () => void} | null} settles when an outage ends, either way */
  #outage = null;
  /** @type {(() => void) | null} cuts the backoff wait short (Stop or Cancel during a reconnect) */
  #wake = null;

  /**
   * @param {{grants: GrantSource, provider: string, tag?: string, clientOptions?: ClientOptions,
   *   onEvent: (event: ProviderEvent) => void, over: () => boolean, timers?: Timers,
   *   createClient?: (grant: Grant, options: ClientOptions) => Client}} options
   *   onEvent: the events of the client audio goes to (an attempt's failure is retried, not the session's
   *   business; a replaced client's last words are nobody's); over: the session is over (an attempt that finds it
   *   so lets go of what it got)
   */
  constructor({ grants, provider, tag, clientOptions = {}, onEvent, over, timers = GLOBAL_TIMERS, createClient = createProviderClient }) {
    this.#grants = grants;
    this.#asked = tag ? { provider, tag } : { provider };
    this.#create = (grant, handler) => createClient(grant, { ...clientOptions, onEvent: handler });
    this.#onEvent = onEvent;
    this.#over = over;
    this.#timers = timers;
  }

  /** The current grant (sample rate, frame size, expiry for diagnostics): null before the first. */
  get grant() {
    return this.#grant;
  }

  /** What the current grant's provider can do; null before the first client. */
  get capabilities() {
    return this.#capabilities;
  }

  /** The client audio goes to: null before the first and during an outage. */
  get client() {
    return this.#client;
  }

  /** The first grant (rejects as the grant source does). */
  async first() {
    this.#grant = await this.#grants.request({ ...this.#asked, reconnect: false });
    return this.#grant;
  }

  /** The first grant's client, not started. */
  open() {
    const grant = /** @type {Grant} */ (this.#grant);
    this.#capabilities = capabilitiesFor(grant);
    this.#client = this.#make(grant);
    return this.#client;
  }

  /** @param {Grant} grant */
  #make(grant) {
    /** @type {Client} */
    const client = this.#create(grant, (event) => { if (client === this.#client) this.#onEvent(event); });
    return client;
  }

  /**
   * The 'outage' effect: the lost client and its grant go (the grant is kept for the replacement's request).
   * `outageEnded` settles when a replacement is ready or the session lets go.
   */
  beginOutage() {
    const old = this.#client;
    this.#client = null;
    this.#lostGrant = this.#grant;
    if (old) old.cancel();
    this.end(false, this.#grant);
    /** @type {() => void} */
    let resolve = () => {};
    const promise = new Promise((r) => { resolve = () => r(undefined); });
    this.#outage = { promise, resolve };
  }

  /** Settles when the outage under way ends, either way (at once when there is none). */
  get outageEnded() {
    return this.#outage ? this.#outage.promise : Promise.resolve();
  }

  /** The replacement is ready and has its audio: the outage is over. */
  outageOver() {
    if (this.#outage) this.#outage.resolve();
  }

  /**
   * The 'wait' effect: wait out the backoff (wake() cuts it short), then try a fresh grant like the lost one and a
   * new client. `report` gets the outcome (nothing when the session was over meanwhile), in the same task as the
   * client's readiness, so no client event comes between.
   * @param {number} delayMs
   * @param {(outcome: AttemptOutcome) => void} report
   */
  async attempt(delayMs, report) {
    await new Promise((resolve) => {
      const timer = this.#timers.setTimeout(() => resolve(undefined), delayMs);
      this.#wake = () => { this.#timers.clearTimeout(timer); resolve(undefined); };
    });
    this.#wake = null;
    if (this.#over()) return;
    const lost = /** @type {Grant} */ (this.#lostGrant);
    /** @type {Grant | null} */
    let grant = null;
    try {
      grant = await this.#grants.request(this.#reconnectRequest(lost));
      if (this.#over()) {
        this.end(false, grant);
        return;
      }
      // A backend that failed over to another provider: streamed at the wrong rate, the audio would be transcribed
      // as noise with no word of why. Another try would likely meet the same provider: the session ends.
      const mismatch = audioMismatch(lost, grant);
      if (mismatch) {
        this.end(false, grant);
        report({ type: 'attempt-failed', message: mismatch, retryable: false });
        return;
      }
      const client = this.#make(grant);
      this.#attempt = client;
      this.#grant = grant;
      this.#capabilities = capabilitiesFor(grant);
      await client.start();
      this.#attempt = null;
      if (this.#over()) {
        client.cancel();
        return;
      }
      this.#client = client;
    } catch (err) {
      if (this.#attempt) this.#attempt.cancel();
      this.#attempt = null;
      if (grant) this.end(false, grant);
      report({ type: 'attempt-failed', ...failure(err), retryable: isRetryable(err) });
      return;
    }
    report({ type: 'attempt-ready' });
  }

  /**
   * A fresh grant like the first: same provider, and the same model where the provider lets the page choose one.
   * @param {Grant} first
   * @returns {GrantRequest}
   */
  #reconnectRequest(first) {
    const chosen = this.#asked.tag ?? (capabilitiesFor(first).tagsListing ? first.tag : undefined);
    return chosen ? { provider: this.#asked.provider, tag: chosen, reconnect: true } : { provider: this.#asked.provider, reconnect: true };
  }

  /** The 'wake' effect: a backoff wait under way ends now (Stop: the user waits; Cancel: nothing more is tried). */
  wake() {
    if (this.#wake) this.#wake();
  }

  /** The 'release' effect's part: grant requests, the backoff, the clients, the grant, the outage. */
  release() {
    this.#grants.abortAll();
    this.wake();
    if (this.#client) this.#client.cancel();
    if (this.#attempt) this.#attempt.cancel();
    this.end();
    this.outageOver();
  }

  /**
   * Tell the grant source `grant` is finished with (once per grant: the keeper sees to that).
   * @param {boolean} [beacon]
   * @param {Grant | null} [grant]  default: the current grant
   */
  end(beacon = false, grant = this.#grant) {
    this.#grants.end(grant, beacon);
  }
}
