// Runs in a worker thread: fits the built-in encoder exactly as the main thread did (fitting is
// deterministic) and encodes batches of prompts into one transferred Float32Array each.
import { parentPort, workerData } from 'node:worker_threads';
import { BuiltinEncoder, type BuiltinEncoderOptions } from './builtin-encoder.js';

export interface EncoderThreadData {
  examples: readonly (readonly string[])[];
  options: BuiltinEncoderOptions;
}

export type EncoderThreadReply = { type: 'ready'; fingerprint: string } | { type: 'encoded'; id: number; vectors: Float32Array };

const { examples, options } = workerData as EncoderThreadData;
const encoder = BuiltinEncoder.fit(examples.map((group) => ({ examples: group })), options);
const port = parentPort!;
port.postMessage({ type: 'ready', fingerprint: encoder.fingerprint } satisfies EncoderThreadReply);
port.on('message', ({ id, texts }: { id: number; texts: string[] }) => {
  const vectors = new Float32Array(texts.length * encoder.dimensions);
  texts.forEach((text, i) => vectors.set(encoder.encodeOne(text), i * encoder.dimensions));
  port.postMessage({ type: 'encoded', id, vectors } satisfies EncoderThreadReply, [vectors.buffer]);
});
