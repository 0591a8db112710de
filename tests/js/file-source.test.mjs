// static/audio/file-source.js on its own: the rate a file's header declares (declaredRate). No browser: headers
// are built by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { declaredRate } from '../../static/audio/file-source.js';

/** A header's first bytes, padded so every reader has room. @param {number[]} bytes */
const header = (bytes) => new Uint8Array([...bytes, 0, 0, 0, 0, 0, 0, 0, 0]).buffer;

// ---- declaredRate: MP3 frame headers, and ADTS AAC ones that share their sync word ----

test('declaredRate: an MP3 frame header gives its rate by version and rate index', () => {
  // 0xFFFB: MPEG-1 layer III, no CRC; byte 2 = bitrate index 9 (128 kb/s) << 4 | rate index << 2.
  assert.equal(declaredRate(header([0xff, 0xfb, 0x90, 0x44])), 44100);
  assert.equal(declaredRate(header([0xff, 0xfb, 0x94, 0x44])), 48000);
  // 0xFFF3: MPEG-2 layer III (version bits 10): half the MPEG-1 rates.
  assert.equal(declaredRate(header([0xff, 0xf3, 0x84, 0x44])), 24000);
  assert.equal(declaredRate(header([0xff, 0xf3, 0x88, 0x44])), 16000);
  // 0xFFE3: MPEG-2.5 (version bits 00).
  assert.equal(declaredRate(header([0xff, 0xe3, 0x88, 0x44])), 8000);
  // Behind an ID3v2 tag of 4 bytes.
  const tagged = header([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4, 0xff, 0xfb, 0x90, 0x44]);
  assert.equal(declaredRate(tagged), 44100);
});

test('declaredRate: frame headers with reserved fields are not MP3', () => {
  assert.equal(declaredRate(header([0xff, 0xf9, 0x90, 0x44])), null, 'layer bits 00 (reserved in MP3: ADTS uses them)');
  assert.equal(declaredRate(header([0xff, 0xeb, 0x90, 0x44])), null, 'version bits 01 (reserved)');
  assert.equal(declaredRate(header([0xff, 0xfb, 0xf0, 0x44])), null, 'bitrate index 15 (invalid)');
  assert.equal(declaredRate(header([0xff, 0xfb, 0x9c, 0x44])), null, 'rate index 3 (reserved)');
});

test('declaredRate: an ADTS AAC header is not read as MP3; the browser decodes it on the generic path', () => {
  // ADTS: sync 0xFFF, MPEG-4 (0xF1) or MPEG-2 (0xF9), layer 00; byte 2 = profile LC (01) << 6 | sf_index << 2.
  // Read as MP3 these gave rates from the wrong bits (44.1 kHz and 16 kHz AAC both as 22050), so the browser
  // decoded the file at a rate it does not have, one resampling step more than pcm.js's.
  for (const sync of [0xf1, 0xf9]) {
    for (let sfIndex = 0; sfIndex < 12; sfIndex++) {
      const adts = header([0xff, sync, (1 << 6) | (sfIndex << 2), 0x80]);
      assert.equal(declaredRate(adts), null, `sync ${sync.toString(16)} sf_index ${sfIndex}`);
    }
  }
});
