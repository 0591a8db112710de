// The page's logic without the page: recordings (runs) of one transcript, what each session reports, and what the
// view is told to show. No DOM, no network of its own: the Session factory, the file source and the view are
// handed in, so all of it runs under Node.
//
// One transcript can hold several recordings (Start again, or a file): each recording's times run on from where
// the previous one ended, so the transcript and its exports keep one ordered clock. clear() starts afresh.
//
// Hooks for what builds on the page (storage, history, shared captions): listen({onRunStart, onFinal, onPartial,
// onRunEnd, onClear}).
import { LatencyTracker } from '../latency.js';
import { DEFAULT_STOP_TIMEOUT_MS } from '../lifecycle.js';
import { formatTime } from './format.js';
import { isFallbackWarning, tidyRough, unfinishedSegment } from './rough.js';

/** @typedef {import('../session.js').Session} Session */
/** @typedef {import('../session.js').SessionOptions} SessionOptions */
/** @typedef {import('../session.js').SessionEvent} SessionEvent */
/** @typedef {import('../session.js').SourceOptions} SourceOptions */
/** @typedef {import('../session.js').CaptureLike} CaptureLike */
/** @typedef {import('../session.js').Level} Level */
/** @typedef {import('../session-state.js').SessionState} SessionState */
/** @typedef {import('../session-state.js').StateDetail} StateDetail */
/** @typedef {import('../latency.js').Metric} Metric */
/** @typedef {{firstInterim: Metric, finalLag: Metric}} LatencyStats */
/** @typedef {{text: string, startMs: number, endMs: number}} Word */

/**
 * A final on the transcript's clock. `rough`: the engine gave it without its better pass (see rough.js).
 * @typedef {{text: string, startMs: number|null, endMs: number|null, words: Word[], estimated: boolean, rough?: boolean}} Segment
 */

/** What the state line shows (the `data-state` of #state). @typedef {'idle'|'starting'|'connecting'|'streaming'|'reconnecting'|'finishing'|'error'} PageState */

/** How a run ended. @typedef {'stopped'|'cancelled'|'error'} RunOutcome */

/**
 * Everything the controller asks of the page.
 * @typedef {object} PageView
 * @property {(state: PageState, detail?: string) => void} showState
 * @property {(running: boolean) => void} setRunning
 * @property {(hasText: boolean, running: boolean) => void} updateToolbar
 * @property {(text: string) => void} setInterim
 * @property {(segment: Segment, approxStartMs: number | null) => void} addFinal
 * @property {(label: string) => void} addBreak
 * @property {() => void} clearTranscript
 * @property {(message: string) => void} showError
 * @property {(message: string, kind?: 'warning'|'info', key?: string) => void} addWarning  a warning with a key
 *   replaces the one shown with the same key (a figure that grows stays one line)
 * @property {() => void} clearWarnings
 * @property {(db: number | null) => void} showLevel
 * @property {(message: string) => void} showLevelWarning
 * @property {(stats: LatencyStats) => void} showLatency
 * @property {(usd: number | null) => void} showCost
 * @property {(message: string) => void} showWaiting  what the page waits for while nothing has come back ('' hides it)
 */

/**
 * What Start asks for.
 * @typedef {object} RunRequest
 * @property {string} provider
 * @property {string} providerLabel
 * @property {string} [tag]
 * @property {string} [deviceId]
 * @property {boolean} [echoCancellation]
 * @property {boolean} [noiseSuppression]
 * @property {boolean} [autoGainControl]
 * @property {File} [file]               transcribe a file instead of the microphone
 * @property {AudioContext} [audioContext]  made (and resumed) inside the click, for Safari; closed when the run ends
 */

