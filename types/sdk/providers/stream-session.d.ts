/**
 * When `grant` runs out, in ms on the clock of `receivedAt`: its `expires_in` counted from `receivedAt`, so a
 * browser clock minutes off the server's changes nothing. A grant without it (an older server, an adopter's own
 * backend) is taken at its `expires_at`, the server's clock read as ours. Null when it says neither.
 * @param {Grant} grant
 * @param {number} receivedAt  ms: when the grant arrived (the client is made in the same task as a session gets
 *   its grant)
 * @returns {number | null}
 */
export function localExpiry(grant: Grant, receivedAt: number): number | null;
/**
 * What a protocol module plugs into a StreamSession.
 * @typedef {object} SessionProtocol
 * @property {string} url                 may carry the credential: never shown
 * @property {string} readyEvent          what "ready" is called on the wire, for the timeout message
 * @property {() => void} onOpen
 * @property {(text: string) => void} onText
 * @property {(pcm: Int16Array) => ArrayBuffer | ArrayBufferView} encodeFrame
 * @property {() => void} onStop          send the end-of-stream message
 * @property {() => void} onCancel        last words before the socket is closed (socket still open)
 * @property {() => void} [onEnd]         the session is over, whichever way: deliver what is pending
 */
/**
 * The lifecycle both providers share: connect, wait for ready (with a timeout) while queueing audio, stream,
 * finish gracefully (with a timeout), cancel, and turn every way a socket can end into accurate events.
 *
 * `closed.clean` is true when the session ended the way this client or the protocol decided (end confirmed,
 * cancel(), or a fatal error the client reported and closed on, a stop that timed out among them), and false when
 * the transport went away without the protocol saying so.
 */
