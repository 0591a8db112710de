// The one state a transcription session is in, every move it may make, and (below) every decision about it, as a
// reducer. Pure: no DOM, no timers.
//
//   idle ─► starting ─► connecting ─► streaming ◄─► reconnecting
//              │             │            │              │
//              └─────────────┴─► stopping ◄──────────────┘ ─► stopped
//   every state but the last three ─► cancelled | error          (stopped, cancelled, error: final)
//
// `starting` is the grant and the audio source being set up; `connecting` the provider's socket getting ready;
// `reconnecting` a lost connection being replaced (its attempts move reconnecting ─► reconnecting, each with its
// own detail); `stopping` the audio source's tail and the provider's last finals (a connection lost here is
// replaced without leaving `stopping`).

import { backoffDelay } from './replay.js';

/** @typedef {'idle'|'starting'|'connecting'|'streaming'|'reconnecting'|'stopping'|'stopped'|'cancelled'|'error'} SessionState */

/**
 * What a state carries besides its name: the reconnect attempt, or the error's message and, when the failure had
 * one, its code (a CaptureError's such as 'denied', an ApiError's such as 'rate_limited'), so a caller can act on it
 * without parsing the message.
 * @typedef {{attempt?: number, delayMs?: number, bufferedMs?: number, reason?: string, message?: string,
 *   code?: string}} StateDetail
 */

/** @typedef {(from: SessionState, to: SessionState, detail: StateDetail) => void} StateListener */

/** @type {Readonly<Record<SessionState, readonly SessionState[]>>} */
export const TRANSITIONS = Object.freeze({
  idle: ['starting', 'stopped', 'cancelled'],
  starting: ['connecting', 'stopping', 'stopped', 'cancelled', 'error'],
  connecting: ['streaming', 'stopping', 'cancelled', 'error'],
  streaming: ['reconnecting', 'stopping', 'cancelled', 'error'],
  reconnecting: ['reconnecting', 'streaming', 'stopping', 'cancelled', 'error'],
  stopping: ['stopped', 'cancelled', 'error'],
  stopped: [],
  cancelled: [],
  error: [],
});

/** States after which nothing happens any more. */
export const FINAL_STATES = Object.freeze(/** @type {SessionState[]} */ (['stopped', 'cancelled', 'error']));

/** @param {SessionState} state */
export const isFinal = (state) => FINAL_STATES.includes(state);

export class StateMachine {
  /** @param {StateListener} [listener] */
  constructor(listener) {
    /** @type {SessionState} */
    this.state = 'idle';
    /** @type {StateDetail} */
    this.detail = {};
    this._listener = listener ?? (() => {});
  }

  /** @param {SessionState} to */
  can(to) {
    return TRANSITIONS[this.state].includes(to);
  }

  /** @param {...SessionState} states */
  is(...states) {
    return states.includes(this.state);
  }

  get final() {
    return isFinal(this.state);
  }

  /**
   * Move to `to`. A move the table does not allow is a bug in the caller: it throws, and the state stays.
   * @param {SessionState} to
   * @param {StateDetail} [detail]
   */
  to(to, detail = {}) {
    const from = this.state;
    if (!this.can(to)) throw new Error(`A session cannot go from ${from} to ${to}.`);
    this.state = to;
    this.detail = detail;
    try {
      this._listener(from, to, detail);
    } catch (err) {
      console.error('session state listener failed', err);
    }
  }
}

// ---- The session's decisions as a pure reducer: reduce(core, input) → {core, effects} ----
//
// Every decision about the connection, the reconnect policy and the end of a session is made here, once, from
// the state and the facts the input carries (the driver supplies the backoff jitter and the buffered audio, so
// nothing here reads a clock, a random source or a socket). session.js executes the effects in order: state moves,
// events to emit, the replay and the waits. Before this, one client failure was judged in two places (the client's
// error event started a reconnect and start()'s rejection then killed it), and "reconnecting" lived in three.

/**
 * The provider connection: 'none' (no client yet), 'opening' (the first client connecting), 'up', 'lost' (being
 * replaced; the one place a reconnect under way is kept: while stopping, the state stays `stopping`).
 * @typedef {'none'|'opening'|'up'|'lost'} Link
 */