/**
 * One recording: a Session and what the page tracks about it.
 * @typedef {object} Run
 * @property {Session} session
 * @property {'mic'|'file'} mode
 * @property {string} label           shown in the state line
 * @property {number} offsetMs        where this recording starts on the transcript's clock
 * @property {LatencyTracker} latency
 * @property {number | null} utteranceAtMs  audio clock at the current utterance's first interim
 * @property {AudioContext | undefined} audioContext
 * @property {RunOutcome | null} outcome  set once the run is over
 * @property {boolean} roughNext  the engine said its next final is the fast pass's text
 * @property {boolean} gotWords  an interim or final has come back
 * @property {number | null} heardAt  (now()) when sound was first heard while streaming, until words come back
 * @property {string} interim  the words on screen that are not final yet ('' when none)
 */

/**
 * @typedef {object} RunListener  what builds on the page (storage, history) hooks in here
 * @property {(run: Run) => void} [onRunStart]
 * @property {(segment: Segment, run: Run) => void} [onFinal]
 * @property {(text: string, run: Run) => void} [onPartial]  the line being recognised changed (shared captions);
 *   '' when an empty final or a Cancel ended it
 * @property {(run: Run, outcome: RunOutcome) => void} [onRunEnd]
 * @property {() => void} [onClear]  the user cleared the transcript
 */

/**
 * @typedef {object} ControllerDeps
 * @property {PageView} view
 * @property {(options: SessionOptions) => Session} createSession
 * @property {(file: File, options: SourceOptions & {onEnded: () => void, onError: (err: Error) => void})
 *   => Promise<CaptureLike>} startFileSource
 * @property {() => number} [now]  ms, monotonic (default performance.now)
 * @property {() => Date} [date]   the wall clock, for a transcript's default title
 * @property {number} [finishMaxMs]  the most Stop waits for the last words (default: the session's stop bound,
 *   DEFAULT_STOP_TIMEOUT_MS; the provider client's own finish timeout restarts with each message and, run out while
 *   stopping, reconnects and replays within that bound)
 */

// A level this long at digital zero means a muted or wrong device, not a pause in speech.
export const NO_INPUT_MS = 3000;
// The clipping warning stays up this long after the last clipped block, so it can be read.
export const CLIP_HOLD_MS = 2000;
const CLIP_PEAK = 0.999;
// The loss figure of a run is one warning, updated in place: it only grows.
const LOSS_WARNING = 'loss';

/** @param {unknown} err */
export const messageOf = (err) => (err instanceof Error ? err.message : String(err)) || 'Something went wrong.';

/** @param {number} linear peak or RMS in [0, 1] @returns {number} dBFS, floored at -90 */
export function toDbfs(linear) {
  return linear > 0 ? Math.max(-90, 20 * Math.log10(linear)) : -90;
}

// Below this a wait is not worth a word: most starts are quicker.
export const QUIET_WAIT_MS = 1000;
// A start still waiting this long is most likely waiting for the user to answer the microphone prompt.
export const PROMPT_HINT_MS = 8000;
// Speech heard this long with no words back: the page says the words are on their way.
export const NOTHING_BACK_MS = 1500;
// A level above this (dBFS RMS) counts as sound for "hearing you" (speech is about -30; a quiet room below -60).
const SOUND_DB = -50;

/** @param {number} ms */
const seconds = (ms) => `${Math.max(0, Math.floor(ms / 1000))} s`;

/**
 * What the state line says for a session state: the page renders from this alone.
 * @param {SessionState} state
 * @param {StateDetail} detail
 * @param {{mode: 'mic'|'file', label: string, engineLabel?: string, fileName?: string}} run
 * @param {{elapsedMs?: number, finishMaxMs?: number}} [wait]  how long this state has lasted; the most Stop waits
 * @returns {{state: PageState, detail?: string}}
 */
