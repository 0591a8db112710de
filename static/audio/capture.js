// Microphone capture: getUserMedia -> AudioContext at the device's own rate -> "pcm-processor" worklet -> frames.
// The context rate is never forced: Firefox refuses to connect a microphone to a context of another rate, and
// Bluetooth headsets switch rates; the worklet resamples with a real anti-aliasing filter instead.

import { checkPipeline } from './pcm.js';

/** @typedef {'unsupported'|'insecure'|'denied'|'no-device'|'busy'|'suspended'|'failed'} CaptureErrorCode */
/** @typedef {import('./pcm.js').ProcessorMessage} ProcessorMessage */
/** @typedef {import('./pcm.js').NodeMessage} NodeMessage */
/** @typedef {import('./pcm.js').Level} Level */

/** How long a context may take to resume before the page says why audio does not start. */
export const RESUME_TIMEOUT_MS = 3000;

export class CaptureError extends Error {
  /** @param {CaptureErrorCode} code @param {string} message @param {unknown} [cause] */
  constructor(code, message, cause) {
    super(message);
    this.name = 'CaptureError';
    this.code = code;
    this.cause = cause;
  }
}

/**
 * @typedef {object} CaptureOptions
 * @property {number} outRate            provider rate in Hz (16000 Truebar/local, 24000 Wiro)
 * @property {number} frameSamples       samples per frame at outRate (1600 = 100 ms at 16 kHz)
 * @property {string} [deviceId]         a specific microphone; default: the system's
 * @property {boolean} [echoCancellation] browser processing; off by default: speech engines want the raw signal
 * @property {boolean} [noiseSuppression]
 * @property {boolean} [autoGainControl]
 * @property {(pcm: Int16Array, seq: number) => void} onFrame
 * @property {(level: Level) => void} [onLevel]
 * @property {(reason: string, kind: 'ended'|'suspended'|'closed'|'interrupted'|'failed') => void} [onInterrupted]
 *   the device went away (ended), audio processing stopped running (the context's state) or the worklet threw
 *   (failed: a new one, built the same way, would too)
 * @property {string} [workletUrl]
 * @property {AudioContext} [context]    the caller's (made inside a click, for Safari); it is not closed here
 * @property {MediaStream} [stream]      the caller's microphone stream; its tracks are not stopped here
 * @property {number} [resumeTimeoutMs]  default RESUME_TIMEOUT_MS
 */

/** @param {unknown} v @returns {v is number} */
const isCount = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** @param {unknown} v @returns {v is number} */
const isMagnitude = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * A message from the worklet's port (the vocabulary ./pcm.js types), or null when `data` is not one of them: only
 * the worklet posts there, so a null is a bug, ignored rather than let through as undefined fields and NaN.
 * @param {unknown} data  MessageEvent.data
 * @returns {ProcessorMessage | null}
 */
export function parseProcessorMessage(data) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const m = /** @type {Record<string, unknown>} */ (data);
  switch (m.type) {
    case 'frame':
      // Whole 16-bit samples, or Int16Array would throw.
      return m.pcm instanceof ArrayBuffer && m.pcm.byteLength % 2 === 0 && isCount(m.seq)
        ? { type: 'frame', pcm: m.pcm, seq: m.seq } : null;
    case 'level':
      return isMagnitude(m.rms) && isMagnitude(m.peak) && typeof m.silent === 'boolean'
        ? { type: 'level', rms: m.rms, peak: m.peak, silent: m.silent } : null;
    case 'flushed':
      return isCount(m.frames) && isCount(m.inSamples) ? { type: 'flushed', frames: m.frames, inSamples: m.inSamples } : null;
    default:
      return null;
  }
}

/** Post to the worklet, in its vocabulary. @param {MessagePort} port @param {NodeMessage} message */
const tell = (port, message) => port.postMessage(message);

/** @param {unknown} err @returns {CaptureError} */
export function describeMediaError(err) {
  const name = err && typeof err === 'object' && 'name' in err ? String(err.name) : '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return new CaptureError('denied',
        'Microphone permission was denied. Allow the microphone for this site (the icon in the address bar) and press Start again.', err);
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return new CaptureError('no-device', 'No microphone was found. Plug one in or pick another in the list, then press Start again.', err);
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return new CaptureError('busy', 'The microphone could not be opened: another application may be using it.', err);
    default:
      return new CaptureError('failed', `The microphone could not be started (${name || 'unknown error'}).`, err);
  }
}

/** Throws a CaptureError when this browser or page cannot capture at all. */
export function checkSupport() {
  if (typeof window !== 'undefined' && window.isSecureContext === false) {
    throw new CaptureError('insecure', 'The microphone needs a secure page: open this app over HTTPS or on localhost.');
  }
  if (typeof navigator === 'undefined' || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CaptureError('unsupported', 'This browser cannot capture the microphone (no getUserMedia). Update it to a current version.');
  }
  const AC = globalThis.AudioContext;
  if (!AC || !('audioWorklet' in AC.prototype) || typeof globalThis.AudioWorkletNode === 'undefined') {
    throw new CaptureError('unsupported', 'This browser has no AudioWorklet. Update it to a current version.');
  }
}

