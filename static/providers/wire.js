// Audio on the wire: signed 16-bit little-endian PCM, as both providers take it.

/** True on every platform a browser runs on today; checked rather than assumed. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The bytes of signed 16-bit PCM in little-endian order, as both providers want them. An Int16Array stores
 * samples in the platform's order, which is little-endian on every browser platform, so this is normally a
 * zero-copy view; a big-endian platform gets a byte-swapped copy.
 * @param {Int16Array} pcm
 * @returns {Uint8Array}
 */
export function pcm16leBytes(pcm) {
  if (LITTLE_ENDIAN) return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Uint8Array(pcm.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i++) view.setInt16(2 * i, pcm[i], true);
  return out;
}

/**
 * Accept an Int16Array, or the ArrayBuffer a worklet transferred, as one audio frame.
 * @param {Int16Array | ArrayBuffer} frame
 * @returns {Int16Array}
 */
export function toInt16(frame) {
  if (frame instanceof Int16Array) return frame;
  if (frame instanceof ArrayBuffer) {
    if (frame.byteLength % 2 !== 0) throw new TypeError('An audio frame must hold whole 16-bit samples.');
    return new Int16Array(frame);
  }
  throw new TypeError('An audio frame must be an Int16Array (or its ArrayBuffer).');
}