export function pageStatus(state, detail, run, wait = {}) {
  const elapsed = wait.elapsedMs ?? 0;
  const engine = run.engineLabel || run.label;
  switch (state) {
    case 'idle':
      return { state: 'idle' };
    case 'starting':
      if (run.fileName) return { state: 'starting', detail: `decoding ${run.fileName}` };
      if (elapsed >= PROMPT_HINT_MS) {
        // A browser may leave its microphone prompt unanswered for good (Firefox's panel, dismissed by a click
        // elsewhere, stays pending): the wait is the user's to end, so say how.
        return {
          state: 'starting',
          detail: `opening the microphone, ${seconds(elapsed)}: answer the browser's prompt (or its microphone icon in the address bar), or Cancel`,
        };
      }
      return { state: 'starting', detail: elapsed >= QUIET_WAIT_MS ? `opening the microphone, ${seconds(elapsed)}` : undefined };
    case 'connecting':
      // The offline engine's first session in a fresh process loads its models: seconds, not a hang.
      return { state: 'connecting', detail: elapsed >= QUIET_WAIT_MS ? `waiting for ${engine} to get ready, ${seconds(elapsed)}` : undefined };
    case 'streaming':
      return { state: 'streaming', detail: run.label };
    case 'reconnecting': {
      const wait = (detail.delayMs ?? 0) >= 1000 ? ` in ${Math.round((detail.delayMs ?? 0) / 1000)} s` : '';
      const held = `${((detail.bufferedMs ?? 0) / 1000).toFixed(1)} s of audio held`;
      return { state: 'reconnecting', detail: `attempt ${detail.attempt ?? 1}${wait}; ${held}` };
    }
    case 'stopping': {
      // What Stop waits for and for how long at most, so a few seconds of "Finishing" are not a mystery.
      const most = wait.finishMaxMs ? `, at most ${seconds(wait.finishMaxMs)}` : '';
      return { state: 'finishing', detail: `waiting for the last words from ${engine} (${seconds(elapsed)}${most})` };
    }
    case 'error':
      return { state: 'error' };
    case 'stopped':
    case 'cancelled':
    default:
      return { state: 'idle' };
  }
}

export class RunController {
  /** @param {ControllerDeps} deps */
  constructor(deps) {
    this.view = deps.view;
    this.createSession = deps.createSession;
    this.startFileSource = deps.startFileSource;
    this.now = deps.now ?? (() => performance.now());
    this.date = deps.date ?? (() => new Date());
    this.finishMaxMs = deps.finishMaxMs ?? DEFAULT_STOP_TIMEOUT_MS;
    /** @type {{state: SessionState, detail: StateDetail, status: {mode: 'mic'|'file', label: string, engineLabel?: string, fileName?: string}, since: number} | null} */
    this.shown = null;
    /** @type {ReturnType<typeof setInterval> | null} re-renders a waiting state line every second */
    this.waitTimer = null;
    /** @type {Run | null} */
    this.run = null;
    /** @type {Run | null} the last run, for diagnostics after it ended */
    this.lastRun = null;
    /** @type {Segment[]} finals on the transcript's clock */
    this.segments = [];
    /** End of the last finished recording on the transcript's clock. */
    this.endMs = 0;
    this.title = '';
    /** @type {string[]} the engines whose finals are in the transcript, in the order first used */
    this.engines = [];
    this.silentSince = 0;
    this.clippedAt = -Infinity;
    this.lastError = '';
    /** @type {Set<RunListener>} */
    this.listeners = new Set();
    /** The transcript was put back by restore(): the next Start begins a fresh one instead of adding to it. */
    this.restored = false;
  }

