// JSON.parse and Body.json() (Response, Request) return `unknown` here, not TypeScript's `any`, which strict mode
// never questions: whatever comes off the wire or out of storage has to be checked into its type before use.
// Type checking only (tsconfig.json includes types/*.d.ts); the same idea as @total-typescript/ts-reset. These
// overloads are declared after the lib's, so they are tried first and win.
interface JSON {
  parse(text: string, reviver?: (this: any, key: string, value: any) => any): unknown;
}

interface Body {
  json(): Promise<unknown>;
}
