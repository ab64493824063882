import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createGateway, type Gateway, type GatewayParts } from '../../src/gateway.js';
import { buildApp } from '../../src/http/app.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';

export const FLAN_TASKS = new URL('../fixtures/flan-tasks.jsonl', import.meta.url).pathname;
export const TINY_LLAMA = new URL('../fixtures/tiny-llama/', import.meta.url).pathname;

/** A gateway and its app with a quiet logger; `logs` collects what it logged. */
export async function startGateway(overrides: Record<string, unknown> = {}, parts: GatewayParts = {}) {
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const config: Config = loadConfig({ env: {}, overrides: { logLevel: 'info', ...overrides } });
  const gateway: Gateway = await createGateway(config, logger, { metrics: new GatewayMetrics(), ...parts });
  const app = await buildApp(gateway);
  await app.ready();
  return {
    gateway,
    app,
    logs,
    async close() {
      await app.close();
      await gateway.close();
    },
  };
}

/** The three tiny-llama tasks with their real PEFT adapters, examples from the FLAN pool. */
export async function tinyLlamaRegistry() {
  const { loadRegistry } = await import('../../src/registry/load.js');
  const flan = loadRegistry(FLAN_TASKS);
  const ids = ['sst2', 'wmt16_translate_deen', 'e2e_nlg'];
  const tasks = flan.tasks.filter((task) => ids.includes(task.id));
  return {
    tasks,
    adapters: new Map(ids.map((id) => [id, { id, path: `${TINY_LLAMA}lora-${id}` }])),
    source: 'tiny-llama test registry',
  };
}

/** A gateway listening on a real port (for the openai client, streaming, aborts and timeouts). */
export async function listenGateway(overrides: Record<string, unknown> = {}, parts: GatewayParts = {}) {
  const started = await startGateway(overrides, parts);
  await started.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = started.app.server.address() as { port: number };
  return { ...started, url: `http://127.0.0.1:${port}` };
}
