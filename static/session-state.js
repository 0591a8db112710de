// The one state a transcription session is in, and every move it may make. Pure: no DOM, no timers.
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