/**
 * A new AudioContext at the device's own rate, asked to start at once. Call it synchronously inside a click or
 * key handler, before any await: Safari starts audio only from the user's gesture itself.
 * @param {typeof AudioContext} [AC]
 * @returns {AudioContext | undefined}  undefined when there is no Web Audio (capture then says so)
 */
export function openAudioContext(AC = globalThis.AudioContext) {
  if (typeof AC !== 'function') return undefined;
  const context = new AC({ latencyHint: 'interactive' });
  context.resume().catch(() => {});
  return context;
}

/**
 * Resume `context`, or fail with a message that says what to do, within `ms`: a resume() that never settles
 * (Safari outside a gesture, iOS during a call) must not hang Start.
 * @param {AudioContext} context
 * @param {number} ms
 */
export async function resumeContext(context, ms) {
  if (context.state === 'running') return;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); });
  try {
    const outcome = await Promise.race([context.resume().then(() => 'resumed'), timedOut]);
    if (outcome === 'timeout' || /** @type {string} */ (context.state) !== 'running') {
      throw new CaptureError('suspended', 'The browser did not let audio processing start '
        + `(it is ${context.state}). Press Start again; on a phone, end any call or other audio first.`);
    }
  } catch (err) {
    if (err instanceof CaptureError) throw err;
    throw new CaptureError('suspended', `The browser did not let audio processing start: ${err instanceof Error ? err.message : String(err)}`, err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Take the source and the worklet out of the graph and stop the worklet: a disconnected AudioWorkletNode keeps
 * running (its process() is still called) until it says it is done, and only its port can tell it to.
 * @param {AudioNode | null} source
 * @param {AudioWorkletNode | null} node
 */
function detach(source, node) {
  try { source?.disconnect(); } catch { /* already disconnected */ }
  if (!node) return;
  try { node.disconnect(); } catch { /* already disconnected */ }
  node.port.onmessage = null;
  try { tell(node.port, { type: 'stop' }); } catch { /* port closed with its context */ }
}

/** Contexts the worklet module was added to: adding it again is not needed (and some browsers refuse). */
const workletReady = new WeakSet();

export class Capture {
  /**
   * @param {MediaStream} stream @param {AudioContext} context @param {AudioWorkletNode} node
   * @param {MediaStreamAudioSourceNode} source
   * @param {{ownsStream: boolean, ownsContext: boolean}} [owns]  what release() may stop and close
   */
  constructor(stream, context, node, source, owns = { ownsStream: true, ownsContext: true }) {
    this.stream = stream;
    this.context = context;
    this.node = node;
    this.source = source;
    this.owns = owns;
    const track = stream.getAudioTracks()[0];
    this.deviceLabel = track ? track.label : '';
    this.deviceSettings = track && track.getSettings ? track.getSettings() : {};
    this.contextRate = context.sampleRate;
    this.framesPosted = 0;
    /** @type {Promise<{frames: number, inSamples: number}> | null} */
    this.stopping = null;
    this.released = false;
    /** Removes the listeners startCapture put on the stream's tracks and the context (a caller's outlive us). */
    this.unlisten = () => {};
  }

  /** Flush the resampler's tail (its frames reach onFrame before this resolves), then release everything. */
  stop() {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      /** @type {{frames: number, inSamples: number}} */
      let totals = { frames: this.framesPosted, inSamples: 0 };
      // Released (cancel, or a device switch closing the context: its state reads 'running' until close()
      // resolves), the worklet was told to stop and would never answer a flush.
      if (!this.released && this.context.state !== 'closed') {
        totals = await new Promise((resolve) => {
          const timer = setTimeout(() => resolve({ frames: this.framesPosted, inSamples: 0 }), 2000);
          this.node.port.addEventListener('message', (event) => {
            const msg = parseProcessorMessage(event.data);
            if (msg?.type === 'flushed') {
              clearTimeout(timer);
              resolve({ frames: msg.frames, inSamples: msg.inSamples });
            }
          });
          tell(this.node.port, { type: 'flush' });
        });
      }
      await this.release();
      return totals;
    })();
    return this.stopping;
  }

  /** Stop tracks and close the context without flushing (cancel, errors). Idempotent.
   * @returns {Promise<void>} resolves when the context is closed */
  release() {
    this.released = true;
    this.unlisten();
    if (this.owns.ownsStream) for (const track of this.stream.getTracks()) track.stop();
    detach(this.source, this.node);
    if (!this.owns.ownsContext || this.context.state === 'closed') return Promise.resolve();
    return this.context.close().catch(() => {});
  }
}

