// The session's two long steps, each an async sequence that reports to the reducer and decides nothing itself:
// the start (the first grant, the audio source, the first client) and the graceful finish ('finish' effect: the
// source's tail, then the provider's last finals through any reconnects, bounded in time). Every collaborator is
// passed in, so both run under Node with fakes and fake timers.
import { audioMismatch } from './connection.js';

/** How long stop() waits for the last finals, reconnects included, unless the session's options say otherwise. */
export const DEFAULT_STOP_TIMEOUT_MS = 30000;

/** @typedef {import('./providers/client.js').Grant} Grant */
/** @typedef {import('./providers/stream.js').SessionClient} Client */
/** @typedef {import('./session-types.js').CaptureLike} CaptureLike */
/** @typedef {import('./session-state.js').CoreInput} CoreInput */
/** @typedef {import('./grants.js').Timers} Timers */

/**
 * What the start sequence works with. `starting`: the session is still `starting` (Stop or Cancel may end it while
 * the grant or the source is awaited); `ended`: settles when the session is over (a final state); `audio.prepare`:
 * the grant is here, set up what it decides (the replay accounting); `audio.use`: the opened source is the live
 * one, from `now` (ms); `audio.handOver`: a client that replaces the first before it started gets the audio
 * captured so far; `fail`: the session is over in `error` (a no-op once it is over anyway).
 * @typedef {object} StartHost
 * @property {{first: () => Promise<Grant>, open: () => Client, end: () => void, grant: Grant | null,
 *   client: Client | null}} link
 * @property {{prepare: (grant: Grant) => void, open: (grant: Grant) => Promise<CaptureLike>,
 *   use: (capture: CaptureLike, now: number) => void, handOver: (client: Client) => void}} audio
 * @property {() => boolean} starting
 * @property {Promise<void>} ended
 * @property {(input: CoreInput) => void} step
 * @property {(err: unknown) => void} fail
 * @property {() => number} [now]  ms, the wall clock (default Date.now)
 */

const ended = () => new Error('The session was ended before it started.');

/**
 * The start: resolves when audio flows to the provider; rejects (the session already in `error`, or ended) when
 * it cannot. What was got before an end (a grant, a client, a source) is let go of.
 * @param {StartHost} host
 */
export async function runStart(host) {
  const { link, audio } = host;
  host.step({ type: 'start' });
  // A listener of the move to `starting` may have stopped or cancelled already: a grant asked for now would be
  // minted only to be ended (for Wiro a billed task).
  if (!host.starting()) throw ended();
  /** @type {Grant} */
  let grant;
  try {
    grant = await link.first();
  } catch (err) {
    host.fail(err);
    throw err;
  }
  if (!host.starting()) {
    link.end();
    throw ended();
  }
  /** @type {Client} */
  let client;
  try {
    audio.prepare(grant);
    client = link.open();
  } catch (err) {
    host.fail(err);
    throw err;
  }
  /** @type {Promise<CaptureLike>} */
  let opening;
  try {
    // An adopter's source may be a plain function that throws before any promise exists.
    opening = audio.open(grant);
  } catch (err) {
    client.cancel();
    host.fail(err);
    throw err;
  }
  /** @type {CaptureLike | null} */
  let capture;
  try {
    // A microphone's permission prompt may stay open for minutes: an end meanwhile (Stop, Cancel) does not wait
    // for the user's answer.
    capture = await Promise.race([opening, host.ended.then(() => null)]);
  } catch (err) {
    client.cancel();
    if (host.starting()) host.fail(err);
    else link.end();
    throw err;
  }
  if (!capture) {
    client.cancel();
    link.end();
    // Granted after the end, the microphone is let go of at once.
    opening.then((late) => late.release()).catch(() => {});
    throw ended();
  }
  if (!host.starting()) {
    client.cancel();
    await capture.release();
    link.end();
    throw ended();
  }
  audio.use(capture, (host.now ?? Date.now)());
  if (client.expired()) {
    try {
      client = await renew(host);
    } catch (err) {
      if (host.starting()) host.fail(err);
      else {
        // Stopped meanwhile (a stop from `starting` releases nothing the start got) or cancelled.
        await capture.release();
        link.end();
      }
      throw err;
    }
  }
  host.step({ type: 'source-opened' });
  try {
    await client.start();
  } catch (err) {
    // The client's own error event has usually decided already (the session is over): then this is a no-op.
    host.fail(err);
    throw err;
  }
  host.step({ type: 'connected' });
}

