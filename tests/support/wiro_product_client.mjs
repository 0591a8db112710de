// The product's browser Wiro client (static/providers/client.js → wiro.js) under Node, over a real WebSocket (the
// `ws` package) against a live socket: tests/test_contract.py runs it against the emulator's stream variants.
//
// Usage: node tests/support/wiro_product_client.mjs GRANT_JSON_FILE PCM_FILE
// PCM_FILE: s16le mono at the grant's sample_rate. Streams it frame by frame once the session is ready, stops
// (task_session_end, then waits for the end), and prints one JSON line: the finals, warnings, errors, close.

import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

import { createClient } from '../../static/providers/client.js';

const [grantFile, pcmFile] = process.argv.slice(2);
const grant = JSON.parse(readFileSync(grantFile, 'utf8'));
const bytes = readFileSync(pcmFile);
const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 2));

const events = [];
const client = createClient(grant, { onEvent: (e) => events.push(e), WebSocketImpl: WebSocket });
await client.start();
for (let at = 0; at < pcm.length; at += grant.frame_samples) {
  client.sendAudio(pcm.slice(at, at + grant.frame_samples));
  // Let the socket drain between frames, as a microphone's callbacks would.
  await new Promise((resolve) => setImmediate(resolve));
}
await client.stop();
const ofType = (type) => events.filter((e) => e.type === type);
process.stdout.write(
  `${JSON.stringify({
    finals: ofType('final').map((e) => e.text),
    warnings: ofType('warning').map((e) => e.message),
    errors: ofType('error').map((e) => e.message),
    closed: ofType('closed').map((e) => [e.code, e.clean]),
    state: client.state,
  })}\n`,
);