  /** @param {RunListener} listener @returns {() => void} unsubscribes */
  listen(listener) {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /**
   * @template {keyof RunListener} K
   * @param {K} name
   * @param {Parameters<NonNullable<RunListener[K]>>} args
   */
  notify(name, ...args) {
    for (const listener of this.listeners) {
      const fn = /** @type {((...a: unknown[]) => void) | undefined} */ (listener[name]);
      try {
        fn?.(...args);
      } catch (err) {
        console.error(`page ${name} listener failed`, err);
      }
    }
  }

  get running() {
    return this.run !== null;
  }

  /** @param {Run} run @param {number} ms on the recording's clock */
  onTranscriptClock(run, ms) {
    return run.offsetMs + ms;
  }

  /** @param {Run} run */
  audioMs(run) {
    const ms = run.session.audioMs;
    return typeof ms === 'number' && Number.isFinite(ms) ? ms : 0;
  }

  /**
   * Start a recording. Resolves once audio flows (or the run has ended with an error, which the view shows).
   * @param {RunRequest} request
   */
  async start(request) {
    if (this.run) return;
    if (this.restored) this.reset();
    this.view.showError('');
    this.view.clearWarnings();
    this.lastError = '';
    const file = request.file;
    /** @type {'mic'|'file'} */
    const mode = file ? 'file' : 'mic';
    const label = file ? `transcribing ${file.name}` : request.providerLabel;
    const status = { mode, label, engineLabel: request.providerLabel, fileName: file ? file.name : undefined };
    /** @type {Run | null} the run the session's callbacks belong to; they fire only after it is made */
    let self = null;
    const session = this.createSession({
      provider: request.provider,
      tag: request.tag,
      deviceId: request.deviceId,
      echoCancellation: request.echoCancellation,
      noiseSuppression: request.noiseSuppression,
      autoGainControl: request.autoGainControl,
      audioContext: request.audioContext,
      createSource: file ? (o) => this.startFileSource(file, {
        ...o,
        onEnded: () => { if (self && this.run === self) this.stop(); },
        onError: (err) => { if (self) this.fail(self, err.message); },
      }) : undefined,
      onEvent: (event) => { if (self) this.onEvent(self, event); },
      onStateChange: (_from, to, detail) => { if (self) this.onState(self, to, detail, status); },
      onLevel: (level) => { if (self) this.onLevel(self, level); },
    });
    /** @type {Run} */
    const run = {
      session,
      mode,
      label,
      offsetMs: this.endMs,
      latency: new LatencyTracker(),
      utteranceAtMs: null,
      audioContext: request.audioContext,
      outcome: null,
      roughNext: false,
      gotWords: false,
      heardAt: null,
      interim: '',
    };
    self = run;
    if (this.segments.length) {
      this.view.addBreak(file ? `${file.name}, from ${formatTime(run.offsetMs)}` : `New recording, from ${formatTime(run.offsetMs)}`);
    }
    if (!this.title) {
      this.title = file ? file.name.replace(/\.[^.]+$/, '') : `transcript-${this.date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}`;
    }
    this.view.showLatency(run.latency.stats());
    this.view.showCost(null);
    this.run = run;
    this.view.setRunning(true);
    this.updateToolbar();
    this.notify('onRunStart', run);
    try {
      await run.session.start();
    } catch (err) {
      if (run.outcome) return;
      this.lastError = messageOf(err);
      this.view.showError(this.lastError);
      this.endRun(run, 'error');
    }
  }

  /**
   * The session's state is the page's: the state line follows it, and a final state ends the run.
   * @param {Run} run
   * @param {SessionState} state
   * @param {StateDetail} detail
   * @param {{mode: 'mic'|'file', label: string, fileName?: string}} status
   */
  onState(run, state, detail, status) {
    if (run.outcome) return;
    if (state === 'error') {
      if (detail.message && !this.lastError) {
        this.lastError = detail.message;
        this.view.showError(detail.message);
      }
      this.endRun(run, 'error');
      return;
    }
    if (state === 'stopped' || state === 'cancelled') {
      this.endRun(run, state);
      return;
    }
    this.shown = { state, detail, status, since: this.now() };
    this.renderState();
    const waiting = state === 'starting' || state === 'connecting' || state === 'stopping';
    if (waiting && !this.waitTimer) {
      this.waitTimer = setInterval(() => this.renderState(), 1000);
      // Under Node (the tests) a forgotten run must not keep the process alive.
      const timer = /** @type {unknown} */ (this.waitTimer);
      if (typeof timer === 'object' && timer !== null && 'unref' in timer && typeof timer.unref === 'function') timer.unref();
    } else if (!waiting) {
      this.stopWaitTimer();
    }
  }

  /** The state line for the current state, with how long it has lasted. */
  renderState() {
    const shown = this.shown;
    if (!shown || !this.run) return;
    const page = pageStatus(shown.state, shown.detail, shown.status, {
      elapsedMs: this.now() - shown.since, finishMaxMs: this.finishMaxMs,
    });
    this.view.showState(page.state, page.detail);
  }

  stopWaitTimer() {
    if (this.waitTimer) clearInterval(this.waitTimer);
    this.waitTimer = null;
  }

  /** @param {Run} run @param {SessionEvent & {atMs?: number}} event */
  onEvent(run, event) {
    if (run.outcome) return;
    const at = typeof event.atMs === 'number' ? event.atMs : this.audioMs(run);
    run.latency.onAudio(at);
    // Without provider times (Wiro) latency is measured from the level detector's speech start and end instead.
    // Latency is measured against the provider's own times only: an estimate would measure the estimate.
    const latencyTimes = (/** @type {{startMs: number|null, endMs: number|null, timing?: string}} */ e) => (e.timing === 'estimated' ? { startMs: null, endMs: null } : e);
    switch (event.type) {
      case 'partial':
        if (event.text.trim()) this.gotWords(run);
        if (run.utteranceAtMs === null) run.utteranceAtMs = at;
        run.latency.onPartial(latencyTimes(event), at);
        this.view.showLatency(run.latency.stats());
        run.interim = event.text;
        this.view.setInterim(event.text);
        this.notify('onPartial', event.text, run);
        break;
      case 'final': {
        // An empty final is silence the provider has finished with: no utterance, so no latency to measure.
        if (event.text.trim()) {
          this.gotWords(run);
          run.latency.onFinal(latencyTimes(event), at);
          this.view.showLatency(run.latency.stats());
        }
        const shift = (/** @type {number|null} */ t) => (typeof t === 'number' ? this.onTranscriptClock(run, t) : null);
        /** @type {Segment} */
        const segment = {
          text: event.text,
          startMs: shift(event.startMs),
          endMs: shift(event.endMs),
          words: (event.words || []).map((w) => ({
            text: w.text, startMs: this.onTranscriptClock(run, w.startMs), endMs: this.onTranscriptClock(run, w.endMs),
          })),
          // The provider adapter said where these times come from; the page only carries it on.
          estimated: event.timing === 'estimated',
        };
        // The fallback warning came just before this final: it is the rough one.
        if (run.roughNext && segment.text.trim()) {
          segment.rough = true;
          segment.text = tidyRough(segment.text);
        }
        run.roughNext = false;
        this.addFinal(run, segment);
        break;
      }
      case 'warning':
        // A fallback is said on the final it concerns (a quiet mark), not as a banner per final.
        if (isFallbackWarning(event.message)) run.roughNext = true;
        else this.view.addWarning(event.message);
        break;
      case 'source':
        this.view.addWarning(event.message, event.recovered ? 'info' : 'warning');
        break;
      case 'reconnected': {
        const replayed = `${(event.replayedMs / 1000).toFixed(1)} s of audio were sent again`;
        if (event.droppedMs > 0) {
          this.view.addWarning(`Reconnected: ${replayed}; ${(event.droppedMs / 1000).toFixed(1)} s could not be kept, `
            + 'so the transcript has a gap.', 'warning', LOSS_WARNING);
        } else {
          this.view.addWarning(`Reconnected: ${replayed}, so nothing was lost.`, 'info');
        }
        break;
      }
      case 'dropped':
        this.view.addWarning(`${(event.droppedMs / 1000).toFixed(1)} s of audio could not be kept while disconnected: `
          + 'the transcript has a gap there.', 'warning', LOSS_WARNING);
        break;
      case 'error':
        // A fatal one is followed by the session's `error` state, which ends the run.
        this.lastError = event.message;
        this.view.showError(event.message);
        break;
      case 'cost':
        if (typeof event.cumulativeCost === 'number') this.view.showCost(event.cumulativeCost);
        break;
      default:
        break;
    }
  }

  /**
   * Show a final and keep it (the listeners save it); the current utterance is over.
   * @param {Run} run @param {Segment} segment
   */
  addFinal(run, segment) {
    // Without provider times the audio clock at the first interim is the best guess at where it started.
    const approx = this.utteranceStart(run);
    const hadInterim = run.interim.trim() !== '';
    run.utteranceAtMs = null;
    run.interim = '';
    this.view.addFinal(segment, approx);
    if (segment.text.trim()) {
      this.segments.push(segment);
      if (!this.engines.includes(run.session.provider)) this.engines.push(run.session.provider);
      this.updateToolbar();
      this.notify('onFinal', segment, run);
    } else if (hadInterim) {
      // The engine dropped the words on screen (noise): no final replaces them for the listeners, so they are told
      // the line is empty, or a saved copy would bring them back after a crash and viewers would keep seeing them.
      this.notify('onPartial', '', run);
    }
  }

  /**
   * Where the current utterance began on the transcript's clock: the audio clock at its first interim (null before).
   * @param {Run} run
   */
  utteranceStart(run) {
    return run.utteranceAtMs === null ? null : this.onTranscriptClock(run, run.utteranceAtMs);
  }

  /** Words came back: the "on their way" line has done its job. @param {Run} run */
  gotWords(run) {
    if (run.gotWords) return;
    run.gotWords = true;
    run.heardAt = null;
    this.view.showWaiting('');
  }

  /** @param {Run} run @param {Level} level */
  onLevel(run, level) {
    if (run.outcome) return;
    run.latency.onLevel(level.rms, this.audioMs(run));
    this.view.showLevel(toDbfs(level.rms));
    const now = this.now();
    // Audio flows and nothing has come back yet: say so, so a silent transcript is not taken for a dead one.
    if (!run.gotWords && this.shown?.state === 'streaming') {
      if (run.heardAt === null && toDbfs(level.rms) > SOUND_DB) run.heardAt = now;
      if (run.heardAt !== null && now - run.heardAt >= NOTHING_BACK_MS) {
        this.view.showWaiting(`Hearing you: ${run.mode === 'file' ? 'the file is being sent' : 'audio is reaching'} `
          + `${this.shown.status.engineLabel || run.label}; the first words are on their way…`);
      }
    }
    this.silentSince = level.silent ? (this.silentSince || now) : 0;
    if (level.peak >= CLIP_PEAK) this.clippedAt = now;
    if (now - this.clippedAt < CLIP_HOLD_MS) {
      this.view.showLevelWarning('The input is clipping: move back from the microphone or lower its gain.');
    } else if (run.mode === 'mic' && this.silentSince && now - this.silentSince > NO_INPUT_MS) {
      this.view.showLevelWarning('No input: the microphone delivers digital silence. Is it muted, or is another device selected?');
    } else {
      this.view.showLevelWarning('');
    }
  }

  /**
   * The run is over (stopped, cancelled or failed): the page is ready for the next one.
   * @param {Run} run @param {RunOutcome} outcome
   */
  endRun(run, outcome) {
    if (run.outcome) return;
    run.outcome = outcome;
    this.endMs = Math.max(this.endMs, this.onTranscriptClock(run, this.audioMs(run)));
    this.lastRun = run;
    if (this.run === run) this.run = null;
    this.stopWaitTimer();
    this.shown = null;
    this.view.showWaiting('');
    if (run.audioContext && run.audioContext.state !== 'closed') run.audioContext.close().catch(() => {});
    // Words on screen that no final replaced (the connection failed, or the engine did not finish in time) stay,
    // marked rough, rather than vanish with the interim line. Cancel means the user let them go.
    if (outcome !== 'cancelled' && run.interim.trim()) this.addFinal(run, unfinishedSegment(run.interim, this.utteranceStart(run)));
    else if (run.interim.trim()) {
      // No final replaces them: the listeners are told the line is gone, or shared captions would go on showing
      // the cancelled words as the line being said.
      run.interim = '';
      this.notify('onPartial', '', run);
    }
    this.view.setInterim('');
    this.view.showLevel(null);
    this.view.showLevelWarning('');
    this.silentSince = 0;
    this.view.showState(outcome === 'error' ? 'error' : 'idle');
    this.view.setRunning(false);
    this.updateToolbar();
    this.notify('onRunEnd', run, outcome);
  }

  /**
   * Something outside the session failed (a file that cannot be read): abandon the session, show why.
   * @param {Run} run @param {string} message
   */
  fail(run, message) {
    if (run.outcome) return;
    this.lastError = message;
    this.view.showError(message);
    // Ended first, so the session's own `cancelled` does not decide how this run is remembered.
    this.endRun(run, 'error');
    run.session.cancel();
  }

  /** Stop: the last words are waited for. */
  async stop() {
    const run = this.run;
    if (!run || run.outcome) return;
    try {
      await run.session.stop();
    } catch (err) {
      this.lastError = messageOf(err);
      this.view.showError(this.lastError);
      this.endRun(run, 'error');
    }
  }

  cancel() {
    const run = this.run;
    if (!run || run.outcome) return;
    run.session.cancel();
    this.endRun(run, 'cancelled');
    this.view.addWarning('Cancelled: the words still being recognised were discarded.', 'info');
  }

  /** @returns {boolean} whether the transcript was cleared (not while recording) */
  clear() {
    if (this.run) return false;
    this.reset();
    this.notify('onClear');
    return true;
  }

  /** Empty the transcript without telling the listeners (they decide what a cleared transcript means). */
  reset() {
    if (this.run) return;
    this.segments = [];
    this.endMs = 0;
    this.title = '';
    this.engines = [];
    this.restored = false;
    this.view.clearTranscript();
    this.view.showCost(null);
    this.updateToolbar();
  }

  /**
   * Put a saved transcript back on the page (after a reload or crash mid-recording). It can be exported and
   * cleared like any other; the next Start begins a new transcript rather than adding to it.
   * @param {{segments: Segment[], endMs: number, title: string, engines?: string[]}} transcript  engines: the ones
   *   that made it, in the order first used (the saved session's)
   * @returns {boolean} whether it was put back (not while recording, nor over a transcript already on the page)
   */
  restore(transcript) {
    if (this.run || this.segments.length) return false;
    this.reset();
    for (const segment of transcript.segments) {
      if (!segment.text.trim()) continue;
      this.view.addFinal(segment, null);
      this.segments.push(segment);
    }
    this.endMs = transcript.endMs;
    this.title = transcript.title;
    this.engines = [...(transcript.engines ?? [])];
    this.restored = true;
    this.updateToolbar();
    return true;
  }

  updateToolbar() {
    this.view.updateToolbar(this.segments.length > 0, this.run !== null);
  }

  /**
   * The export's metadata. `provider` names the engine that made the transcript, as a saved session's export does
   * (the last of those first used), not the one chosen now: that may have changed since.
   */
  exportMeta() {
    const running = this.run ? this.onTranscriptClock(this.run, this.audioMs(this.run)) : 0;
    const lastEnd = this.segments.reduce((m, s) => Math.max(m, s.endMs ?? 0), 0);
    return {
      title: this.title,
      durationMs: Math.max(this.endMs, running, lastEnd),
      provider: this.engines[this.engines.length - 1] ?? '',
      exportedAt: this.date().toISOString(),
    };
  }
}

/**
 * Start a run from a click or key press. Safari lets audio start only inside the user's gesture, and a context
 * made after an await (the grant, the microphone prompt) stays suspended there: so the context is made and
 * resumed here, synchronously, and handed down. A file needs none.
 * @param {RunController} controller
 * @param {RunRequest} request
 * @param {() => AudioContext | undefined} openAudioContext  makes the context and calls resume() on it
 * @returns {Promise<void>} the run's start
 */
export function startFromGesture(controller, request, openAudioContext) {
  if (controller.running) return Promise.resolve();
  let audioContext;
  if (!request.file) {
    try {
      audioContext = openAudioContext();
    } catch {
      // No Web Audio here (or too many contexts): capture reports that with its own clear message.
      audioContext = undefined;
    }
  }
  return controller.start({ ...request, audioContext });
}