/**
 * @typedef {object} Core
 * @property {SessionState} state
 * @property {Link} link
 * @property {number} attempt  the reconnect attempt under way (0: none)
 * @property {string} reason  why the connection was lost, then the last attempt's failure
 * @property {string | undefined} failureCode  the last attempt's failure code (a grant source's refusal), if any
 * @property {StateDetail | null} sourceFailure  the microphone is gone for good: the stop under way ends in this
 * @property {number} maxReconnects
 */
/**
 * What happened (the driver's facts): `jitter` in [0, 1) and `bufferedMs` come with the inputs that may start an
 * attempt.
 * @typedef {{type: 'start'} | {type: 'source-opened'} | {type: 'connected'}
 *   | {type: 'client-failed', fatal: boolean, cause: import('./providers/protocol.js').ErrorCause, message: string,
 *      jitter: number, bufferedMs: number}
 *   | {type: 'client-closed', code: number, reason: string, clean: boolean, jitter: number, bufferedMs: number}
 *   | {type: 'attempt-failed', message: string, code?: string, retryable: boolean, jitter: number, bufferedMs: number}
 *   | {type: 'attempt-ready'}
 *   | {type: 'fail', message: string, code?: string}
 *   | {type: 'source-lost', message: string, code?: string}
 *   | {type: 'stop'} | {type: 'finished'} | {type: 'finish-failed'} | {type: 'stop-timeout', message: string}
 *   | {type: 'cancel'}} CoreInput
 */
/**
 * What the driver does, in order. 'terminal-loss': say the audio no final covered is lost (before the end: nothing
 * is said after it); 'release': the source, the clients, the grant requests and the grant (the session is over);
 * 'outage': drop the lost client, release its grant, say what the buffer could not keep; 'wait': then try a fresh
 * grant and a new client; 'wake': cut a backoff wait short (Stop during a reconnect); 'replay': the new client is
 * ready, send it the held audio; 'reconnected': say so, with what was replayed and lost; 'finish': the source's tail and the provider's last
 * finals; 'stop': begin a graceful stop.
 * @typedef {{type: 'to', state: SessionState, detail?: StateDetail}
 *   | {type: 'emit', event: import('./session.js').SessionEvent}
 *   | {type: 'terminal-loss'} | {type: 'release'} | {type: 'outage'} | {type: 'wake'}
 *   | {type: 'wait', attempt: number, delayMs: number} | {type: 'replay'} | {type: 'reconnected', attempt: number}
 *   | {type: 'cancel-client'} | {type: 'end-grant'} | {type: 'finish'} | {type: 'stop'}} Effect
 */

/**
 * The backoff before reconnect attempt `attempt` (1 for the first): replay.js's exponential backoff with full
 * jitter, from a jitter in [0, 1) the driver drew.
 * @param {number} attempt
 * @param {number} jitter
 */
export const reconnectDelay = (attempt, jitter) => backoffDelay(attempt - 1, { random: () => jitter });

/** @param {number} maxReconnects @returns {Core} */
export function initialCore(maxReconnects = 8) {
  return { state: 'idle', link: 'none', attempt: 0, reason: '', failureCode: undefined, sourceFailure: null, maxReconnects };
}

/**
 * @param {Core} core
 * @param {CoreInput} input
 * @returns {{core: Core, effects: Effect[]}}
 */
