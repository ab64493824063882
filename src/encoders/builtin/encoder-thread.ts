// Runs in a worker thread: fits the built-in encoder exactly as the main thread did (fitting is
// deterministic) and encodes batches of prompts into one transferred Float32Array each.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { BuiltinEncoder, type BuiltinEncoderOptions } from './builtin-encoder.js';

export interface EncoderThreadData {
  examples: readonly (readonly string[])[];
  options: BuiltinEncoderOptions;
  /** Nice value this thread takes (Linux; 0 leaves it as it is). */
  nice: number;
}

export type EncoderThreadReply =
  | { type: 'ready'; fingerprint: string; /** Why the nice value could not be set. */ niceError?: string }
  | { type: 'encoded'; id: number; vectors: Float32Array };

/**
 * Linux schedules threads as tasks: setpriority on this thread's id lowers only this thread.
 * Elsewhere there is no per-thread nice value, and the thread keeps the process's priority.
 */
function lowerPriority(nice: number): string | undefined {
  if (nice === 0 || process.platform !== 'linux') return undefined;
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), nice);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const { examples, options, nice } = workerData as EncoderThreadData;
const niceError = lowerPriority(nice);
const encoder = BuiltinEncoder.fit(examples.map((group) => ({ examples: group })), options);
const port = parentPort!;
port.postMessage({ type: 'ready', fingerprint: encoder.fingerprint, ...(niceError ? { niceError } : {}) } satisfies EncoderThreadReply);
port.on('message', ({ id, texts }: { id: number; texts: string[] }) => {
  const vectors = new Float32Array(texts.length * encoder.dimensions);
  texts.forEach((text, i) => vectors.set(encoder.encodeOne(text), i * encoder.dimensions));
  port.postMessage({ type: 'encoded', id, vectors } satisfies EncoderThreadReply, [vectors.buffer]);
});
