/**
 * What a provider can do, by its name or by a grant (whose protocol decides for a provider not listed here).
 * @param {string | {provider?: string, protocol?: string}} of
 * @returns {Capabilities}
 */
export function capabilitiesFor(of: string | {
    provider?: string;
    protocol?: string;
}): Capabilities;
/**
 * Build the client for a session grant, by `grant.protocol`.
 * @param {Grant} grant
 * @param {ClientOptions} [opts]
 * @returns {TruebarClient | WiroClient}
 */
export function createClient(grant: Grant, opts?: ClientOptions): TruebarClient | WiroClient;
export * from "./stream.js";
export type Grant = import("./stream.js").Grant;
export type ClientOptions = import("./stream.js").ClientOptions;
export type ProviderEvent = import("./stream.js").ProviderEvent;
export type ClientState = import("./stream.js").ClientState;
export type Word = import("./stream.js").Word;
export type Capabilities = import("./stream.js").Capabilities;
import { TruebarClient } from './truebar.js';
import { WiroClient } from './wiro.js';