/**
 * The first grant is fetched before the microphone's permission prompt (a refusal is known before the user is
 * asked) and its client made then, so a user who answers after the grant's life would connect with a token the
 * client already knows has run out, and the start would fail `expired`. A fresh grant instead, the first one ended
 * through the usual path (a Wiro task is killed); the new client gets the audio captured meanwhile.
 * @param {StartHost} host
 * @returns {Promise<Client>}
 */
async function renew(host) {
  const { link, audio } = host;
  const first = /** @type {Grant} */ (link.grant);
  link.client?.cancel();
  link.end();
  const grant = await link.first();
  if (!host.starting()) throw ended();
  const mismatch = audioMismatch(first, grant);
  if (mismatch) throw new Error(mismatch);
  const client = link.open();
  audio.handOver(client);
  return client;
}

/**
 * What the finish works with. `lost`: the connection is being replaced (the reducer's link); `stopping`: the state
 * is still `stopping`; `sourceFailed`: the source's tail failed (the provider is finished all the same);
 * `unfinished`: every round ended with the connection lost again, audio still held (the driver says it is lost);
 * `timedOut`: the bound passed (the driver says what was not transcribed); `finished`: the end, whichever way.
 * @typedef {object} FinishHost
 * @property {{stop: () => Promise<unknown>} | null} source
 * @property {(err: unknown) => void} sourceFailed
 * @property {{client: {stop: () => Promise<unknown>} | null, wake: () => void, outageEnded: Promise<void>, end: () => void}} link
 * @property {number} rounds  reconnects a finish may wait through (maxReconnects)
 * @property {() => boolean} lost
 * @property {() => boolean} stopping
 * @property {() => void} unfinished
 * @property {(boundMs: number) => void} timedOut
 * @property {() => void} finished
 * @property {Timers} timers
 */

/**
 * The source's tail and the provider's last finals, bounded: an outage can otherwise hold Stop for minutes (each
 * reconnect waits for a grant, then for the socket).
 * @param {FinishHost} host
 * @param {number} [boundMs]
 */
export async function runFinish(host, boundMs = DEFAULT_STOP_TIMEOUT_MS) {
  /** @type {unknown} */
  let timer;
  const timedOut = new Promise((resolve) => { timer = host.timers.setTimeout(() => resolve('timeout'), boundMs); });
  try {
    const outcome = await Promise.race([drain(host).then((done) => (done ? 'done' : 'unfinished')), timedOut]);
    if (outcome === 'timeout') host.timedOut(boundMs);
    else if (outcome === 'unfinished') host.unfinished();
  } finally {
    host.timers.clearTimeout(timer);
    host.link.end();
    host.finished();
  }
}

/**
 * The source's tail, then the provider's last finals, through any reconnects.
 * @param {FinishHost} host
 * @returns {Promise<boolean>} false when the rounds ran out with a connection still being replaced, or replaced by
 *   one never asked to finish: the audio replayed to it has no finals, and the session is not over
 */
async function drain({ source, link, rounds, lost, stopping, sourceFailed }) {
  if (source) {
    // An adopter's source may fail to flush its tail: the audio it did send still needs the provider's last finals,
    // and the socket its end of stream.
    try {
      await source.stop();
    } catch (err) {
      sourceFailed(err);
    }
  }
  for (let round = 0; round <= rounds; round++) {
    if (lost()) {
      link.wake();
      await link.outageEnded;
    }
    if (!stopping()) return true;
    const client = link.client;
    if (client) await client.stop();
    // Done when the client that finished is still the one: a lost client's stop may resolve only once its socket
    // has given up closing, after its replacement is up with the replayed audio, which has to finish in turn.
    if (!lost() && link.client === client) return true;
  }
  // A connection lost at every end of stream: the last one's replacement has the held audio and nothing will ask it
  // for its finals. Not a clean end, whatever the bound says.
  return !stopping();
}

/**
 * What a stop that ran out of time says.
 * @param {number} boundMs @param {number} droppedMs  the audio not transcribed (after the terminal loss was counted)
 */
export const stopTimeoutMessage = (boundMs, droppedMs) => `Stopped after ${Math.round(boundMs / 100) / 10} s without the last words: `
  + `${(droppedMs / 1000).toFixed(1)} s of audio were not transcribed.`;