/**
 * Open the microphone and start producing frames.
 * @param {CaptureOptions} options
 * @returns {Promise<Capture>}
 */
export async function startCapture(options) {
  checkSupport();
  const ownsContext = !options.context || options.context.state === 'closed';
  // Made before the microphone prompt's await, so a call from a click still counts as the user's gesture.
  const context = ownsContext ? new AudioContext({ latencyHint: 'interactive' }) : /** @type {AudioContext} */ (options.context);
  if (ownsContext) context.resume().catch(() => {});
  try {
    // The worklet builds its PcmPipeline on the audio thread, where a throw is only a 'processorerror' once audio
    // runs: a rate it would refuse fails here, before the microphone prompt.
    checkPipeline({ inRate: context.sampleRate, outRate: options.outRate, frameSamples: options.frameSamples });
  } catch (err) {
    if (ownsContext) context.close().catch(() => {});
    throw new CaptureError('failed', `Audio processing cannot start: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const ownsStream = !options.stream || !options.stream.getAudioTracks().some((t) => t.readyState === 'live');
  let stream;
  if (ownsStream) {
    /** @type {MediaTrackConstraints} */
    const audio = {
      channelCount: 1,
      echoCancellation: Boolean(options.echoCancellation),
      noiseSuppression: Boolean(options.noiseSuppression),
      autoGainControl: Boolean(options.autoGainControl),
    };
    if (options.deviceId) audio.deviceId = { exact: options.deviceId };
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
    } catch (err) {
      if (ownsContext) context.close().catch(() => {});
      throw describeMediaError(err);
    }
  } else {
    stream = /** @type {MediaStream} */ (options.stream);
  }
  /** @type {Capture | null} */
  let made = null;
  /** @type {MediaStreamAudioSourceNode | null} */
  let source = null;
  /** @type {AudioWorkletNode | null} */
  let node = null;
  try {
    const url = options.workletUrl || new URL('./pcm-processor.js', import.meta.url).href;
    if (!workletReady.has(context)) {
      await context.audioWorklet.addModule(url);
      workletReady.add(context);
    }
    source = context.createMediaStreamSource(stream);
    node = new AudioWorkletNode(context, 'pcm-processor', {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      // Mono by the browser's own down-mix rule (0.5·(L+R)) before the worklet sees it.
      channelCount: 1,
      channelCountMode: 'explicit',
      channelInterpretation: 'speakers',
      processorOptions: { outRate: options.outRate, frameSamples: options.frameSamples },
    });
    const capture = new Capture(stream, context, node, source, { ownsStream, ownsContext });
    made = capture;
    const port = node.port;
    port.onmessage = (event) => {
      const msg = parseProcessorMessage(event.data);
      if (!msg) return;
      if (msg.type === 'frame') {
        capture.framesPosted += 1;
        options.onFrame(new Int16Array(msg.pcm), msg.seq);
      } else if (msg.type === 'level' && options.onLevel) {
        options.onLevel({ rms: msg.rms, peak: msg.peak, silent: msg.silent });
      }
    };
    port.start();
    source.connect(node);
    const onEnded = () => {
      if (!capture.stopping && !capture.released && options.onInterrupted) {
        options.onInterrupted('The microphone was disconnected.', 'ended');
      }
    };
    const onStateChange = () => {
      if (!capture.stopping && !capture.released && context.state !== 'running' && options.onInterrupted) {
        // 'interrupted' is iOS Safari's (a call, Siri): handled like 'suspended'.
        const state = /** @type {'suspended'|'closed'|'interrupted'} */ (/** @type {string} */ (context.state));
        options.onInterrupted(`Audio processing is ${state}.`, state);
      }
    };
    // The processor threw (in its constructor or in process()): it posts nothing more, and the browser says so
    // only with this event on the node.
    const onProcessorError = () => {
      if (!capture.stopping && !capture.released && options.onInterrupted) {
        options.onInterrupted('Audio processing failed (the audio worklet stopped with an error).', 'failed');
      }
    };
    const tracks = stream.getAudioTracks();
    for (const track of tracks) track.addEventListener('ended', onEnded);
    context.addEventListener('statechange', onStateChange);
    node.addEventListener('processorerror', onProcessorError);
    capture.unlisten = () => {
      for (const track of tracks) track.removeEventListener('ended', onEnded);
      context.removeEventListener('statechange', onStateChange);
      capture.node.removeEventListener('processorerror', onProcessorError);
    };
    await resumeContext(context, options.resumeTimeoutMs ?? RESUME_TIMEOUT_MS);
    return capture;
  } catch (err) {
    if (made) made.unlisten();
    // A caller's context outlives this failure: once it runs, a graph left connected would feed onFrame.
    detach(source, node);
    if (ownsStream) for (const track of stream.getTracks()) track.stop();
    if (ownsContext) context.close().catch(() => {});
    if (err instanceof CaptureError) throw err;
    throw new CaptureError('failed', `Audio processing could not start: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}
