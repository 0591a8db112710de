// The Node.js example of Wiro's Realtime Speech to Text page, as close to verbatim as possible.
// Changes so it runs in tests: createRequire keeps the page's require() calls working in an ES module; the
// socket URL and token come from the environment (WIRO_SOCKET_URL, WIRO_SOCKET_TOKEN); a raw PCM file
// (WIRO_PCM_FILE: s16le, 24 kHz, mono) replaces arecord, read in 9600-byte pieces every 20 ms; after the
// file the client calls the page's endSession().
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

const WebSocket = require('ws');

const SOCKET_TOKEN = process.env.WIRO_SOCKET_TOKEN;
const ws = new WebSocket(process.env.WIRO_SOCKET_URL);
const fullTranscript = [];

ws.on('open', () => {
  ws.send(JSON.stringify({ type: 'task_info', tasktoken: SOCKET_TOKEN }));
});

ws.on('message', (data, isBinary) => {
  const msg = JSON.parse(data.toString());

  if (msg.type === 'task_stream_ready') {
    console.log('Session ready — start sending audio');
    startAudioCapture(ws, SOCKET_TOKEN);
  }

  if (msg.type === 'task_output' && typeof msg.message === 'string' && msg.message.startsWith('TRANSCRIPT_USER:')) {
    const text = msg.message.substring(16);
    fullTranscript.push(text);
    console.log('Transcript:', text);
  }

  if (msg.type === 'task_stream_end') {
    console.log('Transcription stream ended');
  }

  if (msg.type === 'task_cost') {
    console.log('Cost:', msg.cumulativeCost);
  }

  if (msg.type === 'task_end') {
    console.log('Model process ended — waiting for post-processing');
  }

  if (msg.type === 'task_postprocess_end') {
    console.log('Done');
    console.log('Full transcript:', fullTranscript.join(' '));
    ws.close();
  }
});

// In place of arecord: the PCM file, paced modestly.
function startAudioCapture(ws, token) {
  const fs = require('fs');
  const pcmFile = fs.readFileSync(process.env.WIRO_PCM_FILE);
  let offset = 0;
  const rec = setInterval(() => {
    if (offset >= pcmFile.length) {
      clearInterval(rec);
      endSession();
      return;
    }
    onData(pcmFile.subarray(offset, offset + 9600));
    offset += 9600;
  }, 20);

  const CHUNK_BYTES = 9600;
  let buffer = Buffer.alloc(0);

  function onData(chunk) {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= CHUNK_BYTES) {
      const pcm = buffer.slice(0, CHUNK_BYTES);
      buffer = buffer.slice(CHUNK_BYTES);
      const tokenBuf = Buffer.from(token + '|');
      const frame = Buffer.concat([tokenBuf, pcm]);
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(frame);
      }
    }
  }

  ws.on('close', () => clearInterval(rec));
}

function endSession() {
  ws.send(JSON.stringify({ type: 'task_session_end', tasktoken: SOCKET_TOKEN }));
}
