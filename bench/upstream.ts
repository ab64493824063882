// Child process for `npm run bench`: a fake vLLM upstream that answers after BENCH_UPSTREAM_DELAY_MS ±
// BENCH_UPSTREAM_JITTER_MS (uniform; an LLM server is latency-bound, and no two answers take the same time) and
// streams chunks BENCH_CHUNK_DELAY_MS apart. With no jitter every answer takes the same time, and the bench's clients
// fall into lockstep: they send and are answered in bursts of all of them at once (the bench's lockstep rows).
import { startFakeVllm } from '../test/fakes/vllm.js';

const delayMs = Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 25);
const jitterMs = Number(process.env.BENCH_UPSTREAM_JITTER_MS ?? 5);
const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] });
fake.behaviour = {
  // Each answer draws its own time.
  get headersDelayMs() {
    return delayMs + (Math.random() * 2 - 1) * jitterMs;
  },
  chunkDelayMs: Number(process.env.BENCH_CHUNK_DELAY_MS ?? 2),
  words: ['the', 'answer', 'is', 'positive', 'because', 'the', 'review', 'says', 'so'],
};
// Keep the record of requests from growing without bound during a load test.
setInterval(() => fake.received.splice(0), 1000).unref();
console.log(JSON.stringify({ port: Number(new URL(fake.url).port), buildMs: 0, rssMb: process.memoryUsage().rss / 2 ** 20 }));