export class StreamSession {
    /**
     * @param {Grant} grant
     * @param {ClientOptions} opts
     * @param {SessionProtocol} protocol
     */
    constructor(grant: Grant, opts: ClientOptions, protocol: SessionProtocol);
    label: string;
    sampleRate: number;
    _secret: string;
    _WebSocketImpl: (new (url: string) => WebSocket) | {
        new (url: string | URL, protocols?: string | string[]): WebSocket;
        prototype: WebSocket;
        readonly CONNECTING: 0;
        readonly OPEN: 1;
        readonly CLOSING: 2;
        readonly CLOSED: 3;
    };
    _protocol: SessionProtocol;
    _onEvent: (event: import("./protocol.js").ProviderEvent) => void;
    /** @type {Timers} shared with the protocol module's own timers */
    timers: Timers;
    _readyTimeoutMs: number;
    _finishTimeoutMs: number;
    _frameMs: number;
    _now: () => number;
    /** When the grant runs out, ms on this._now's clock; null when the grant does not say. */
    _expiresAt: number | null;
    _queue: FrameQueue;
    _livenessMs: number;
    /** The give-up of _checkUplink: above levelMs for graceMs, so never more than maxBufferedMs waiting. */
    _giveUp: {
        levelMs: number;
        graceMs: number;
    };
    /** When (this._now) the socket last showed it was alive: a message came, or its send buffer drained. */
    _aliveAt: number;
    _lastBuffered: number;
    _warnedSlow: boolean;
    /** When (this._now) the audio waiting in the send buffer went above each level of _checkUplink; null: below. */
    _uplink: {
        slowSince: number | null;
        stuckSince: number | null;
    };
    /** How far into the audio sent a provider that listens in real time has got: ms of audio, as of `at` (this._now). */
    _heard: {
        ms: number;
        at: number;
    };
    /** @type {ClientState} */
    state: ClientState;
    framesSent: number;
    bytesSent: number;
    samplesSent: number;
    /** @type {WebSocket | null} */
    _ws: WebSocket | null;
    _opened: boolean;
    _gotMessage: boolean;
    /** @type {null | 'finished' | 'cancelled' | 'failed'} how the session ended, once it has */
    _ended: null | "finished" | "cancelled" | "failed";
    _closedEmitted: boolean;
    /** @type {Promise<void> | null} */
    _stopping: Promise<void> | null;
    _ready: import("./frame-queue.js").Deferred<void>;
    _finished: import("./frame-queue.js").Deferred<void>;
    _closed: import("./frame-queue.js").Deferred<void>;
    /** @type {Record<'ready'|'finish'|'close', unknown>} */
    _timerIds: Record<"ready" | "finish" | "close", unknown>;
    /** Milliseconds of audio sent so far (the only clock a provider without timestamps shares with us). */
    audioMs(): number;
    /**
     * Milliseconds of the audio sent that a provider listening in real time can have heard by now. Audio goes out in
     * bursts (what was queued until the provider was ready, a replay after a reconnect) that such a provider hears at
     * 1x from when they went out: after a burst of B ms it stays B ms behind audioMs() until the audio pauses long
     * enough for it to catch up.
     */
    heardMs(): number;
    /**
     * The listener moved on to `now` through the audio sent before it (ms of audio, unrounded). Called before each
     * frame goes out too, so a frame is heard from when it was sent and not before.
     * @param {number} now  ms, this._now()
     */
    _hear(now: number): number;
    /** @returns {Promise<void>} resolves when audio flows to the provider */
    start(): Promise<void>;
    /**
     * @param {Int16Array | ArrayBuffer} frame
     * @returns {boolean} whether the frame was sent or queued
     */
    sendAudio(frame: Int16Array | ArrayBuffer): boolean;
    /**
     * Graceful end: the protocol's end-of-stream message, then wait for the provider to confirm (or the
     * timeout), delivering every trailing result, then close. Never rejects: failures arrive as events.
     * @returns {Promise<void>}
     */
    stop(): Promise<void>;
    _stop(): Promise<void>;
    /** Abandon the session now: pending results are not waited for. */
    cancel(): void;
    /** Ended before start(): a later start() rejects instead of waiting forever. */
    _endIdle(): void;
    /** @param {string} text */
    sendText(text: string): void;
    /** The provider accepts audio now: flush the queue in order. */
    markReady(): void;
    /** The provider confirmed the end of the session: deliver what is pending, then close. */
    finish(): void;
    /**
     * A fatal error: report it, fail start() if it is pending, and close. Any failure once the grant has run out
     * is reported as 'expired': that is what a fresh grant cures, whatever the provider's words for it.
     * @param {string} message  already free of secrets
     * @param {ErrorCause} [cause]
     */
    fail(message: string, cause?: ErrorCause): void;
    /** The grant has run out by now, or is within the skew of it (see DEFAULTS.expirySkewS). */
    _expired(): boolean;
    /** @param {string} message */
    warn(message: string): void;
    /** @param {ProviderEvent} event */
    emit(event: ProviderEvent): void;
    /** @param {string} text */
    redact(text: string): string;
    /** @param {ClientState} state */
    _setState(state: ClientState): void;
    /**
     * @param {'ready'|'finish'|'close'} name
     * @param {number} ms
     * @param {() => void} fn
     */
    _arm(name: "ready" | "finish" | "close", ms: number, fn: () => void): void;
    /** @param {'ready'|'finish'|'close'} name */
    _disarm(name: "ready" | "finish" | "close"): void;
    _clearTimers(): void;
    /** @param {number} samples */
    _samplesToMs(samples: number): number;
    /** @param {Int16Array} pcm */
    _transmit(pcm: Int16Array): void;
    /**
     * Milliseconds of audio sent but still in the socket's send buffer (not yet handed to the network), from the
     * bytes each ms of audio has cost on the wire so far (a protocol's framing included).
     */
    bufferedMs(): number;
    /**
     * An uplink slower than the audio: said once past DEFAULTS.slowUplinkWarnMs held for DEFAULTS.uplinkGraceMs, then
     * given up on before more than maxBufferedMs wait (see this._giveUp and DEFAULTS).
     */
    _checkUplink(): void;
    /**
     * The liveness check of _alive() while no audio goes out: a source held back until the send buffer drains (a
     * file) sends nothing, so on a socket whose buffer never drains the check that runs as audio goes out would never
     * run again, and the session would wait for ever. Such a source asks bufferedMs() as it waits: the check runs there.
     */
    checkAlive(): void;
    /**
     * Liveness, checked as audio goes out and as a held source waits for the send buffer (no timer of its own): a
     * socket whose peer vanished without a close (a NAT or Wi-Fi change) keeps accepting send() while its buffer only
     * grows. Nothing received and nothing drained for livenessTimeoutMs means dead: it fails as a transport error,
     * which the session answers with a reconnect. A quiet provider is not dead as long as the buffer drains.
     * @param {WebSocket} ws
     * @param {number} now  ms, this._now()
     * @returns {boolean} false when the socket was given up
     */
    _alive(ws: WebSocket, now: number): boolean;
    _onOpen(): void;
    /** @param {MessageEvent} ev */
    _onMessage(ev: MessageEvent): void;
    _onReadyTimeout(): void;
    /**
     * Nothing for finishTimeoutMs since the end of the stream or the provider's last message: a half-open socket or
     * a provider that went quiet, and the last finals are not coming. A transport failure, not an end: the session
     * replays to a new connection what no final covered (an end would have left that audio held, never sent again
     * and never counted as lost).
     */
    _onFinishTimeout(): void;
    /**
     * @param {number} code
     * @param {string} reason
     */
    _closeSocket(code: number, reason: string): void;
    /**
     * @param {number | undefined} rawCode
     * @param {string | undefined} rawReason
     */
    _onClose(rawCode: number | undefined, rawReason: string | undefined): void;
    /**
     * @param {number} code
     * @param {string} reason
     */
    _unexpectedCloseMessage(code: number, reason: string): string;
}
/**
 * What the page holds: the public face of a provider client over its StreamSession. Protocol modules extend it
 * and hand their protocol hooks to the StreamSession they pass to super().
 */
