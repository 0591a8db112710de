export class Listeners {
    /** @param {string} type @param {(e: unknown) => void} fn */
    add(type: string, fn: (e: unknown) => void): void;
    /** @param {string} type @param {(e: unknown) => void} fn */
    remove(type: string, fn: (e: unknown) => void): void;
    /** @param {string} type @param {unknown} value */
    dispatch(type: string, value: unknown): void;
    #private;
}
