// Child process of the llama.cpp weight-grid bench: the gateway over FLAN tasks whose adapters are the
// GGUF adapters a real llama-server loaded, with LORAUTER_LLAMACPP_WEIGHT_STEP = BENCH_WEIGHT_STEP;
// prints {"port"} once it listens.
import pino from 'pino';
import { builtGateway } from './built-gateway.js';
import { FLAN } from './composition-setup.js';
import { GRID_FIT_EXAMPLES, GRID_TASKS } from './llamacpp-setup.js';

const { loadConfig, createGateway, buildApp, loadRegistry } = await builtGateway();

const env = process.env;
const all = loadRegistry(FLAN);
const tasks = all.tasks.filter((task) => GRID_TASKS.includes(task.id)).map((task) => ({ ...task, examples: task.examples.slice(0, GRID_FIT_EXAMPLES) }));
const adapters = new Map(tasks.map((task) => [task.id, { id: task.id }]));
const upstream = { url: env.BENCH_UPSTREAM_URL, kind: 'llamacpp', llamacppWeightStep: Number(env.BENCH_WEIGHT_STEP ?? 0) };
// Every prompt is routed (no abstention): the bench measures what the grid does to mixtures.
const config = loadConfig({ env: {}, overrides: { logLevel: 'silent', upstream, minConfidence: 0 } });
const gateway = await createGateway(config, pino({ level: 'silent' }), { registry: { ...all, tasks, adapters } });
const app = await buildApp(gateway);
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port: (app.server.address() as { port: number }).port, buildMs: 0, rssMb: process.memoryUsage().rss / 2 ** 20 }));
process.on('SIGTERM', () => process.exit(0));
