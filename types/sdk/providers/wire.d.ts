/**
 * The bytes of signed 16-bit PCM in little-endian order, as both providers want them. An Int16Array stores
 * samples in the platform's order, which is little-endian on every browser platform, so this is normally a
 * zero-copy view; a big-endian platform gets a byte-swapped copy.
 * @param {Int16Array} pcm
 * @returns {Uint8Array}
 */
export function pcm16leBytes(pcm: Int16Array): Uint8Array;
/**
 * Accept an Int16Array, or the ArrayBuffer a worklet transferred, as one audio frame.
 * @param {Int16Array | ArrayBuffer} frame
 * @returns {Int16Array}
 */
export function toInt16(frame: Int16Array | ArrayBuffer): Int16Array;
/** True on every platform a browser runs on today; checked rather than assumed. */
export const LITTLE_ENDIAN: boolean;
