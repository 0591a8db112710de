// Test doubles shared by the provider-client tests: a WebSocket that records what the client does and
// lets the test play the server, and timers the test advances by hand. Not a test file itself.


export function fakeSocketClass() {
  return class FakeSocket {
    static instances = /** @type {FakeSocket[]} */ ([]);

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.binaryType = 'blob';
      /** @type {(string|Uint8Array)[]} */
      this.sent = [];
      this.closeCalls = [];
      this.listeners = new Map();
      FakeSocket.instances.push(this);
    }

    addEventListener(type, fn) {
      this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
      if (typeof data === 'string') this.sent.push(data);
      else if (data instanceof ArrayBuffer) this.sent.push(new Uint8Array(data.slice(0)));
      else this.sent.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
    }

    close(code = 1005, reason = '') {
      this.closeCalls.push({ code, reason });
      if (this.readyState >= 2) return;
      this.readyState = 2;
      // Like a browser: the close event comes later, after the closing handshake.
      queueMicrotask(() => this.serverClose(code, reason));
    }

    open() {
      this.readyState = 1;
      this.fire('open', {});
    }

    push(message) {
      this.fire('message', { data: typeof message === 'string' ? message : JSON.stringify(message) });
    }

    serverClose(code, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.fire('close', { code, reason, wasClean: code !== 1006 });
    }

    fire(type, event) {
      for (const fn of this.listeners.get(type) ?? []) fn(event);
    }

    get texts() {
      return this.sent.filter((m) => typeof m === 'string').map((m) => JSON.parse(m));
    }

    get binaries() {
      return this.sent.filter((m) => typeof m !== 'string');
    }
  };
}

export class FakeTimers {
  now = 0;
  nextId = 1;
  pending = new Map();
  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  };
  clearTimeout = (id) => {
    this.pending.delete(id);
  };

  advance(ms) {
    const target = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= target)
        .sort((a, b) => a[1].at - b[1].at);
      if (due.length === 0) break;
      const [id, timer] = due[0];
      this.pending.delete(id);
      this.now = timer.at;
      timer.fn();
    }
    this.now = target;
  }
}

export const tick = () => new Promise((resolve) => setImmediate(resolve));
