// What the page modules built on the run controller (saved transcripts, history) need to run under Node: a document
// whose elements exist on first lookup by id, a view that keeps the notices the way the page's does, and a Session
// whose events a test sends by hand.

/** An element with the properties and calls the page modules use; it renders nothing. */
export class FakeElement {
  constructor(id = '') {
    this.id = id;
    this.textContent = '';
    this.hidden = false;
    this.disabled = false;
    this.value = '';
    this.title = '';
    this.className = '';
    this.dataset = {};
    this.children = [];
    this.attributes = {};
    this.classList = { add() {}, remove() {} };
  }

  addEventListener() {}
  setAttribute(name, value) { this.attributes[name] = String(value); }
  focus() {}
  select() {}
  scrollIntoView() {}
  querySelectorAll() { return []; }
  querySelector() { return null; }
  contains() { return false; }
  replaceChildren(...children) { this.children = children; }
  append(...children) { this.children.push(...children); }
}

/** The elements templates/index.html renders hidden. */
const HIDDEN = ['restored', 'history-view', 'history-confirm'];

export function fakeDocument() {
  const elements = new Map();
  const doc = {
    activeElement: null,
    elements,
    getElementById(id) {
      if (!elements.has(id)) {
        const el = new FakeElement(id);
        el.hidden = HIDDEN.includes(id);
        elements.set(id, el);
      }
      return elements.get(id);
    },
    createElement: () => new FakeElement(),
  };
  return doc;
}

/**
 * A PageView that keeps the warning list as the page does (a keyed warning replaces its namesake, Start clears the
 * list) and ignores everything else.
 */
export function noticeView() {
  /** @type {{message: string, kind: string, key: string | undefined}[]} */
  let warnings = [];
  const view = new Proxy({}, {
    get: (_, name) => {
      if (name === 'addWarning') {
        return (message, kind = 'warning', key = undefined) => {
          const same = key ? warnings.find((w) => w.key === key) : undefined;
          if (same) Object.assign(same, { message, kind });
          else warnings.push({ message, kind, key });
        };
      }
      if (name === 'clearWarnings') return () => { warnings = []; };
      return () => {};
    },
  });
  return { view, warnings: () => warnings.map((w) => w.message) };
}

/**
 * Session factory for RunController: `last()` is the newest session's control — `emit(event)` sends an event as
 * the provider would, `audioMs` is its audio clock.
 */
export function scriptedSessions() {
  const made = [];
  const createSession = (options) => {
    const control = {
      provider: 'local',
      audioMs: 0,
      emit: (event) => options.onEvent(event),
      async start() {},
      async stop() { options.onStateChange('stopping', 'stopped', {}); },
      cancel() { options.onStateChange('stopping', 'cancelled', {}); },
    };
    made.push(control);
    return control;
  };
  return { createSession, last: () => made.at(-1) };
}

/** A LockManager with the two calls the keeper uses; locks are shared by every keeper given the same instance. */
export function fakeLocks() {
  const held = new Set();
  return {
    held,
    async request(name, options, callback) {
      const cb = callback ?? options;
      if (callback && options.ifAvailable && held.has(name)) return cb(null);
      held.add(name);
      try { return await cb({ name, mode: 'exclusive' }); } finally { held.delete(name); }
    },
    async query() {
      return { held: [...held].map((name) => ({ name, mode: 'exclusive', clientId: 'c' })), pending: [] };
    },
  };
}
