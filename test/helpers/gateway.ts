import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createGateway, type Gateway, type GatewayParts } from '../../src/gateway.js';
import { buildApp } from '../../src/http/app.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';

export const FLAN_TASKS = new URL('../../../shared/data/flan-tasks.jsonl', import.meta.url).pathname;
export const TINY_LLAMA = new URL('../../../shared/data/tiny-llama/', import.meta.url).pathname;

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