export class SessionClient {
    /** @param {StreamSession} session */
    constructor(session: StreamSession);
    _session: StreamSession;
    /** @returns {ClientState} */
    get state(): ClientState;
    get framesSent(): number;
    get bytesSent(): number;
    /**
     * When the grant runs out, ms on the client's clock (`now`, default Date.now): the grant's `expires_in` counted
     * from when the client was made, else its `expires_at`; null when the grant says neither.
     * @returns {number | null}
     */
    get expiresAt(): number | null;
    /**
     * Whether the grant has run out by now on the client's clock (less the skew a failure near the expiry is given):
     * a client not yet started with such a grant would only be refused.
     */
    expired(): boolean;
    /** 'connecting' | 'open' | 'closing' | 'closed' | 'none': the socket's own state, for diagnostics */
    get socketState(): string;
    /** Milliseconds of audio sent in this session. */
    audioMs(): number;
    /** @returns {Promise<void>} resolves when the provider accepts audio */
    start(): Promise<void>;
    /**
     * Milliseconds of audio sent but still waiting in the socket's send buffer (0 before it opens). Asking runs the
     * liveness check too (see livenessTimeoutMs): a source that holds its audio back on this number sends nothing, and
     * a socket whose buffer never drains is then given up here (a transport error) rather than waited on for ever.
     */
    bufferedMs(): number;
    /** @param {Int16Array | ArrayBuffer} frame */
    sendAudio(frame: Int16Array | ArrayBuffer): boolean;
    /** @returns {Promise<void>} the end-of-stream message, every remaining result, the provider's confirmation */
    stop(): Promise<void>;
    cancel(): void;
}
export type Grant = import("./grant.js").Grant;
export type ClientOptions = import("./protocol.js").ClientOptions;
export type ClientState = import("./protocol.js").ClientState;
export type ErrorCause = import("./protocol.js").ErrorCause;
export type ProviderEvent = import("./protocol.js").ProviderEvent;
export type Timers = import("./protocol.js").Timers;
/**
 * What a protocol module plugs into a StreamSession.
 */
export type SessionProtocol = {
    /**
     * may carry the credential: never shown
     */
    url: string;
    /**
     * what "ready" is called on the wire, for the timeout message
     */
    readyEvent: string;
    onOpen: () => void;
    onText: (text: string) => void;
    encodeFrame: (pcm: Int16Array) => ArrayBuffer | ArrayBufferView;
    /**
     * send the end-of-stream message
     */
    onStop: () => void;
    /**
     * last words before the socket is closed (socket still open)
     */
    onCancel: () => void;
    /**
     * the session is over, whichever way: deliver what is pending
     */
    onEnd?: (() => void) | undefined;
};
import { FrameQueue } from './frame-queue.js';
