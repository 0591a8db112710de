// What the app server offers: the engines (GET /api/providers) and, for an engine that lists them, its models
// (GET /api/providers/{name}/options). fetch is handed in; whether to ask for models is the provider's capability.
import { errorMessage } from '../captions/wire.js';
import { capabilitiesFor } from '../providers/client.js';

/**
 * @typedef {object} ProviderInfo  one entry of GET /api/providers
 * @property {string} name
 * @property {string} label
 * @property {boolean} configured
 * @property {string[]} missing
 * @property {string} [detail]
 * @property {boolean} [offline]
 */

/** @typedef {{providers: ProviderInfo[], default: string | null}} ProviderList */
/** @typedef {{tags: string[], defaultTag: string}} TagList */

/** @param {unknown} v @returns {v is Record<string, unknown>} */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @param {unknown} data
 * @returns {ProviderList}
 */
export function parseProviderList(data) {
  if (!isObject(data) || !Array.isArray(data.providers)) throw new Error('the provider list is malformed');
  /** @type {ProviderInfo[]} */
  const providers = [];
  for (const p of data.providers) {
    if (!isObject(p) || typeof p.name !== 'string') continue;
    providers.push({
      name: p.name,
      label: typeof p.label === 'string' ? p.label : p.name,
      configured: p.configured === true,
      missing: Array.isArray(p.missing) ? p.missing.filter((m) => typeof m === 'string') : [],
      detail: typeof p.detail === 'string' ? p.detail : undefined,
      offline: p.offline === true,
    });
  }
  return { providers, default: typeof data.default === 'string' ? data.default : null };
}

/**
 * @param {typeof fetch} fetchImpl
 * @returns {Promise<ProviderList>}
 */
export async function loadProviderList(fetchImpl) {
  const response = await fetchImpl('/api/providers', { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return parseProviderList(await response.json());
}

/**
 * The models a provider lists, or null when it lists none (its capability says so).
 * @param {typeof fetch} fetchImpl
 * @param {string} provider
 * @returns {Promise<TagList | null>}
 */
export async function loadTags(fetchImpl, provider) {
  if (!capabilitiesFor(provider).tagsListing) return null;
  const response = await fetchImpl(`/api/providers/${encodeURIComponent(provider)}/options`, { credentials: 'same-origin' });
  /** @type {unknown} */
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(errorMessage(data) || `the server answered ${response.status}`);
  }
  if (!isObject(data) || !Array.isArray(data.tags)) throw new Error('the model list is malformed');
  const tags = data.tags.filter((t) => typeof t === 'string');
  const defaultTag = typeof data.default_tag === 'string' ? data.default_tag : (tags[0] ?? '');
  return { tags, defaultTag };
}