export function reduce(core, input) {
  if (isFinal(core.state)) return { core, effects: [] }; // nothing happens after the end
  switch (input.type) {
    case 'start':
      return core.state === 'idle' ? moved(core, 'starting') : unchanged(core);
    case 'source-opened':
      return core.state === 'starting' ? moved({ ...core, link: 'opening' }, 'connecting') : unchanged(core);
    case 'connected': {
      const up = { ...core, link: /** @type {Link} */ ('up') };
      return core.state === 'connecting' ? moved(up, 'streaming') : { core: up, effects: [] };
    }
    case 'client-failed':
      if (!input.fatal) return { core, effects: [{ type: 'emit', event: { type: 'error', message: input.message, fatal: false, cause: input.cause, code: input.cause } }] };
      // Only a connection that worked is replaced: a first connection that never became ready (Stop pressed while
      // it was opening, or not) is a start that failed, whatever the state.
      if ((input.cause === 'transport' || input.cause === 'expired') && core.link === 'up'
          && (core.state === 'streaming' || core.state === 'stopping')) {
        return lose(core, input.cause === 'expired' ? 'the access token expired' : input.message, [], input);
      }
      return end(core, { message: input.message, code: input.cause }, [
        { type: 'terminal-loss' },
        { type: 'emit', event: { type: 'error', message: input.message, fatal: true, cause: input.cause, code: input.cause } },
      ]);
    case 'client-closed': {
      const closed = { type: 'emit', event: { type: 'closed', code: input.code, reason: input.reason, clean: input.clean } };
      if (core.state === 'streaming' && core.link === 'up') {
        return lose(core, 'the provider ended the session on its own', [/** @type {Effect} */ (closed)], input);
      }
      return { core, effects: [/** @type {Effect} */ (closed)] };
    }
    case 'attempt-failed': {
      if (core.link !== 'lost') return unchanged(core);
      const failed = { ...core, reason: input.message, failureCode: input.code };
      return input.retryable ? next(failed, input) : giveUp(failed);
    }
    case 'attempt-ready': {
      if (core.link !== 'lost') return unchanged(core);
      const up = { ...core, link: /** @type {Link} */ ('up'), attempt: 0 };
      // The held audio first (live frames went to the buffer until now: the replay keeps their order), then the
      // state, then `reconnected` with what was replayed and lost.
      /** @type {Effect[]} */
      const effects = [{ type: 'replay' }];
      if (core.state === 'reconnecting') effects.push({ type: 'to', state: 'streaming' });
      effects.push({ type: 'reconnected', attempt: core.attempt });
      return { core: { ...up, state: core.state === 'reconnecting' ? 'streaming' : core.state }, effects };
    }
    case 'fail':
      return end(core, input.code ? { message: input.message, code: input.code } : { message: input.message }, [{ type: 'terminal-loss' }]);
    case 'source-lost': {
      if (core.state === 'stopping') return unchanged(core);
      const detail = input.code ? { message: input.message, code: input.code } : { message: input.message };
      // Lost before audio flowed: there are no words to wait for, and a stop from `starting` would say `stopped`
      // over a start that failed.
      if (core.state === 'starting') return end(core, detail, [{ type: 'terminal-loss' }]);
      return {
        core: { ...core, sourceFailure: detail },
        effects: [{ type: 'stop' }],
      };
    }
    case 'stop': {
      if (core.state === 'idle') return moved(core, 'stopped');
      if (core.state === 'stopping') return unchanged(core);
      if (core.state === 'starting') {
        // start() is waiting for the grant or the source: it sees the state and releases what it got.
        return {
          core: { ...core, state: 'stopped' },
          effects: [{ type: 'to', state: 'stopping' }, { type: 'cancel-client' }, { type: 'to', state: 'stopped' }, { type: 'end-grant' }],
        };
      }
      /** @type {Effect[]} */
      const stopping = [{ type: 'to', state: 'stopping' }];
      if (core.link === 'lost') stopping.push({ type: 'wake' });
      stopping.push({ type: 'finish' });
      return { core: { ...core, state: 'stopping' }, effects: stopping };
    }
    case 'finished':
      if (core.state !== 'stopping') return unchanged(core);
      // Released after the end like every other end: a source whose tail failed has not let go of itself.
      if (core.sourceFailure) return { core: { ...core, state: 'error' }, effects: [{ type: 'end-grant' }, { type: 'to', state: 'error', detail: core.sourceFailure }, { type: 'release' }] };
      return { core: { ...core, state: 'stopped' }, effects: [{ type: 'end-grant' }, { type: 'to', state: 'stopped' }, { type: 'release' }] };
    case 'finish-failed': {
      // The finish ran out of rounds (maxReconnects + 1 ends of stream, each followed by a lost connection): the
      // held audio never got its finals. Said lost, and the end is an error, never `stopped`.
      if (core.state !== 'stopping') return unchanged(core);
      const ends = core.maxReconnects + 1;
      return giveUp(core, `Could not finish: the connection was lost after ${ends === 1 ? 'the end of the stream' : `each of ${ends} ends of the stream`}`
        + ` (${core.reason}); the last words were not transcribed.`);
    }
    case 'stop-timeout':
      if (core.state !== 'stopping') return unchanged(core);
      return end(core, { message: input.message, code: 'stop_timeout' }, [
        { type: 'terminal-loss' },
        { type: 'emit', event: { type: 'error', message: input.message, fatal: true, cause: 'transport', code: 'stop_timeout' } },
      ]);
    case 'cancel': {
      // Audio held during an outage was never sent: cancelling throws it away, and that is said. (Audio already
      // sent is the user's to abandon: the words still in recognition are what Cancel means.)
      /** @type {Effect[]} */
      const cancelled = core.link === 'lost' ? [{ type: 'terminal-loss' }] : [];
      cancelled.push({ type: 'to', state: 'cancelled' }, { type: 'release' });
      return { core: { ...core, state: 'cancelled' }, effects: cancelled };
    }
    default:
      return unchanged(core);
  }
}

