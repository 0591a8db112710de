// One transcription session: a grant from the app's server, the microphone, and a provider client, tied together.
// Audio captured while the socket is still connecting is queued by the client, so the first words are not lost.
import { startCapture } from './audio/capture.js';
import { createClient } from './providers/client.js';

/** @typedef {import('./providers/client.js').ProviderEvent} ProviderEvent */

export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {string} code */
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {string} url @param {object} [body] */
export async function postJson(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError('The app server cannot be reached. Is it still running?', 0, 'network');
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const message = data && data.error && data.error.message ? data.error.message : `The server answered ${response.status}.`;
    throw new ApiError(message, response.status, data && data.error ? data.error.code : 'http');
  }
  return data;
}

export class Session {
  /**
   * @param {{provider: string, tag?: string, deviceId?: string, echoCancellation?: boolean,
   *          noiseSuppression?: boolean, autoGainControl?: boolean,
   *          onEvent: (e: ProviderEvent) => void, onLevel?: (l: {rms: number, peak: number, silent: boolean}) => void,
   *          onInterrupted?: (reason: string) => void}} options
   */
  constructor(options) {
    this.options = options;
    /** @type {any} */
    this.grant = null;
    /** @type {import('./audio/capture.js').Capture | null} */
    this.capture = null;
    /** @type {any} */
    this.client = null;
    this.ended = false;
  }

  async start() {
    const { provider, tag } = this.options;
    this.grant = await postJson('/api/sessions', tag ? { provider, tag } : { provider });
    this.client = createClient(this.grant, { onEvent: this.options.onEvent });
    this.capture = await startCapture({
      outRate: this.grant.sample_rate,
      frameSamples: this.grant.frame_samples,
      deviceId: this.options.deviceId,
      echoCancellation: this.options.echoCancellation,
      noiseSuppression: this.options.noiseSuppression,
      autoGainControl: this.options.autoGainControl,
      onFrame: (pcm) => this.client && this.client.sendAudio(pcm),
      onLevel: this.options.onLevel,
      onInterrupted: this.options.onInterrupted,
    }).catch((err) => {
      this.client.cancel();
      this.endUpstream();
      throw err;
    });
    try {
      await this.client.start();
    } catch (err) {
      this.capture.release();
      this.endUpstream();
      throw err;
    }
  }

  /** Graceful: the resampler's tail is sent, then the provider is asked to finish and its last finals arrive. */
  async stop() {
    try {
      if (this.capture) await this.capture.stop();
      if (this.client) await this.client.stop();
    } finally {
      this.endUpstream();
    }
  }

  cancel() {
    if (this.capture) this.capture.release();
    if (this.client) this.client.cancel();
    this.endUpstream();
  }

  /** Tell the server the session is over, so it can release what it holds upstream (a billed Wiro task). */
  endUpstream(beacon = false) {
    if (this.ended || !this.grant || !this.grant.session_id) return;
    this.ended = true;
    const url = `/api/sessions/${encodeURIComponent(this.grant.provider)}/${encodeURIComponent(this.grant.session_id)}/end`;
    if (beacon && navigator.sendBeacon) {
      navigator.sendBeacon(url);
    } else {
      fetch(url, { method: 'POST', credentials: 'same-origin', keepalive: true }).catch(() => {});
    }
  }
}
