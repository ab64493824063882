// Encoder benchmarks for `npm run bench`, in process: the built-in encoder before (the string-based
// v1 kept in bench/baseline) and after, on held-out FLAN prompts; the ONNX fixture encoder one text a
// run vs micro-batched under concurrent requests.
import { BuiltinEncoder } from '../src/encoders/builtin/builtin-encoder.js';
import { OnnxEncoder } from '../src/encoders/onnx/onnx-encoder.js';
import type { TaskRegistry } from '../src/registry/types.js';
import { NgramEncoder as NgramEncoderV1 } from './baseline/ngram-encoder-v1.js';
import { quantile } from './quantile.js';

export interface LatencySummary {
  meanUs: number;
  p99Us: number;
}

function summarize(samples: number[]): LatencySummary {
  return { meanUs: (samples.reduce((a, b) => a + b, 0) / samples.length) * 1000, p99Us: quantile(samples, 0.99) * 1000 };
}

/** Per-prompt encode latency, fitted on 16 prompts a task and measured on the other 4 (never seen). */
export function builtinEncoderLatency(registry: TaskRegistry, rounds = 5): { before: LatencySummary; after: LatencySummary; prompts: number } {
  const fit = registry.tasks.map((task) => ({ examples: task.examples.slice(0, 16) }));
  const prompts = registry.tasks.flatMap((task) => task.examples.slice(16));
  const encoders = { before: NgramEncoderV1.fit(fit), after: BuiltinEncoder.fit(fit) };
  const samples = { before: [] as number[], after: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    // Interleaved so that both see the same machine load.
    for (const name of ['before', 'after'] as const) {
      for (const prompt of prompts) {
        const started = performance.now();
        encoders[name].encodeOne(prompt);
        if (round > 0) samples[name].push(performance.now() - started);
      }
    }
  }
  return { before: summarize(samples.before), after: summarize(samples.after), prompts: prompts.length };
}

/** Embeddings per second from `concurrency` callers, each asking for one text at a time, for `seconds`. */
async function embeddingsPerSecond(encoder: OnnxEncoder, texts: string[], concurrency: number, seconds: number): Promise<number> {
  let done = 0;
  let next = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await encoder.encode([texts[next++ % texts.length]]);
        done++;
      }
    }),
  );
  return done / seconds;
}

export async function onnxBatching(model: string, texts: string[], seconds: number, concurrency = 64) {
  const settings = { model, queryPrefix: '', examplePrefix: '', threads: 1 };
  const single = await OnnxEncoder.load({ ...settings, maxBatch: 1, batchWaitMs: 0 });
  const batched = await OnnxEncoder.load({ ...settings, maxBatch: 32, batchWaitMs: 2 });
  await embeddingsPerSecond(single, texts, concurrency, 0.5);
  const singleRate = await embeddingsPerSecond(single, texts, concurrency, seconds);
  await embeddingsPerSecond(batched, texts, concurrency, 0.5);
  const batchedRate = await embeddingsPerSecond(batched, texts, concurrency, seconds);
  await single.close();
  await batched.close();
  return { singleRate, batchedRate, concurrency };
}
