// The AudioWorkletGlobalScope names static/audio/pcm-processor.js uses (TypeScript's DOM library lacks them).
// Type checking only: nothing here is served or bundled.
declare const sampleRate: number;
declare const currentTime: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: AudioWorkletNodeOptions);
}
// `never`: a processor class may declare whatever options it takes.
declare function registerProcessor(name: string, processorCtor: new (options: never) => AudioWorkletProcessor): void;