/** @param {Core} core @returns {{core: Core, effects: Effect[]}} */
const unchanged = (core) => ({ core, effects: [] });

/** @param {Core} core @param {SessionState} state @returns {{core: Core, effects: Effect[]}} */
const moved = (core, state) => ({ core: { ...core, state }, effects: [{ type: 'to', state }] });

/**
 * The session is over in `error`: what is said first, then the state, then everything released.
 * @param {Core} core @param {StateDetail} detail @param {Effect[]} before
 * @returns {{core: Core, effects: Effect[]}}
 */
function end(core, detail, before) {
  if (!TRANSITIONS[core.state].includes('error')) return unchanged(core); // idle: nothing began that could fail
  return { core: { ...core, state: 'error' }, effects: [...before, { type: 'to', state: 'error', detail }, { type: 'release' }] };
}

/**
 * A working connection is lost: replace it.
 * @param {Core} core @param {string} reason @param {Effect[]} before
 * @param {{jitter: number, bufferedMs: number}} facts
 */
function lose(core, reason, before, facts) {
  const lost = { ...core, link: /** @type {Link} */ ('lost'), attempt: 0, reason, failureCode: undefined };
  const step = next(lost, facts);
  /** @type {Effect[]} */
  const effects = [...before, { type: 'outage' }, ...step.effects];
  return { core: step.core, effects };
}

/**
 * The reconnect policy: the next attempt after a backoff (none while stopping: the user waits), or giving up
 * after maxReconnects.
 * @param {Core} core @param {{jitter: number, bufferedMs: number}} facts
 * @returns {{core: Core, effects: Effect[]}}
 */
function next(core, { jitter, bufferedMs }) {
  const attempt = core.attempt + 1;
  if (attempt > core.maxReconnects) return giveUp(core);
  const finishing = core.state === 'stopping';
  const delayMs = finishing ? 0 : reconnectDelay(attempt, jitter);
  const detail = { attempt, delayMs, bufferedMs, reason: core.reason };
  /** @type {Effect[]} */
  const effects = [];
  if (!finishing) effects.push({ type: 'to', state: 'reconnecting', detail });
  effects.push({ type: 'emit', event: { type: 'reconnecting', ...detail } }, { type: 'wait', attempt, delayMs });
  return { core: { ...core, attempt, state: finishing ? core.state : 'reconnecting' }, effects };
}

/** @param {Core} core @param {string} [message] @returns {{core: Core, effects: Effect[]}} */
function giveUp(core, message = `Could not reconnect: ${core.reason}`) {
  // The state's code is the last refusal's when the grant source gave one (say 'rate_limited'): what to act on.
  return end(core, { message, code: core.failureCode ?? 'reconnect_failed' }, [
    { type: 'terminal-loss' },
    { type: 'emit', event: { type: 'error', message, fatal: true, cause: 'transport', code: 'reconnect_failed' } },
  ]);
}
