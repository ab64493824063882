// Child process for `npm run bench`: starts one server (gateway at a given scale, or a Fastify
// hello-world) on a free port and prints {"port", "buildMs", "rssMb"} as its first stdout line.
import Fastify from 'fastify';
import pino from 'pino';
import { builtGateway } from './built-gateway.js';
import type { TaskRegistry } from '../src/registry/types.js';
import { syntheticRegistry } from './synthetic.js';

const { loadConfig, createGateway, buildApp, loadRegistry } = await builtGateway();

const scenario = process.env.BENCH_SCENARIO ?? 'hello';
const flan = new URL('../test/fixtures/flan-tasks.jsonl', import.meta.url).pathname;

function registryFor(name: string): TaskRegistry {
  if (name === 'tiny') {
    const all = loadRegistry(flan);
    const ids = ['sst2', 'wmt16_translate_deen', 'e2e_nlg'];
    return { ...all, tasks: all.tasks.filter((task) => ids.includes(task.id)), adapters: new Map(ids.map((id) => [id, { id }])) };
  }
  if (name === 'flan48') {
    const all = loadRegistry(flan);
    // Fitted on 16 prompts a task; the bench sends the other 4 (with a unique suffix) as new prompts.
    return { ...all, tasks: all.tasks.slice(0, 48).map((task) => ({ ...task, examples: task.examples.slice(0, 16) })) };
  }
  return syntheticRegistry(Number(name));
}

if (scenario === 'hello') {
  const app = Fastify({ logger: false });
  app.post('/hello', async () => ({ hello: 'world' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  console.log(JSON.stringify({ port: (app.server.address() as { port: number }).port, buildMs: 0, rssMb: process.memoryUsage().rss / 2 ** 20 }));
} else {
  const registry = registryFor(scenario);
  const upstream = process.env.BENCH_UPSTREAM_URL ? { url: process.env.BENCH_UPSTREAM_URL, kind: 'vllm', vllmMode: 'top1', baseModel: 'tiny-llama' } : {};
  // Silent unless asked: the proxy rows also run a gateway at the default level, its lines written to /dev/null.
  const logLevel = (process.env.BENCH_LOG_LEVEL ?? 'silent') as 'silent' | 'info';
  const config = loadConfig({
    env: {},
    overrides: { logLevel, encoder: { maxDimensions: Number(process.env.BENCH_DIMENSIONS ?? 1024), workers: process.env.BENCH_WORKERS ? Number(process.env.BENCH_WORKERS) : undefined }, cache: { maxEntries: Number(process.env.BENCH_CACHE_ENTRIES ?? 10000) }, upstream },
  });
  const started = performance.now();
  const gateway = await createGateway(config, pino({ level: logLevel }, pino.destination('/dev/null')), { registry });
  const buildMs = performance.now() - started;
  const app = await buildApp(gateway);
  await app.listen({ port: 0, host: '127.0.0.1' });
  global.gc?.();
  console.log(JSON.stringify({ port: (app.server.address() as { port: number }).port, buildMs, rssMb: process.memoryUsage().rss / 2 ** 20, tasks: registry.tasks.length, dimensions: gateway.encoder.dimensions }));
}
// A clean exit on SIGTERM lets BENCH_NODE_FLAGS=--cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
