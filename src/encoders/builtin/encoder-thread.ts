// Runs in a worker thread: fits the built-in encoder exactly as the main thread did (fitting is
// deterministic), says so, then encodes prompts from the shared queue for as long as it lives.
import { parentPort, workerData } from 'node:worker_threads';
import { BuiltinEncoder, type BuiltinEncoderOptions } from './builtin-encoder.js';
import { PromptQueueWorker, type PromptQueueMemory } from './prompt-queue.js';

export interface EncoderThreadData {
  examples: readonly (readonly string[])[];
  options: BuiltinEncoderOptions;
  queue: PromptQueueMemory;
  /** This thread's index, which its claims in the queue carry. */
  thread: number;
}

/** `encoded`: results are waiting in the queue (sent once until the event loop has looked). */
export type EncoderThreadReply = { type: 'ready'; fingerprint: string } | { type: 'encoded' };

const { examples, options, queue, thread } = workerData as EncoderThreadData;
const encoder = BuiltinEncoder.fit(examples.map((group) => ({ examples: group })), options);
const port = parentPort!;
port.postMessage({ type: 'ready', fingerprint: encoder.fingerprint } satisfies EncoderThreadReply);
// A fit of other dimensions has another fingerprint: the event loop stops this thread.
if (encoder.dimensions === queue.dimensions) {
  const encoded: EncoderThreadReply = { type: 'encoded' };
  new PromptQueueWorker(queue, thread, () => port.postMessage(encoded)).serve((text) => encoder.encodeOne(text));
}
