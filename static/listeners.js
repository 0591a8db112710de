// A session's listeners, by event type: run in the order added, and one that throws is logged while the others
// still run (a page's bug in one listener must not stop the transcript reaching the others).

export class Listeners {
  /** @type {Map<string, Set<(e: unknown) => void>>} */
  #byType = new Map();

  /** @param {string} type @param {(e: unknown) => void} fn */
  add(type, fn) {
    let set = this.#byType.get(type);
    if (!set) this.#byType.set(type, (set = new Set()));
    set.add(fn);
  }

  /** @param {string} type @param {(e: unknown) => void} fn */
  remove(type, fn) {
    this.#byType.get(type)?.delete(fn);
  }

  /** @param {string} type @param {unknown} value */
  dispatch(type, value) {
    for (const fn of [...(this.#byType.get(type) ?? [])]) {
      try {
        fn(value);
      } catch (err) {
        console.error(`session ${type} listener failed`, err);
      }
    }
  }
}
