// Child process of the composition bench: the gateway over 48 FLAN tasks whose adapters are synthetic
// PEFT folders, in front of the vLLM stand-in; prints {"port"} once it listens.
import pino from 'pino';
import { join } from 'node:path';
import { builtGateway } from './built-gateway.js';
import { FIT_EXAMPLES, FLAN, TASKS } from './composition-setup.js';

const { loadConfig, createGateway, buildApp, loadRegistry } = await builtGateway();

const env = process.env;
const all = loadRegistry(FLAN);
const tasks = all.tasks.slice(0, TASKS).map((task) => ({ ...task, examples: task.examples.slice(0, FIT_EXAMPLES) }));
const adapters = new Map(tasks.map((task, i) => [task.id, { id: task.id, path: join(env.BENCH_ADAPTER_DIR!, `adapter-${i}`) }]));
const mode = env.BENCH_MODE ?? 'planner';
// The stand-in models the server's own limits (max_loras, loads, service time): the gateway's cap on requests in
// flight upstream (128 by default) is raised so that waiting for a saturated server is measured as the server's
// time, not as time the gateway adds.
const upstream: Record<string, unknown> = { url: env.BENCH_UPSTREAM_URL, kind: 'vllm', baseModel: 'llama-2-7b', maxLoraRank: 64, maxConcurrency: 4096, maxQueue: 4096 };
if (mode === 'top1') upstream.vllmMode = 'top1';
else {
  Object.assign(upstream, { vllmMode: 'merge', mergeDir: env.BENCH_MERGE_DIR });
  if (env.BENCH_BUILDS_PER_MINUTE) upstream.maxNewMergesPerMinute = Number(env.BENCH_BUILDS_PER_MINUTE);
  // Today's behaviour: every new mixture built while its request waits, no warm start.
  if (mode === 'wait') Object.assign(upstream, { mergeWaitMs: 600_000, mergeWarmStart: false, maxNewMergesPerMinute: 100_000 });
}
const config = loadConfig({ env: {}, overrides: { logLevel: 'silent', upstream } });
const gateway = await createGateway(config, pino({ level: 'silent' }), { registry: { ...all, tasks, adapters } });
const app = await buildApp(gateway);
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port: (app.server.address() as { port: number }).port, buildMs: 0, rssMb: process.memoryUsage().rss / 2 ** 20 }));
process.on('SIGTERM', () => process.exit(0));
