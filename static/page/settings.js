// The page's remembered settings: which engine, model and microphone, and the browser processing switches.
// Storage is handed in (localStorage on the page); a storage that refuses (private mode) just remembers nothing.

const STORAGE_KEY = 'live-stt.settings';

/**
 * @typedef {object} Settings
 * @property {string} [provider]
 * @property {string} [tag]
 * @property {string} [mic]
 * @property {boolean} [echo]
 * @property {boolean} [noise]
 * @property {boolean} [agc]
 */

/**
 * @param {Pick<Storage, 'getItem'> | null} storage
 * @returns {Settings}
 */
export function loadSettings(storage) {
  try {
    const raw = storage ? storage.getItem(STORAGE_KEY) : null;
    const parsed = JSON.parse(raw || '{}');
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    const data = /** @type {Record<string, unknown>} */ (parsed);
    /** @type {Settings} */
    const out = {};
    for (const key of /** @type {const} */ (['provider', 'tag', 'mic'])) {
      if (typeof data[key] === 'string') out[key] = data[key];
    }
    for (const key of /** @type {const} */ (['echo', 'noise', 'agc'])) {
      if (typeof data[key] === 'boolean') out[key] = data[key];
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * @param {Pick<Storage, 'setItem'> | null} storage
 * @param {Settings} settings
 */
export function saveSettings(storage, settings) {
  try {
    if (storage) storage.setItem(STORAGE_KEY, JSON.stringify(settings));
  } catch { /* storage may be disabled: settings just are not remembered */ }
}

const FOLD_KEY = 'live-stt.settings-folded';

/**
 * Whether the settings panel is folded on a narrow screen. Folded unless the reader opened it last time: on a
 * phone the transcript is what is watched, and the settings are chosen once.
 * @param {Pick<Storage, 'getItem'> | null} storage
 * @returns {boolean}
 */
export function loadFolded(storage) {
  try {
    return (storage ? storage.getItem(FOLD_KEY) : null) !== 'false';
  } catch {
    return true;
  }
}

/**
 * @param {Pick<Storage, 'setItem'> | null} storage
 * @param {boolean} folded
 */
export function saveFolded(storage, folded) {
  try {
    if (storage) storage.setItem(FOLD_KEY, String(folded));
  } catch { /* storage may be disabled: the panel just starts folded next time */ }
}
