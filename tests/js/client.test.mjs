// The shared part of the provider clients: dispatch on the grant, socket helpers, PCM bytes, the pre-ready
// queue.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';

import { WebSocketServer, WebSocket as WsWebSocket } from 'ws';

import {
  EVENT,
  FrameQueue,
  LITTLE_ENDIAN,
  STATE,
  checkGrant,
  closeSummary,
  createClient,
  displayUrl,
  pcm16leBytes,
  providerLabel,
  redact,
  toInt16,
  withQueryParam,
} from '../../static/providers/client.js';
import { TruebarClient } from '../../static/providers/truebar.js';
import { WiroClient } from '../../static/providers/wiro.js';

const TOKEN = 'grant-token-123';

class NeverSocket {
  constructor() {
    throw new Error('no socket is opened before start()');
  }
}

function grant(overrides = {}) {
  return {
    provider: 'truebar',
    protocol: 'truebar',
    ws_url: 'ws://127.0.0.1:9/stream',
    token: TOKEN,
    sample_rate: 16000,
    frame_samples: 1600,
    ...overrides,
  };
}

describe('createClient', () => {
  test('dispatches on grant.protocol', () => {
    const opts = { WebSocketImpl: NeverSocket };
    const truebar = createClient(grant(), opts);
    assert.ok(truebar instanceof TruebarClient);
    assert.equal(truebar.state, 'idle');
    assert.equal(truebar.framesSent, 0);
    assert.equal(truebar.bytesSent, 0);
    // The local engine speaks the Truebar protocol under its own provider name.
    assert.ok(createClient(grant({ provider: 'local' }), opts) instanceof TruebarClient);
    const wiroGrant = grant({ provider: 'wiro', protocol: 'wiro', sample_rate: 24000, frame_samples: 4800 });
    assert.ok(createClient(wiroGrant, opts) instanceof WiroClient);
  });

  test('rejects an unknown protocol and malformed grants without echoing the token', () => {
    assert.throws(() => createClient(grant({ protocol: 'grpc' }), {}), /Unknown streaming protocol "grpc"/);
    assert.throws(() => createClient(grant({ protocol: undefined }), {}), TypeError);
    for (const [field, value] of [
      ['token', ''],
      ['ws_url', 'https://example.test/'],
      ['sample_rate', 0],
      // pcm.js's resampler takes whole numbers of Hz in 1..1000000: the worklet's constructor threw for these,
      // and a session went on streaming nothing.
      ['sample_rate', 22050.5],
      ['sample_rate', 2_000_000],
      ['sample_rate', '16000'],
      ['frame_samples', 1.5],
    ]) {
      assert.throws(
        () => checkGrant(grant({ [field]: value })),
        (err) => {
          assert.ok(err instanceof TypeError);
          assert.ok(err.message.includes(`"${field}"`), err.message);
          assert.ok(!err.message.includes(TOKEN));
          return true;
        },
      );
    }
    assert.throws(() => checkGrant(null), TypeError);
    for (const rate of [1, 8000, 1_000_000]) assert.doesNotThrow(() => checkGrant(grant({ sample_rate: rate })));
  });

  test('without any WebSocket implementation the client says so', () => {
    // Node 22+ has a global WebSocket: take it away for this test instead of skipping it there.
    const had = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
    delete globalThis.WebSocket;
    try {
      assert.throws(() => createClient(grant(), {}), /No WebSocket implementation/);
    } finally {
      if (had) Object.defineProperty(globalThis, 'WebSocket', had);
    }
  });

  test('over a real socket (the global WebSocket, else the ws package): CONFIG, audio, a final, EOS, FINISHED', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
    const got = { texts: [], audioBytes: 0, url: '' };
    server.on('connection', (sock, req) => {
      got.url = req.url ?? '';
      sock.on('message', (data, isBinary) => {
        if (isBinary) {
          got.audioBytes += data.length;
          sock.send(JSON.stringify({
            type: 'TEXT_SEGMENT',
            textSegment: { isFinal: true, startTimeMs: 0, endTimeMs: 100, tokens: [{ text: 'hello' }] },
          }));
          return;
        }
        const msg = JSON.parse(String(data));
        got.texts.push(msg.type);
        if (msg.type === 'CONFIG') sock.send(JSON.stringify({ type: 'STATUS', status: 'CONFIGURED' }));
        if (msg.type === 'EOS') sock.send(JSON.stringify({ type: 'STATUS', status: 'FINISHED' }));
      });
    });
    try {
      const events = [];
      let sawFinal;
      const final = new Promise((resolve) => { sawFinal = resolve; });
      const client = createClient(grant({ ws_url: `ws://127.0.0.1:${port}/stream` }), {
        WebSocketImpl: globalThis.WebSocket ?? WsWebSocket,
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'final') sawFinal();
        },
      });
      await client.start();
      assert.equal(client.sendAudio(new Int16Array(1600).fill(3)), true);
      await final;
      await client.stop();
      assert.deepEqual(got.texts, ['CONFIG', 'EOS']);
      assert.equal(got.audioBytes, 3200);
      assert.match(got.url, /access_token=/);
      assert.deepEqual(events.filter((e) => e.type === 'final').map((e) => e.text), ['hello']);
      assert.equal(events.filter((e) => e.type === 'error').length, 0);
    } finally {
      for (const c of server.clients) c.terminate();
      server.close();
    }
  });

  test('stop() and cancel() before start() end quietly without a socket', async () => {
    const events = [];
    const client = createClient(grant(), { WebSocketImpl: NeverSocket, onEvent: (e) => events.push(e) });
    await client.stop();
    client.cancel();
    assert.equal(client.state, 'closed');
    assert.deepEqual(events, [{ type: 'state', state: 'closed' }]);
  });

  test('a WebSocket constructor that throws fails start() without leaking the URL query', async () => {
    class Throwing {
      constructor(url) {
        throw new SyntaxError(`The URL '${url}' is invalid.`);
      }
    }
    const events = [];
    const client = createClient(grant(), { WebSocketImpl: Throwing, onEvent: (e) => events.push(e) });
    await assert.rejects(client.start(), (err) => {
      assert.match(err.message, /Could not open a connection to Truebar at ws:\/\/127\.0\.0\.1:9\/stream/);
      return true;
    });
    assert.ok(!JSON.stringify(events).includes(TOKEN));
    assert.equal(client.state, 'error');
    await client.stop();
  });
});

