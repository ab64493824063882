// Child process for `npm run bench`: a fake vLLM upstream that takes BENCH_UPSTREAM_DELAY_MS before
// answering (an LLM server is latency-bound) and streams chunks BENCH_CHUNK_DELAY_MS apart.
import { startFakeVllm } from '../test/fakes/vllm.js';

const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'] });
fake.behaviour = {
  headersDelayMs: Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 25),
  chunkDelayMs: Number(process.env.BENCH_CHUNK_DELAY_MS ?? 2),
  words: ['the', 'answer', 'is', 'positive', 'because', 'the', 'review', 'says', 'so'],
};
// Keep the record of requests from growing without bound during a load test.
setInterval(() => fake.received.splice(0), 1000).unref();
console.log(JSON.stringify({ port: Number(new URL(fake.url).port), buildMs: 0, rssMb: process.memoryUsage().rss / 2 ** 20 }));