describe('socket helpers', () => {
  test('withQueryParam adds a parameter and keeps the existing ones', () => {
    const base = 'wss://h.test/api/pipelines/stream?a=1&b=x%20y';
    const url = new URL(withQueryParam(base, 'access_token', 'a+b/c='));
    assert.equal(url.searchParams.get('a'), '1');
    assert.equal(url.searchParams.get('b'), 'x y');
    assert.equal(url.searchParams.get('access_token'), 'a+b/c=');
    assert.equal(url.pathname, '/api/pipelines/stream');
    const replaced = new URL(withQueryParam('ws://h/?access_token=old', 'access_token', 'new'));
    assert.equal(replaced.search, '?access_token=new');
  });

  test('displayUrl drops the query that may hold the token', () => {
    assert.equal(displayUrl(`wss://h.test:8443/stream?access_token=${TOKEN}#x`), 'wss://h.test:8443/stream');
    assert.equal(displayUrl('not a url'), '(invalid URL)');
  });

  test('redact, closeSummary, providerLabel', () => {
    assert.equal(redact(`a ${TOKEN} b ${TOKEN}`, TOKEN), 'a [token] b [token]');
    assert.equal(redact('nothing', ''), 'nothing');
    assert.equal(closeSummary(1006, ''), 'code 1006');
    assert.equal(closeSummary(1008, 'expired'), 'code 1008: expired');
    assert.equal(providerLabel(grant()), 'Truebar');
    assert.equal(providerLabel(grant({ provider: 'wiro' })), 'Wiro');
  });

  test('the event and state vocabulary', () => {
    const eventTypes = ['closed', 'cost', 'error', 'final', 'partial', 'state', 'warning'];
    assert.deepEqual(Object.values(EVENT).sort(), eventTypes);
    assert.deepEqual(
      Object.values(STATE).sort(),
      ['closed', 'configuring', 'connecting', 'error', 'finishing', 'idle', 'streaming'],
    );
    assert.ok(Object.isFrozen(EVENT) && Object.isFrozen(STATE));
  });
});

describe('PCM bytes', () => {
  test('Int16 samples become little-endian bytes', () => {
    assert.equal(LITTLE_ENDIAN, new Uint8Array(Uint16Array.of(0x0102).buffer)[0] === 0x02);
    const bytes = pcm16leBytes(Int16Array.from([0x0102, -1, -32768, 0x7c00]));
    assert.deepEqual([...bytes], [0x02, 0x01, 0xff, 0xff, 0x00, 0x80, 0x00, 0x7c]);
  });

  test('only the view is used, not the whole underlying buffer', () => {
    const whole = Int16Array.from([1, 2, 3, 4]);
    assert.deepEqual([...pcm16leBytes(whole.subarray(1, 3))], [2, 0, 3, 0]);
  });

  test('toInt16 accepts Int16Array and even-length ArrayBuffers only', () => {
    const pcm = Int16Array.from([5, 6]);
    assert.equal(toInt16(pcm), pcm);
    assert.deepEqual([...toInt16(pcm.buffer)], [5, 6]);
    assert.throws(() => toInt16(new ArrayBuffer(3)), /whole 16-bit samples/);
    assert.throws(() => toInt16(Float32Array.from([0.5])), TypeError);
  });
});

describe('FrameQueue', () => {
  test('keeps the oldest frames when full and counts what it refused', () => {
    const queue = new FrameQueue(2);
    const frames = [0, 1, 2, 3].map((v) => Int16Array.from([v, v, v]));
    assert.deepEqual(frames.map((f) => queue.push(f)), [true, true, false, false]);
    assert.equal(queue.length, 2);
    assert.equal(queue.dropped, 2);
    assert.equal(queue.droppedSamples, 6);
    assert.deepEqual(queue.drain(), frames.slice(0, 2));
    assert.equal(queue.length, 0);
  });
});
